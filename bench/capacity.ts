/**
 * bench/capacity: the capacity of the `npm start` configuration in new incidents per second, and the product's
 * latency against the floor's below it.
 *
 * The stack as `npm start` runs it: the Temporal dev server persisting to a SQLite file (WAL, `synchronous=normal`)
 * with its web UI, the worker and the API as processes of their own; Slack is a local stand-in, the channels
 * without a provider write to the local outbox. After a warm-up (`--warmup` seconds at 2/s: JIT, the first
 * workflows, connections; not reported), two phases:
 *
 * 1. Capacity. The load steps through `--rates` (new incidents per second), each for `--seconds`: every alert is
 *    a new Alertmanager group, so a new incident, POSTed to the webhook; its latency is from the first POST to
 *    the Slack stand-in receiving its page (the initial report in #pno-incidents). A 503 is retried after its
 *    Retry-After, as Alertmanager retries, the latency still counted from the first POST. The capacity is the
 *    highest rate at which every page arrived and the page p99 is under 1 s.
 * 2. Against the floor, at `--compare` rates (default: half the capacity, and the rates of `--rates` below
 *    it): the same alerts interleaved, at the same rate and on the same server, with the floor, a trivial
 *    workflow whose one activity does nothing (bench/floor-workflow.ts), from start call to the activity
 *    running. The aim: the page p99 within 1.2× of the floor's, both measured in the same step.
 *
 * A page (or floor activity) that has not arrived `--page-timeout` seconds after its first POST (start) is a
 * failure and counts as an infinite latency in the percentiles, never left out. Per step: rate offered and
 * achieved, p50/p95/p99/max of pages (and floor), failures, p99 ratio, the webhook's own answer time, 503s,
 * and CPU and peak RSS of each process.
 *
 * 3. With `--floor-rates`, the floor alone at those rates: what the platform itself (this dev server on this
 *    machine, the worker's SDK) sustains with no product in the way, the ceiling of any capacity above.
 *
 *   npm run bench:capacity [-- --rates 10,20,30,40,50,60 --compare 5,10,20 --floor-rates 10,20,30,40
 *                           --seconds 10 --page-timeout 10 --pause 5 --warmup 10 --all --profile dir]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { alertmanagerPayload } from '../test/support/alerts.ts';
import { percentile, processUsage, startBenchStack, startFloor, giveUpAfter } from './support.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '10,20,30,40,50,60' },
    /** Rates of the interleaved comparison with the floor; default: half the capacity and the rates below it. */
    compare: { type: 'string' },
    /** Rates of the floor alone (no incidents), for the platform's own capacity; default: not run. */
    'floor-rates': { type: 'string' },
    seconds: { type: 'string', default: '10' },
    'page-timeout': { type: 'string', default: '10' },
    pause: { type: 'string', default: '5' },
    /** Seconds of load at 2/s before the first step, not reported: JIT, first bundle loads, connections. */
    warmup: { type: 'string', default: '10' },
    topology: { type: 'string', default: 'processes' },
    /** Go on after a step that collapsed (more than 10 % failures). */
    all: { type: 'boolean', default: false },
    'timeout-seconds': { type: 'string', default: '900' },
    /** Writes CPU profiles of the worker and the API (`node --cpu-prof`) into this directory. */
    profile: { type: 'string' },
  },
});
/** A comma-separated list of positive rates, or the bench stops saying which option is wrong. */
function ratesOf(text: string, option: string): number[] {
  const rates = text.split(',').map(Number);
  if (rates.every((n) => Number.isFinite(n) && n > 0)) return rates;
  console.error(`${option} must be comma-separated positive numbers (new incidents per second)`);
  process.exit(2);
}
const RATES = ratesOf(values.rates, '--rates');
const SECONDS = Number(values.seconds);
const PAGE_TIMEOUT_MS = Number(values['page-timeout']) * 1000;
const PAUSE_MS = Number(values.pause) * 1000;
const P99_LIMIT_MS = 1_000;
const FLOOR_RATIO_LIMIT = 1.2;
const WARMUP_SECONDS = Number(values.warmup);
if (
  ![...RATES, SECONDS, PAGE_TIMEOUT_MS].every((n) => Number.isFinite(n) && n > 0) ||
  ![PAUSE_MS, WARMUP_SECONDS].every((n) => Number.isFinite(n) && n >= 0)
) {
  console.error(
    '--rates (comma-separated), --seconds and --page-timeout must be positive numbers; --pause and --warmup ' +
      'numbers of seconds, 0 or more',
  );
  process.exit(2);
}

giveUpAfter('bench:capacity', values['timeout-seconds']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Sample {
  /** Latency in ms; Infinity when it never arrived within the bound. */
  ms: number;
  failure?: string;
}

interface StepResult {
  rate: number;
  achieved: number;
  pages: Sample[];
  floor: Sample[];
  webhook: number[];
  retried503: number;
  cpu: Record<string, number>;
  rss: Record<string, number>;
}

const stack = await startBenchStack({
  topology: values.topology === 'inline' ? 'inline' : 'processes',
  persistent: true,
  env: {
    // The API logs as under `npm start` (each request at info).
    LOG_LEVEL: 'info',
    ...(values.profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values.profile}` } : {}),
  },
});
const floor = await startFloor(stack.server.address);
const watched: Record<string, number> = { ...stack.pids, bench: process.pid };

/** The first #pno-incidents post of each incident id, read from the stand-in as posts arrive. */
const pagedAt = new Map<string, number>();
let postsRead = 0;
function readPages(): void {
  const posts = stack.slack.posts;
  for (; postsRead < posts.length; postsRead++) {
    const post = posts[postsRead];
    if (!post || post.channel !== '#pno-incidents') continue;
    const id = /INC-[0-9a-f]{8}/.exec(post.text)?.[0];
    if (id && !pagedAt.has(id)) pagedAt.set(id, post.at);
  }
}

/** One delivery of alert `i`, given what is left of its page bound (`timeoutMs`). */
async function postAlert(
  i: number,
  run: string,
  timeoutMs: number,
): Promise<{ status: number; id?: string; retryAfterMs: number }> {
  const groupKey = `{}:{alertname="CapacityBench",run="${run}",n="${i}"}`;
  const res = await fetch(`${stack.apiAddress}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.webhookToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(
      alertmanagerPayload({
        groupKey,
        alerts: [{ labels: { alertname: 'CapacityBench', run, n: String(i) }, fingerprint: `${run}${i}` }],
      }),
    ),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json().catch(() => ({}))) as { incidents?: { id?: string | null }[] };
  const id = body.incidents?.[0]?.id ?? undefined;
  return {
    status: res.status,
    ...(id ? { id } : {}),
    // A Retry-After that is not a number of seconds is read as 1 s (the loop stays bounded by the page bound).
    retryAfterMs: (Number(res.headers.get('retry-after')) || 1) * 1000,
  };
}

/** What a step sends: new incidents, the floor, or both interleaved. */
type Load = 'incidents' | 'floor' | 'both';

async function runStep(rate: number, seconds: number, load: Load): Promise<StepResult> {
  const run = randomUUID().slice(0, 8);
  const total = Math.round(rate * seconds);
  const alerts: { first: number; id?: string; failure?: string }[] = [];
  const floors: { started: number; id: string; failure?: string }[] = [];
  const webhook: number[] = [];
  let retried503 = 0;

  const sendAlert = async (i: number) => {
    const entry: (typeof alerts)[number] = { first: Date.now() };
    alerts.push(entry);
    for (;;) {
      const t = Date.now();
      try {
        // A retry after a 503 has what is left of the bound, not a bound of its own.
        const answer = await postAlert(i, run, Math.max(1, entry.first + PAGE_TIMEOUT_MS - t));
        webhook.push(Date.now() - t);
        if (answer.status === 202 && answer.id) {
          entry.id = answer.id;
          return;
        }
        if (answer.status !== 503) {
          entry.failure = `webhook answered ${answer.status}`;
          return;
        }
        retried503 += 1;
        if (Date.now() + answer.retryAfterMs - entry.first >= PAGE_TIMEOUT_MS) {
          entry.failure = 'still 503 at the bound';
          return;
        }
        await sleep(answer.retryAfterMs);
      } catch (err) {
        webhook.push(Date.now() - t);
        entry.failure = err instanceof Error ? err.message : String(err);
        return;
      }
    }
  };
  const startFloorRun = async (i: number) => {
    const entry = { started: Date.now(), id: `floor-${run}-${i}` };
    floors.push(entry);
    // A start that does not answer within the bound is a failure too (and never holds the step open).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('the start did not answer within the bound')),
        PAGE_TIMEOUT_MS,
      );
    });
    await Promise.race([floor.start(entry.id), late])
      .catch((err: unknown) => {
        Object.assign(entry, { failure: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => clearTimeout(timer));
  };

  const before = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, processUsage(pid)]));
  const peakRss: Record<string, number> = {};
  const sampleRss = () => {
    for (const [name, pid] of Object.entries(watched)) {
      const rss = processUsage(pid)?.rss ?? 0;
      peakRss[name] = Math.max(peakRss[name] ?? 0, rss);
    }
  };
  const sampler = setInterval(() => {
    sampleRss();
    readPages();
  }, 250);
  const stepStart = Date.now();

  // Open loop, interleaved: alert i at i/rate, floor i half a period later; a slow answer never delays the next.
  const pending: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    await sleep(started + (i * 1000) / rate - performance.now());
    if (load !== 'floor') pending.push(sendAlert(i));
    if (load === 'incidents') continue;
    await sleep(started + ((i + 0.5) * 1000) / rate - performance.now());
    pending.push(startFloorRun(i));
  }
  await Promise.all(pending);
  // Until every page and floor activity has arrived, or the bound of the last one sent has passed.
  const lastBound =
    Math.max(...alerts.map((a) => a.first), ...floors.map((f) => f.started)) + PAGE_TIMEOUT_MS;
  while (Date.now() < lastBound) {
    readPages();
    const allPaged = alerts.every((a) => a.failure !== undefined || (a.id && pagedAt.has(a.id)));
    const allFloor = floors.every((f) => f.failure !== undefined || floor.touched.has(f.id));
    if (allPaged && allFloor) break;
    await sleep(100);
  }
  clearInterval(sampler);
  readPages();
  sampleRss();
  const wall = (Date.now() - stepStart) / 1000;
  const cpu: Record<string, number> = {};
  for (const [name, pid] of Object.entries(watched)) {
    const now = processUsage(pid)?.cpuSeconds;
    const then = before[name]?.cpuSeconds;
    cpu[name] = now !== undefined && then !== undefined ? (100 * (now - then)) / wall : Number.NaN;
  }

  const pages: Sample[] = alerts.map((a) => {
    if (a.failure) return { ms: Infinity, failure: a.failure };
    const at = a.id ? pagedAt.get(a.id) : undefined;
    if (at === undefined || at - a.first > PAGE_TIMEOUT_MS)
      return { ms: Infinity, failure: 'no page within the bound' };
    return { ms: at - a.first };
  });
  const floorSamples: Sample[] = floors.map((f) => {
    if (f.failure) return { ms: Infinity, failure: f.failure };
    const at = floor.touched.get(f.id);
    if (at === undefined || at - f.started > PAGE_TIMEOUT_MS)
      return { ms: Infinity, failure: 'no activity within the bound' };
    return { ms: at - f.started };
  });
  // Achieved: pages (or, floor alone, floor activities) that arrived within the bound, per second.
  const arrivals =
    load === 'floor'
      ? floors.flatMap((f) => {
          const at = floor.touched.get(f.id);
          return at !== undefined && at - f.started <= PAGE_TIMEOUT_MS ? [{ sent: f.started, at }] : [];
        })
      : alerts.flatMap((a) => {
          const at = a.id ? pagedAt.get(a.id) : undefined;
          return at !== undefined && at - a.first <= PAGE_TIMEOUT_MS ? [{ sent: a.first, at }] : [];
        });
  const pagedTimes = arrivals.map((a) => a.at);
  const firstSent = Math.min(
    ...(load === 'floor' ? floors.map((f) => f.started) : alerts.map((a) => a.first)),
  );
  const span = Math.max(
    seconds,
    ((pagedTimes.length ? Math.max(...pagedTimes) : firstSent) - firstSent) / 1000,
  );
  return {
    rate,
    achieved: pagedTimes.length / span,
    pages,
    floor: floorSamples,
    webhook,
    retried503,
    cpu,
    rss: peakRss,
  };
}

const sorted = (samples: Sample[]) => samples.map((s) => s.ms).sort((a, b) => a - b);
const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)}` : '∞');
const stats = (samples: Sample[]) => {
  const s = sorted(samples);
  return {
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s.at(-1) ?? Number.NaN,
    failures: samples.filter((x) => x.failure).length,
  };
};

/** One phase's steps, printed as they finish; stops after a collapse (more than 10 % unpaged) unless --all. */
async function phase(rates: number[], load: Load): Promise<StepResult[]> {
  const withFloor = load !== 'incidents';
  const results: StepResult[] = [];
  for (const rate of rates) {
    await sleep(PAUSE_MS);
    const result = await runStep(rate, SECONDS, load);
    results.push(result);
    const p = stats(result.pages);
    const f = stats(result.floor);
    const w = percentile(
      [...result.webhook].sort((a, b) => a - b),
      99,
    );
    console.log(
      `  ${rate}/s: achieved ${result.achieved.toFixed(1)}/s  ` +
        (load === 'floor' ? '' : `page p50 ${ms(p.p50)} p99 ${ms(p.p99)} ms, ${p.failures} failed`) +
        (withFloor ? `; floor p50 ${ms(f.p50)} p99 ${ms(f.p99)} ms, ${f.failures} failed` : '') +
        `; webhook p99 ${ms(w)} ms, 503s ${result.retried503}`,
    );
    const reasons = [
      ...new Set([...result.pages, ...result.floor].flatMap((s) => (s.failure ? [s.failure] : []))),
    ];
    if (reasons.length) console.log(`    failures: ${reasons.slice(0, 3).join('; ')}`);
    const collapsed =
      load === 'floor' ? f.failures > result.floor.length / 10 : p.failures > result.pages.length / 10;
    if (!values.all && collapsed) {
      console.log(
        `  more than 10 % of the pages failed at ${rate}/s: collapse; the higher rates are not run`,
      );
      break;
    }
  }
  return results;
}

/** A phase's table; `judge` says whether a step meets its aim (✗ when not). */
function table(results: StepResult[], withFloor: boolean, judge: (r: StepResult) => boolean): void {
  const names = Object.keys(watched);
  const floorHead = withFloor ? ' floor p50 | p95 | p99 | max | failed | p99 ratio |' : '';
  console.log('');
  console.log(
    `| offered/s | achieved/s | page p50 | p95 | p99 | max | failed |${floorHead} webhook p99 | 503s | ${names.map((n) => `CPU % ${n}`).join(' | ')} | ${names.map((n) => `RSS MB ${n}`).join(' | ')} |`,
  );
  console.log(`|${' --- |'.repeat((withFloor ? 15 : 9) + 2 * names.length)}`);
  for (const r of results) {
    const p = stats(r.pages);
    const f = stats(r.floor);
    const ratio = p.p99 / f.p99;
    const mark = judge(r) ? '' : ' ✗';
    const w = percentile(
      [...r.webhook].sort((a, b) => a - b),
      99,
    );
    const floorCells = withFloor
      ? ` ${ms(f.p50)} | ${ms(f.p95)} | ${ms(f.p99)} | ${ms(f.max)} | ${f.failures}/${r.floor.length} ` +
        `| ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—'}${mark} |`
      : '';
    console.log(
      `| ${r.rate} | ${r.achieved.toFixed(1)} | ${ms(p.p50)} | ${ms(p.p95)} | ${ms(p.p99)}${withFloor ? '' : mark} | ${ms(p.max)} | ${p.failures}/${r.pages.length} |` +
        `${floorCells} ${ms(w)} | ${r.retried503} ` +
        `| ${names.map((n) => (r.cpu[n] ?? Number.NaN).toFixed(0)).join(' | ')} ` +
        `| ${names.map((n) => ((r.rss[n] ?? 0) / 1e6).toFixed(0)).join(' | ')} |`,
    );
  }
}

const withinCapacity = (r: StepResult) => {
  const p = stats(r.pages);
  return p.failures === 0 && p.p99 < P99_LIMIT_MS;
};
const withinFloor = (r: StepResult) => {
  const p = stats(r.pages);
  const f = stats(r.floor);
  return withinCapacity(r) && f.failures === 0 && p.p99 <= FLOOR_RATIO_LIMIT * f.p99;
};

let failed = false;
try {
  console.log(
    `capacity: ${RATES.join(', ')} new incidents/s for ${SECONDS} s each, then against the floor; ` +
      `page bound ${PAGE_TIMEOUT_MS / 1000} s; ${values.topology} topology (as npm start: SQLite WAL dev server ` +
      `${stack.server.address} with web UI, worker and API processes); node ${process.version}`,
  );
  if (WARMUP_SECONDS > 0) {
    const w = await runStep(2, WARMUP_SECONDS, 'both');
    const unpaged = w.pages.filter((p) => p.failure).length;
    console.log(`  warm-up: ${w.pages.length} incidents at 2/s, ${unpaged} not paged in time (not reported)`);
  }
  console.log('phase 1, capacity: new incidents alone');
  const alone = await phase(RATES, 'incidents');
  // The highest rate such that it and every step below it met the aim: a lucky step above a failed one is no
  // capacity.
  const ascending = [...alone].sort((a, b) => a.rate - b.rate);
  const firstMiss = ascending.findIndex((r) => !withinCapacity(r));
  const capacity = (firstMiss === -1 ? ascending : ascending.slice(0, firstMiss)).at(-1)?.rate;
  const compareRates = values.compare
    ? ratesOf(values.compare, '--compare')
    : [
        ...new Set([
          ...RATES.filter((r) => r < (capacity ?? RATES[0] ?? 2) / 2),
          Math.max(1, Math.floor((capacity ?? 2) / 2)),
        ]),
      ].sort((a, b) => a - b);
  console.log(
    `phase 2, against the floor: new incidents and floor workflows interleaved, each at ${compareRates.join(', ')}/s`,
  );
  const compared = await phase(compareRates, 'both');
  const floorRates = values['floor-rates'] ? ratesOf(values['floor-rates'], '--floor-rates') : [];
  if (floorRates.length > 0) console.log(`phase 3, the floor alone: ${floorRates.join(', ')}/s`);
  const floorAlone = await phase(floorRates, 'floor');

  table(alone, false, withinCapacity);
  console.log('');
  console.log(
    capacity === undefined
      ? `capacity: below ${RATES[0]} new incidents/s (no step had every page within ${PAGE_TIMEOUT_MS / 1000} s and p99 < ${P99_LIMIT_MS} ms)`
      : `capacity: ${capacity} new incidents/s (highest step with every page delivered and page p99 < ${P99_LIMIT_MS} ms; aim ≥ 40)`,
  );
  table(compared, true, withinFloor);
  console.log('');
  for (const r of compared) {
    const ratio = stats(r.pages).p99 / stats(r.floor).p99;
    console.log(
      `against the floor at ${r.rate}/s each: page p99 ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'not finite:'} the floor's (aim ≤ ${FLOOR_RATIO_LIMIT}×)${withinFloor(r) ? '' : ' ✗'}`,
    );
  }
  if (floorAlone.length > 0) {
    const names = Object.keys(watched);
    console.log('');
    console.log(
      `| floor alone/s | achieved/s | floor p50 | p95 | p99 | max | failed | ${names.map((n) => `CPU % ${n}`).join(' | ')} |`,
    );
    console.log(`|${' --- |'.repeat(7 + names.length)}`);
    for (const r of floorAlone) {
      const f = stats(r.floor);
      console.log(
        `| ${r.rate} | ${r.achieved.toFixed(1)} | ${ms(f.p50)} | ${ms(f.p95)} | ${ms(f.p99)} | ${ms(f.max)} | ${f.failures}/${r.floor.length} ` +
          `| ${names.map((n) => (r.cpu[n] ?? Number.NaN).toFixed(0)).join(' | ')} |`,
      );
    }
    const floorCapacity = floorAlone
      .filter((r) => stats(r.floor).failures === 0 && stats(r.floor).p99 < P99_LIMIT_MS)
      .reduce<number | undefined>((c, r) => Math.max(c ?? 0, r.rate), undefined);
    console.log('');
    console.log(
      `the floor alone (the platform: one no-op workflow and activity per start, no product): ${floorCapacity === undefined ? `below ${floorRates[0]}` : floorCapacity}/s with every activity run and p99 < ${P99_LIMIT_MS} ms`,
    );
  }
} catch (err) {
  failed = true;
  console.error(`bench:capacity failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await floor.stop();
  await stack.stop();
}
process.exitCode = failed ? 1 : 0;
