import { randomUUID } from 'node:crypto';
import { loopbackEnv } from '../test/support/loopback-env.ts';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { startDevServer } from '../scripts/lib/dev-server.ts';
import type { DevServer } from '../scripts/lib/dev-server.ts';
import { freePort } from '../scripts/lib/ports.ts';
import { startProcess } from '../scripts/lib/process.ts';
import type { ManagedProcess } from '../scripts/lib/process.ts';
import { loadSettings } from '../src/config.ts';
import { startApi } from '../src/starter/api/server.ts';
import { createWorker } from '../src/worker.ts';
import { SlackStandIn } from '../test/support/slack-server.ts';

/** Shared helpers for the benchmarks: percentiles, paced load, a summary line, the stack, the floor. */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function summarize(name: string, samples: readonly number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    name,
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/**
 * Bounds a whole bench run: past `seconds` it says so and exits 1 (its child processes and the dev server's exit
 * hook go with it). Not holding the process open.
 */
export function giveUpAfter(bench: string, seconds: string | number): void {
  const timer = setTimeout(
    () => {
      console.error(`${bench} did not finish within ${seconds} s; giving up`);
      process.exit(1);
    },
    Number(seconds) * 1000,
  );
  timer.unref();
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Starts a project entry point (`src/worker.ts`, ...) on this Node, its output dropped unless BENCH_VERBOSE. */
export function startChild(name: string, args: string[], env: NodeJS.ProcessEnv): ManagedProcess {
  const verbose = Boolean(process.env['BENCH_VERBOSE']);
  return startProcess(process.execPath, args, {
    cwd: ROOT,
    env,
    onLine: (line) => {
      if (verbose) process.stderr.write(`[${name}] ${line}\n`);
    },
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
export async function stopChild(child: ManagedProcess): Promise<void> {
  await child.stop(10_000);
}

/** Polls `check` every 200 ms until it is true; throws after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`not ready within ${timeoutMs} ms`);
}

/**
 * Calls `fire(i)` for i in 0..total-1 with at most `concurrency` calls in flight (closed loop: a new call
 * starts as soon as one finishes). Bounded in count; rejects with the first error once the others settled.
 */
export async function concurrent(
  total: number,
  concurrency: number,
  fire: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < total && failure === undefined) {
      const i = next;
      next += 1;
      await fire(i).catch((err: unknown) => {
        failure ??= err;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, lane));
  if (failure !== undefined)
    throw failure instanceof Error ? failure : new Error('a call failed', { cause: failure });
}

/**
 * The product on a dev server started here, as `npm start` runs it: `processes` (default) runs the worker
 * and the API as processes of their own (`src/worker.ts`, `src/starter/api/server.ts`), `inline` runs them
 * in this process. With `persistent`, the dev server keeps its state in a SQLite file (WAL, as `npm start`
 * does) in a temporary directory, and has its web UI; otherwise in memory and headless. Slack is a local
 * stand-in; channels without a provider write to a local outbox, as under `npm start`. Resolves once the
 * API is ready and a worker polls the incidents' task queue.
 */
export interface BenchStack {
  server: DevServer;
  slack: SlackStandIn;
  apiAddress: string;
  webhookToken: string;
  env: NodeJS.ProcessEnv;
  /** The processes to watch (RSS, CPU): the dev server, and the worker and the API when they run apart. */
  pids: Record<string, number>;
  stop(): Promise<void>;
}

export async function startBenchStack(
  options: { topology?: 'processes' | 'inline'; persistent?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<BenchStack> {
  const topology = options.topology ?? 'processes';
  const dir = await mkdtemp(path.join(tmpdir(), 'pno-bench-'));
  const server = await startDevServer({
    port: await freePort(),
    log: () => undefined,
    ...(options.persistent ? { dbFile: path.join(dir, 'temporal.sqlite') } : { headless: true }),
  });
  const slackToken = `xoxb-${randomUUID()}`;
  const webhookToken = randomUUID();
  const slack = new SlackStandIn({ token: slackToken });
  const apiPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...loopbackEnv(),
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `bench-${randomUUID()}`,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: slackToken,
    ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
    INCIDENT_OUTBOX: path.join(dir, 'outbox.jsonl'),
    INCIDENT_DATA_DIR: dir,
    HOST: '127.0.0.1',
    PORT: topology === 'inline' ? '0' : String(apiPort),
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const children =
    topology === 'inline'
      ? []
      : [startChild('worker', ['src/worker.ts'], env), startChild('api', ['src/starter/api/server.ts'], env)];
  const inline = topology === 'inline' ? await startInline(env) : undefined;
  const apiAddress = inline?.address ?? `http://127.0.0.1:${apiPort}`;
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    await inline?.stop();
    await slack.stop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Ready: Temporal takes work and a worker polls (the worker bundles its workflows first, seconds).
    await waitUntil(async () => {
      const [ready, worker] = await Promise.all(
        ['/readyz', '/healthz/worker'].map((p) => fetch(`${apiAddress}${p}`).catch(() => undefined)),
      );
      return ready?.status === 200 && worker?.status === 200;
    }, 120_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const pids: Record<string, number> = { temporal: server.pid };
  const [worker, api] = children;
  if (worker?.pid !== undefined) pids['worker'] = worker.pid;
  if (api?.pid !== undefined) pids['api'] = api.pid;
  return { server, slack, apiAddress, webhookToken, env, pids, stop };
}

async function startInline(env: NodeJS.ProcessEnv) {
  const settings = loadSettings(env);
  const { worker } = await createWorker(settings, {}, env);
  const running = worker.run();
  const started = await startApi(settings, env);
  return {
    address: started.address,
    stop: async () => {
      await started.app.close();
      worker.shutdown();
      await running;
    },
  };
}

/**
 * The floor: a trivial workflow (bench/floor-workflow.ts) whose one activity does nothing but note when it
 * ran, on its own task queue and worker in this process, on the same server. `start(id)` starts one;
 * `touched` has when each one's activity ran.
 */
export async function startFloor(address: string) {
  const taskQueue = `floor-${randomUUID()}`;
  const touched = new Map<string, number>();
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
    activities: { touch: (id: string) => Promise.resolve(void touched.set(id, Date.now())) },
  });
  const running = worker.run();
  const client = new Client({ connection: await Connection.connect({ address }) });
  return {
    touched,
    start: (id: string) =>
      client.workflow.start('floorWorkflow', { taskQueue, workflowId: id, args: [id] }).then(() => undefined),
    stop: async () => {
      worker.shutdown();
      await running;
      await client.connection.close();
      await connection.close();
    },
  };
}

/** A process's resident memory (bytes) and CPU time so far (seconds), from /proc (Linux); undefined if gone. */
export function processUsage(pid: number): { rss: number; cpuSeconds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
    // `/proc/<pid>/stat`: "pid (comm) state …": utime and stime are the 14th and 15th fields.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rss: rssKb * 1024, cpuSeconds: ticks / 100 };
  } catch {
    return undefined;
  }
}
