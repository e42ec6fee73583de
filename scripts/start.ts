/**
 * `npm start`: the whole system on one machine. Uses the Temporal server at `TEMPORAL_ADDRESS`
 * (default 127.0.0.1:7233) if one answers there, else starts the Temporal CLI's dev server persisting to
 * `.data/temporal.sqlite` (web UI on 8233); then runs the worker and the HTTP API as child processes.
 * Ctrl-C / SIGTERM stops the children first (so the worker can finish its tasks against a live server),
 * then the dev server. If any of them dies on its own, everything is stopped and the exit code is 1.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { prepareNamespace, waitForTemporal } from '../src/starter/namespace-setup.ts';
import { startDevServer } from './lib/dev-server.ts';
import type { DevServer } from './lib/dev-server.ts';
import { ensureTemporalCli } from './lib/tools.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const address = process.env['TEMPORAL_ADDRESS'] || '127.0.0.1:7233';
const namespace = process.env['TEMPORAL_NAMESPACE'] || 'default';
const uiPort = Number(process.env['TEMPORAL_UI_PORT'] || '8233');
const apiUrl = `http://${process.env['HOST'] || '127.0.0.1'}:${process.env['PORT'] || '3000'}`;
/** How long children get to shut down gracefully before SIGKILL. */
const CHILD_STOP_TIMEOUT_MS = 15_000;

function say(line: string): void {
  process.stdout.write(`[start] ${line}\n`);
}

/** Splits a stream into lines and prints each with `prefix`. */
function pipeWithPrefix(stream: NodeJS.ReadableStream, out: NodeJS.WriteStream, prefix: string): void {
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) out.write(`${prefix}${line}\n`);
  });
  stream.on('end', () => {
    if (partial) out.write(`${prefix}${partial}\n`);
  });
}

interface Managed {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  hasExited: boolean;
}

const children: Managed[] = [];
let server: DevServer | undefined;
let shuttingDown = false;

/** Signals a child's whole process group (children run detached, in groups of their own). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function spawnChild(name: string, script: string, env: NodeJS.ProcessEnv): Managed {
  // Detached: a Ctrl-C in the terminal reaches only this process, which then stops things in order.
  const child = spawn(process.execPath, [path.join(root, script)], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = `[${name}] `;
  pipeWithPrefix(child.stdout, process.stdout, prefix);
  pipeWithPrefix(child.stderr, process.stderr, prefix);
  const managed: Managed = { name, child, hasExited: false, exited: Promise.resolve() };
  managed.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      managed.hasExited = true;
      resolve();
      if (!shuttingDown) {
        say(`${name} exited unexpectedly (${signal ?? `code ${String(code)}`}); stopping everything`);
        void shutdown(1);
      }
    });
    child.once('error', (err) => {
      managed.hasExited = true;
      resolve();
      if (!shuttingDown) {
        say(`${name} could not be started: ${err.message}`);
        void shutdown(1);
      }
    });
  });
  children.push(managed);
  return managed;
}

async function shutdown(exitCode: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  const running = children.filter((c) => !c.hasExited);
  if (running.length) say(`stopping ${running.map((c) => c.name).join(' and ')}…`);
  for (const c of running) signalGroup(c.child, 'SIGTERM');
  await Promise.all(
    running.map(async (c) => {
      const timedOut = await Promise.race([
        c.exited.then(() => false),
        sleep(CHILD_STOP_TIMEOUT_MS).then(() => true),
      ]);
      if (timedOut) {
        say(`${c.name} did not stop within ${CHILD_STOP_TIMEOUT_MS / 1000} s; killing it`);
        signalGroup(c.child, 'SIGKILL');
        await c.exited;
      }
    }),
  );
  if (server) {
    say('stopping the Temporal dev server…');
    await server.stop();
  }
  say('stopped');
  process.exit(exitCode);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (shuttingDown) {
      // Second Ctrl-C: no more patience.
      for (const c of children) signalGroup(c.child, 'SIGKILL');
      server?.kill9();
      process.exit(130);
    }
    say(`${signal} received`);
    void shutdown(0);
  });
}
// Last resort if this process dies of an error: leave nothing running (must be synchronous).
process.on('exit', () => {
  for (const c of children) if (!c.hasExited) signalGroup(c.child, 'SIGKILL');
});

function isLoopback(host: string): boolean {
  return ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host) || host.startsWith('127.');
}

async function main(): Promise<void> {
  const temporalCli = await ensureTemporalCli();
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  if (separator < 0 || !Number.isInteger(port))
    throw new Error(`TEMPORAL_ADDRESS must be host:port, got ${address}`);

  let uiUrl: string | undefined;
  if (!isLoopback(host)) {
    // A remote cluster (maybe with TLS / API keys): the worker and API connect with their own settings.
    say(`using the Temporal server at ${address} (remote: not started or prepared by npm start)`);
  } else {
    const existing = await waitForTemporal(address, 1_500).catch(() => undefined);
    if (existing) {
      try {
        await prepareNamespace(existing, namespace);
      } finally {
        await existing.close();
      }
      say(`using the Temporal server already running at ${address}`);
    } else {
      mkdirSync(path.join(root, '.data'), { recursive: true });
      const dbFile = path.join(root, '.data', 'temporal.sqlite');
      say(`starting the Temporal dev server on ${address} (state in ${path.relative(root, dbFile)})…`);
      server = await startDevServer({
        temporalCli,
        port,
        uiPort,
        dbFile,
        namespace,
        detached: true,
        log: (line) => process.stderr.write(`[temporal] ${line}\n`),
      });
      uiUrl = `${server.uiUrl}/namespaces/${namespace}/workflows`;
      void server.exited.then((code) => {
        if (shuttingDown) return;
        say(`the Temporal dev server exited unexpectedly (code ${String(code)}); stopping everything`);
        void shutdown(1);
      });
    }
  }
  if (shuttingDown) return; // a Ctrl-C arrived while the server was starting

  const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
  spawnChild('worker', 'src/worker.ts', env);
  spawnChild('api', 'src/starter/listen.ts', env);

  say(`Temporal gRPC: ${address}  (namespace ${namespace})`);
  say(`Temporal UI:   ${uiUrl ?? '(the existing server’s own web UI)'}`);
  say(`API:           ${apiUrl}`);
  say('Ctrl-C stops everything.');
}

main().catch(async (err: unknown) => {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
