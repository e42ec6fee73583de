/**
 * `npm start`: the whole system on one machine. Starts the Temporal CLI's dev server on `TEMPORAL_ADDRESS`
 * (default 127.0.0.1:7233), persisting to `$INCIDENT_DATA_DIR/temporal.sqlite` (default `.data/`; web UI on
 * `TEMPORAL_UI_PORT`, default 8233), unless a server answers there: it adopts one only if it started it itself
 * (a marker in the data dir), and uses another only if `TEMPORAL_ADDRESS` names it, without changing its
 * retention (scripts/lib/temporal-target.ts: a `kubectl port-forward` to production answers on loopback too).
 * Then it runs the worker and the HTTP API (`HOST`, `PORT`) as child processes.
 *
 * Ctrl-C / SIGTERM stops the children first (so the worker can finish its tasks against a live server),
 * then the dev server — also one that is still starting. This process exits only once every process it
 * started is gone, so their ports are free again: a process manager that sees it exit may start a new one at
 * once. A second signal kills everything with SIGKILL (still waiting for it to be gone). If any of them dies
 * on its own, everything is stopped and the exit code is 1.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevServer } from './lib/dev-server.ts';
import type { DevServer } from './lib/dev-server.ts';
import { prepareNamespace, waitForTemporal } from './lib/namespace.ts';
import {
  parseAddress,
  planTemporal,
  removeDevServerMarker,
  writeDevServerMarker,
} from './lib/temporal-target.ts';
import type { ManagedProcess } from './lib/process.ts';
import { describeExit, startProcess } from './lib/process.ts';
import { freePort } from './lib/ports.ts';
import { ensureTemporalCli } from './lib/tools/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const address = process.env['TEMPORAL_ADDRESS'] || '127.0.0.1:7233';
/** A server npm start did not start is used only at an address the user named. */
const addressNamed = Boolean(process.env['TEMPORAL_ADDRESS']);
const namespace = process.env['TEMPORAL_NAMESPACE'] || 'default';
const uiPort = Number(process.env['TEMPORAL_UI_PORT'] || '8233');
const dataDir = path.resolve(root, process.env['INCIDENT_DATA_DIR'] || '.data');
const apiUrl = `http://${process.env['HOST'] || '127.0.0.1'}:${process.env['PORT'] || '3000'}`;
/** How long children get to shut down gracefully before SIGKILL. */
const CHILD_STOP_TIMEOUT_MS = 15_000;

function say(line: string): void {
  process.stdout.write(`[start] ${line}\n`);
}

interface Child {
  name: string;
  proc: ManagedProcess;
}

const children: Child[] = [];
let server: DevServer | undefined;
/** Settles once a dev server start has finished or given up (and then stopped its server). */
let serverStarting: Promise<unknown> | undefined;
/** Aborts a dev server start that a shutdown interrupts. */
const startAbort = new AbortController();
let shuttingDown = false;
let forcedExitCode: number | undefined;

function spawnChild(name: string, script: string, env: NodeJS.ProcessEnv): void {
  const proc = startProcess(process.execPath, [path.join(root, script)], {
    cwd: root,
    env,
    // Its own process group: a Ctrl-C in the terminal reaches only this process, which stops things in order.
    detached: true,
    stopGraceMs: CHILD_STOP_TIMEOUT_MS,
    onLine: (line, stream) =>
      (stream === 'stdout' ? process.stdout : process.stderr).write(`[${name}] ${line}\n`),
  });
  children.push({ name, proc });
  void proc.exited.then((status) => {
    if (shuttingDown) return;
    say(
      status.error
        ? `${name} ${describeExit(status)}; stopping everything`
        : `${name} exited unexpectedly (${status.signal ?? `code ${String(status.code)}`}); stopping everything`,
    );
    void shutdown(1);
  });
}

async function shutdown(exitCode: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  startAbort.abort(new Error('shutting down'));
  const running = children.filter((c) => !c.proc.hasExited);
  if (running.length) say(`stopping ${running.map((c) => c.name).join(' and ')}…`);
  await Promise.all(
    running.map(async (c) => {
      const slow = setTimeout(
        () => say(`${c.name} did not stop within ${CHILD_STOP_TIMEOUT_MS / 1000} s; killing it`),
        CHILD_STOP_TIMEOUT_MS,
      );
      await c.proc.stop();
      clearTimeout(slow);
    }),
  );
  // A start in progress gives up on the abort above and stops its server before it settles.
  await serverStarting?.catch(() => undefined);
  if (server) {
    say('stopping the Temporal dev server…');
    await server.stop();
    await removeDevServerMarker(dataDir, server.pid).catch(() => undefined);
  }
  say('stopped');
  process.exit(forcedExitCode ?? exitCode);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (shuttingDown) {
      // Second Ctrl-C: no more patience. The shutdown under way still waits for everything to be gone.
      say(`${signal} received again: killing everything`);
      forcedExitCode = 130;
      for (const c of children) c.proc.signal('SIGKILL');
      server?.kill9();
      return;
    }
    say(`${signal} received`);
    void shutdown(0);
  });
}

async function main(): Promise<void> {
  const temporalCli = await ensureTemporalCli();
  mkdirSync(dataDir, { recursive: true });
  const plan = await planTemporal({
    address,
    explicit: addressNamed,
    dataDir,
    probe: () => waitForTemporal(address, 1_500).catch(() => undefined),
  });

  let uiUrl: string | undefined;
  if (plan.kind === 'remote') {
    // A remote cluster (maybe with TLS / API keys): the worker and API connect with their own settings.
    say(`using the Temporal server at ${address} (remote: not started or prepared by npm start)`);
  } else if (plan.kind === 'foreign') {
    await plan.connection.close();
    throw new Error(plan.reason);
  } else if (plan.kind === 'own' || plan.kind === 'named') {
    const { connection } = plan;
    try {
      if (plan.kind === 'own') {
        await prepareNamespace(connection, namespace);
        say(`using the Temporal dev server npm start started earlier at ${address} (pid ${plan.marker.pid})`);
      } else {
        // Not ours: what the workflows cannot run without (their search attributes), and nothing else.
        const prepared = await prepareNamespace(connection, namespace, { retentionDays: null });
        const added = prepared.addedSearchAttributes;
        say(
          `using the Temporal server at ${address} named by TEMPORAL_ADDRESS (not started by npm start: ` +
            `namespace ${namespace}'s retention left as it is, ${prepared.retentionDays} ` +
            `day${prepared.retentionDays === 1 ? '' : 's'}` +
            `${added.length > 0 ? `; registered the search attributes ${added.join(', ')}` : ''})`,
        );
      }
    } finally {
      await connection.close();
    }
  } else {
    const { port } = parseAddress(address);
    const dbFile = path.join(dataDir, 'temporal.sqlite');
    const shown = path.relative(root, dbFile).startsWith('..') ? dbFile : path.relative(root, dbFile);
    say(`starting the Temporal dev server on ${address} (state in ${shown})…`);
    const starting = startDevServer({
      temporalCli,
      port,
      uiPort,
      dbFile,
      namespace,
      detached: true,
      signal: startAbort.signal,
      log: (line) => process.stderr.write(`[temporal] ${line}\n`),
    });
    serverStarting = starting;
    server = await starting;
    // What lets a later npm start recognise this server as its own (e.g. left running by a crash).
    await writeDevServerMarker(dataDir, {
      pid: server.pid,
      address: server.address,
      dbFile,
      startedAt: new Date().toISOString(),
    });
    uiUrl = `${server.uiUrl}/namespaces/${namespace}/workflows`;
    void server.exited.then((code) => {
      if (shuttingDown) return;
      say(`the Temporal dev server exited unexpectedly (code ${String(code)}); stopping everything`);
      void shutdown(1);
    });
  }
  if (shuttingDown) return; // a Ctrl-C arrived while the server was starting

  // The laptop outbox: messages of channels without a provider are written here (GET /outbox, incident outbox).
  const outbox = process.env['INCIDENT_OUTBOX'] || path.join(dataDir, 'outbox.jsonl');
  mkdirSync(path.dirname(outbox), { recursive: true });
  // The worker's Temporal SDK metrics: WORKER_METRICS_ADDRESS, else a free loopback port.
  const workerMetrics = process.env['WORKER_METRICS_ADDRESS'] || `127.0.0.1:${await freePort()}`;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    INCIDENT_OUTBOX: outbox,
    // Policy snapshots by hash (src/policy-snapshots.ts): the API writes what the worker reads, whatever the cwd.
    INCIDENT_POLICY_DIR: process.env['INCIDENT_POLICY_DIR'] || path.join(dataDir, 'policies'),
    WORKER_METRICS_ADDRESS: workerMetrics,
  };
  spawnChild('worker', 'src/worker.ts', env);
  spawnChild('api', 'src/starter/api/server.ts', env);

  say(`Temporal gRPC: ${address}  (namespace ${namespace})`);
  say(`Temporal UI:   ${uiUrl ?? '(the existing server’s own web UI)'}`);
  say(`API:           ${apiUrl}`);
  say(
    `Metrics:       http://${workerMetrics}/metrics  (the worker's Temporal SDK metrics; the API's: ${apiUrl}/metrics)`,
  );
  say(
    `Outbox:        on, in ${outbox} — messages with no provider configured land there: ${apiUrl}/outbox, ` +
      `or INCIDENT_OUTBOX=${outbox} npm exec -- incident outbox`,
  );
  say('Ctrl-C stops everything.');
}

main().catch(async (err: unknown) => {
  if (shuttingDown) return; // e.g. the dev server start given up because of a Ctrl-C
  say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
