/**
 * `npm start` (scripts/start.ts) as a process manager sees it: once the supervisor has exited, the ports of
 * the stack it ran (Temporal gRPC, Temporal web UI, API) are free, so a new instance can start at once.
 * Each test runs the supervisor on free loopback ports with its data in a temporary directory.
 */
import { loopbackEnv } from '../support/loopback-env.ts';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer } from '../../scripts/lib/dev-server.ts';
import { waitForTemporal } from '../../scripts/lib/namespace.ts';
import { DEV_SERVER_MARKER } from '../../scripts/lib/temporal-target.ts';
import { freePort, isPortFree, waitForPort } from '../../scripts/lib/ports.ts';
import type { ExitStatus, ManagedProcess } from '../../scripts/lib/process.ts';
import { startProcess } from '../../scripts/lib/process.ts';
import { ensureTemporalCli } from '../../scripts/lib/tools/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
// The supervisor runs .ts files directly: it needs the project's Node 24, whatever node runs vitest.
const projectNode = existsSync(path.join(root, 'node_modules/.bin/node'))
  ? path.join(root, 'node_modules/.bin/node')
  : process.execPath;
const PROVISION_TIMEOUT_MS = 15 * 60_000;

let temporalBinary: string;
/**
 * A `temporal` that is a shell script running the real binary as its child rather than exec'ing it (as
 * some version-manager shims do): on SIGTERM the script exits at once while the server is still shutting
 * down, so waiting for the process npm start spawned is not enough.
 */
let temporalWrapper: string;
let wrapperDir: string;
beforeAll(async () => {
  temporalBinary = await ensureTemporalCli();
  wrapperDir = await mkdtemp(path.join(tmpdir(), 'pno-incident-start-cli-'));
  temporalWrapper = path.join(wrapperDir, 'temporal');
  await writeFile(temporalWrapper, `#!/bin/sh\n${JSON.stringify(temporalBinary)} "$@"\nexit $?\n`, {
    mode: 0o755,
  });
}, PROVISION_TIMEOUT_MS);
afterAll(async () => {
  if (wrapperDir) await rm(wrapperDir, { recursive: true, force: true });
});

interface Supervisor {
  proc: ManagedProcess;
  ports: { grpc: number; ui: number; api: number };
  dataDir: string;
  /** Resolves once a line containing `text` was printed; rejects if the supervisor exits first. */
  printed(text: string, timeoutMs?: number): Promise<void>;
  /** Which ports were still taken at the moment the supervisor's exit was seen. */
  takenAtExit: Promise<string[]>;
  output(): string;
}

const dataDirs: string[] = [];

afterEach(async () => {
  // A failed test must not leave its stack behind: kill whatever still runs with its data dir.
  for (const dir of dataDirs.splice(0)) {
    for (const pid of await pidsWithEnv(`INCIDENT_DATA_DIR=${dir}`)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
});

/** Pids of this user's processes whose environment contains `entry` (Linux /proc). */
async function pidsWithEnv(entry: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(entry)) pids.push(Number(name));
  }
  return pids;
}

async function startSupervisor(temporalCli: string, env: NodeJS.ProcessEnv = {}): Promise<Supervisor> {
  const ports = { grpc: await freePort(), ui: await freePort(), api: await freePort() };
  const dataDir = await mkdtemp(path.join(tmpdir(), 'pno-incident-start-'));
  dataDirs.push(dataDir);
  const lines: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  const proc = startProcess(projectNode, [path.join(root, 'scripts/start.ts')], {
    cwd: root,
    env: {
      // A laptop: no provider, cluster or Prometheus configured, whatever the machine running the test has set.
      ...loopbackEnv(),
      TEMPORAL_CLI: temporalCli,
      TEMPORAL_ADDRESS: `127.0.0.1:${ports.grpc}`,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_UI_PORT: String(ports.ui),
      HOST: '127.0.0.1',
      PORT: String(ports.api),
      INCIDENT_DATA_DIR: dataDir,
      ...env,
    },
    tailLines: 200,
    onLine: (line) => {
      lines.push(line);
      if (process.env['TEST_START_LOG']) process.stderr.write(`${line}\n`);
      for (const w of waiters.filter((w) => line.includes(w.text))) w.resolve();
    },
  });
  // Checked in the exit callback itself: "as soon as the supervisor has exited" is the whole point.
  const takenAtExit = new Promise<string[]>((resolve) => {
    proc.child.once('exit', () => {
      const names = Object.keys(ports) as (keyof typeof ports)[];
      void Promise.all(names.map((n) => isPortFree(ports[n]))).then((free) =>
        resolve(names.filter((_, i) => !free[i]).map((n) => `${n} 127.0.0.1:${ports[n]}`)),
      );
    });
  });
  const output = () => lines.join('\n');
  const printed = async (text: string, timeoutMs = 60_000) => {
    if (lines.some((l) => l.includes(text))) return;
    const seen = new Promise<void>((resolve) => waiters.push({ text, resolve }));
    const outcome = await Promise.race([
      seen.then(() => 'seen' as const),
      proc.exited.then(() => 'exited' as const),
      sleep(timeoutMs, 'timeout' as const),
    ]);
    if (outcome !== 'seen') throw new Error(`npm start ${outcome} before printing "${text}":\n${output()}`);
  };
  return { proc, ports, dataDir, printed, takenAtExit, output };
}

/** Waits for the supervisor to exit on its own (bounded) and returns how. */
async function exitOf(s: Supervisor, timeoutMs = 45_000): Promise<ExitStatus> {
  const status = await Promise.race([s.proc.exited, sleep(timeoutMs, undefined)]);
  if (!status) throw new Error(`npm start did not exit within ${timeoutMs} ms:\n${s.output()}`);
  return status;
}

async function apiAnswers(port: number): Promise<boolean> {
  return await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
    (r) => r.ok,
    () => false,
  );
}

/** Starts the whole stack and waits until the API answers. */
async function startStack(temporalCli: string, env: NodeJS.ProcessEnv = {}): Promise<Supervisor> {
  const s = await startSupervisor(temporalCli, env);
  await s.printed('Ctrl-C stops everything.');
  const deadline = Date.now() + 30_000;
  while (!(await apiAnswers(s.ports.api))) {
    if (s.proc.hasExited || Date.now() > deadline)
      throw new Error(`the API never answered on port ${s.ports.api}:\n${s.output()}`);
    await sleep(200);
  }
  return s;
}

describe('npm start supervisor', () => {
  it.each([
    ['the temporal binary', () => temporalBinary],
    ['a temporal wrapper script', () => temporalWrapper],
  ])(
    'with %s: on SIGTERM stops worker, API and dev server, and exits only once their ports are free',
    async (_name, cli) => {
      const s = await startStack(cli());
      // The marker by which a later npm start knows the server as its own, gone once it is stopped.
      const marker = path.join(s.dataDir, DEV_SERVER_MARKER);
      expect(JSON.parse(await readFile(marker, 'utf8'))).toMatchObject({
        address: `127.0.0.1:${s.ports.grpc}`,
      });
      // The worker announces its channels once it has read the policy (it may come after the API is up).
      await s.printed('channel email:');
      s.proc.signal('SIGTERM');
      const status = await exitOf(s);
      expect(await s.takenAtExit).toEqual([]);
      expect(status).toMatchObject({ code: 0, signal: null });
      expect(s.output()).toContain('stopping the Temporal dev server');
      expect(existsSync(marker)).toBe(false);
      // The laptop outbox is on, in the data dir, and the line says where to read it.
      expect(s.output()).toMatch(
        /Outbox: +on, in \S*pno-incident-start-\S*\/outbox\.jsonl .*\/outbox, or INCIDENT_OUTBOX=\S+ npm exec -- incident outbox/,
      );
      // The worker says, per channel, that it delivers to the outbox, and what to set for the real provider.
      for (const channel of ['slack', 'pager', 'sms', 'phone', 'email']) {
        expect(s.output()).toMatch(
          new RegExp(
            `channel ${channel}: local outbox \\S+outbox\\.jsonl \\(set [A-Z_, ]+ to deliver for real\\)`,
          ),
        );
      }
    },
    120_000,
  );

  it('on SIGTERM while the dev server is still starting, stops it and exits only once its ports are free', async () => {
    const s = await startSupervisor(temporalWrapper);
    await s.printed('starting the Temporal dev server');
    // The server has bound its gRPC port; the supervisor is still waiting for it to answer.
    await waitForPort(s.ports.grpc, 60_000, () => s.proc.hasExited);
    s.proc.signal('SIGTERM');
    const status = await exitOf(s);
    expect(await s.takenAtExit).toEqual([]);
    expect(status).toMatchObject({ code: 0, signal: null });
  }, 120_000);

  it('uses a server it did not start only as TEMPORAL_ADDRESS names it, and leaves its retention alone', async () => {
    // Not npm start's, on loopback, as a `kubectl port-forward` to production would be; the dev server's own
    // retention (24 h), shorter than the 35 days npm start gives its own.
    const foreign = await startDevServer({ temporalCli: temporalBinary, headless: true, retentionDays: 1 });
    const retentionSeconds = async () => {
      const connection = await waitForTemporal(foreign.address, 10_000);
      try {
        const described = await connection.workflowService.describeNamespace({ namespace: 'default' });
        return Number(described.config?.workflowExecutionRetentionTtl?.seconds);
      } finally {
        await connection.close();
      }
    };
    try {
      const before = await retentionSeconds();
      expect(before).toBeLessThan(35 * 86_400);
      const s = await startStack(temporalWrapper, { TEMPORAL_ADDRESS: foreign.address });
      expect(s.output()).toContain(
        `using the Temporal server at ${foreign.address} named by TEMPORAL_ADDRESS (not started by npm start: ` +
          "namespace default's retention left as it is",
      );
      expect(await retentionSeconds()).toBe(before);
      s.proc.signal('SIGTERM');
      expect(await exitOf(s)).toMatchObject({ code: 0, signal: null });
      expect(s.output()).not.toContain('stopping the Temporal dev server');
      expect(await isPortFree(foreign.port)).toBe(false);
    } finally {
      await foreign.stop();
    }
  }, 120_000);

  it('on a second signal kills everything, and still exits only once the ports are free', async () => {
    const s = await startStack(temporalWrapper);
    s.proc.signal('SIGTERM');
    await s.printed('SIGTERM received');
    s.proc.signal('SIGTERM');
    const status = await exitOf(s);
    expect(await s.takenAtExit).toEqual([]);
    expect(status).toMatchObject({ code: 130, signal: null });
  }, 120_000);
});
