import { fileURLToPath } from 'node:url';
import { startProcess } from '../scripts/lib/process.ts';
import type { ManagedProcess } from '../scripts/lib/process.ts';

/** Shared helpers for the benchmarks: percentiles, paced load, a summary line. */

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
 * Calls `fire(i)` `total` times at `perSecond`, on a fixed schedule (open
 * loop: a slow answer never delays the next request). Bounded in count.
 */
export async function paced(
  total: number,
  perSecond: number,
  fire: (i: number) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i += 1) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(fire(i));
  }
  await Promise.all(pending);
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
