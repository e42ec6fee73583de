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
