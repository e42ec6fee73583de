/**
 * Temporal servers for tests: Temporal's time-skipping test server (workflow tests) and a real dev server
 * (e2e tests). Both use the tools provisioned by scripts/lib/tools/, never a download at test time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer } from '../../scripts/lib/dev-server.ts';
import type { DevServer, DevServerOptions } from '../../scripts/lib/dev-server.ts';
import { ensureTestServer } from '../../scripts/lib/tools/index.ts';
import { incidentSearchAttributes } from '../../src/contract/search-attributes.ts';

/**
 * A time-skipping test environment backed by the Java test server from the tool cache
 * (`$TEMPORAL_TEST_SERVER` when `npm test` set it), with the incident search attributes registered.
 * Call `env.teardown()` when done.
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: await ensureTestServer() } },
  });
  try {
    // The test server rejects undefined search attributes ("search attribute … is not defined"), so
    // incident workflows could not upsert theirs. It is fresh (and lacks ListSearchAttributes): just add.
    const searchAttributes: Record<string, number> = {};
    for (const { name, type } of incidentSearchAttributes) {
      const indexedType = encodeSearchAttributeIndexedValueType(type);
      if (indexedType !== undefined) searchAttributes[name] = indexedType;
    }
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes,
    });
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return env;
}

/**
 * A dev server on free ports, headless, persisting to a SQLite file in a fresh temporary directory, with
 * the namespace prepared. `stop()` also removes the directory; `kill9()` + `restart()` keep it (crash tests
 * restart on the same port and db file). Its output is dropped unless `TEST_TEMPORAL_LOG` is set.
 */
export async function startTestDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pno-incident-temporal-'));
  const log = process.env['TEST_TEMPORAL_LOG']
    ? (line: string) => process.stderr.write(`[temporal] ${line}\n`)
    : () => undefined;
  try {
    const server = await startDevServer({
      headless: true,
      log,
      dbFile: path.join(dir, 'temporal.sqlite'),
      ...opts,
    });
    return removingDirOnStop(server, dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function removingDirOnStop(server: DevServer, dir: string): DevServer {
  return {
    ...server,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
    restart: async () => removingDirOnStop(await server.restart(), dir),
  };
}
