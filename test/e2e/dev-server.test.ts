import { existsSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer } from '../../scripts/lib/dev-server.ts';
import type { DevServer } from '../../scripts/lib/dev-server.ts';
import { ensureTemporalCli, ensureTestServer } from '../../scripts/lib/tools/index.ts';
import { prepareNamespace } from '../../scripts/lib/namespace.ts';
import { IncidentSeverityAttribute, incidentSearchAttributes } from '../../src/contract/search-attributes.ts';
import { createTimeSkippingEnv, startTestDevServer } from '../support/temporal.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
// On a fresh machine the tools are built on first use (npm test does it before vitest starts).
const PROVISION_TIMEOUT_MS = 15 * 60_000;

describe('dev server', () => {
  let server: DevServer;
  let connection: Connection;

  beforeAll(async () => {
    await ensureTemporalCli();
    server = await startTestDevServer();
    connection = await Connection.connect({ address: server.address });
  }, PROVISION_TIMEOUT_MS);

  afterAll(async () => {
    await connection?.close();
    await server?.stop();
  });

  it('listens on 127.0.0.1 and has every incident search attribute registered with its type', async () => {
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: 'default',
    });
    expect(customAttributes).toHaveProperty('IncidentSeverity');
    for (const { name, type } of incidentSearchAttributes) {
      expect(customAttributes?.[name]).toBe(encodeSearchAttributeIndexedValueType(type));
    }
  });

  it('keeps its SQLite file in WAL mode (readers do not wait for the writer)', () => {
    expect(server.dbFile).toBeDefined();
    // SQLite keeps a `-wal` file beside the database while a WAL-mode connection is open.
    expect(existsSync(`${server.dbFile}-wal`)).toBe(true);
  });

  it('keeps closed workflows 35 days', async () => {
    const { config } = await connection.workflowService.describeNamespace({ namespace: 'default' });
    expect(optionalTsToMs(config?.workflowExecutionRetentionTtl)).toBe(35 * DAY_MS);
  });

  it('prepareNamespace is idempotent and never lowers a longer retention', async () => {
    await prepareNamespace(connection, 'default');
    await prepareNamespace(connection, 'default', { retentionDays: 40 });
    await prepareNamespace(connection, 'default', { retentionDays: 2 });
    const { config } = await connection.workflowService.describeNamespace({ namespace: 'default' });
    expect(optionalTsToMs(config?.workflowExecutionRetentionTtl)).toBe(40 * DAY_MS);
  });

  it('refuses to start on a port that is taken', async () => {
    await expect(startDevServer({ port: server.port, headless: true, log: () => undefined })).rejects.toThrow(
      `127.0.0.1:${server.port} (gRPC port) is already in use`,
    );
  });

  it('fails fast, with the server output, when the server itself exits', async () => {
    const started = Date.now();
    await expect(
      startDevServer({ headless: true, log: () => undefined, extraArgs: ['--no-such-flag'] }),
    ).rejects.toThrow(/exited with code 1:[\s\S]*no-such-flag/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('keeps its data across a crash and a restart on the same port and db file', async () => {
    const client = new Client({ connection });
    const workflowId = `crash-test-${Date.now()}`;
    // No worker polls this task queue: the workflow just stays open, which is all we need to find it again.
    await client.workflow.start('noSuchWorkflow', {
      taskQueue: 'crash-test',
      workflowId,
      typedSearchAttributes: [{ key: IncidentSeverityAttribute, value: 'P1' }],
    });

    server.kill9();
    expect(await server.exited).toBeNull(); // killed by a signal
    server = await server.restart();

    const after = await Connection.connect({ address: server.address });
    try {
      const description = await new Client({ connection: after }).workflow.getHandle(workflowId).describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.typedSearchAttributes.get(IncidentSeverityAttribute)).toBe('P1');
      const { config } = await after.workflowService.describeNamespace({ namespace: 'default' });
      expect(optionalTsToMs(config?.workflowExecutionRetentionTtl)).toBeGreaterThanOrEqual(35 * DAY_MS);
    } finally {
      await after.close();
    }
    await connection.close();
    connection = await Connection.connect({ address: server.address });
  });
});

describe('time-skipping test server', () => {
  beforeAll(async () => {
    await ensureTestServer();
  }, PROVISION_TIMEOUT_MS);

  it('starts with the incident search attributes, and sleeping two days returns within seconds', async () => {
    const env = await createTimeSkippingEnv();
    try {
      const before = await env.currentTimeMs();
      const started = performance.now();
      await env.sleep('2 days');
      expect(performance.now() - started).toBeLessThan(5_000);
      expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(2 * DAY_MS);
      // Incident workflows can carry their search attributes there too.
      await env.client.workflow.start('noSuchWorkflow', {
        taskQueue: 'time-skipping-test',
        workflowId: 'search-attributes',
        typedSearchAttributes: [{ key: IncidentSeverityAttribute, value: 'P2' }],
      });
    } finally {
      await env.teardown();
    }
  });
});
