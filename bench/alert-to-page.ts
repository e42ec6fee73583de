/**
 * bench/alert-to-page: alerts at 20/s for 30 s through the real webhook, each
 * a new Alertmanager group; time from POST to the Slack stand-in receiving
 * the page (initial report). In the same run, on the same dev server, the
 * floor: a trivial workflow whose one activity does nothing, started at the
 * same rate (start call → activity runs). Prints both and their ratio.
 *
 *   npm run bench:alert-to-page [-- --rate 20 --seconds 30]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { alertmanagerPayload } from '../test/support/alerts.ts';
import { fmt, paced, startBenchStack, startFloor, summarize } from './support.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    topology: { type: 'string', default: 'processes' },
  },
});
const rate = Number(values.rate);
const total = rate * Number(values.seconds);

// `--topology processes` (default) runs the worker and the API as their own processes, as `npm start`
// does; `inline` runs them in this process (fewer processes competing for two cores).
const stack = await startBenchStack({ topology: values.topology === 'inline' ? 'inline' : 'processes' });
const { server, slack } = stack;
const api = { address: stack.apiAddress };
const WEBHOOK_TOKEN = stack.webhookToken;

// The floor's own worker on its own task queue, same server.
const floor = await startFloor(server.address);
const touched = floor.touched;

const webhookLatencies: number[] = [];

async function measurePages(): Promise<number[]> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const pageFor = new Map<string, number>();
  await paced(total, rate, async (i) => {
    const groupKey = `{}:{alertname="BenchAlert",n="${i}-${randomUUID()}"}`;
    const started = Date.now();
    const res = await fetch(`${api.address}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        alertmanagerPayload({ groupKey, alerts: [{ labels: { alertname: 'BenchAlert', n: String(i) } }] }),
      ),
    });
    const body = (await res.json()) as { incidents: { id: string }[] };
    webhookLatencies.push(Date.now() - started);
    const id = body.incidents[0]?.id;
    if (res.status !== 202 || !id) throw new Error(`webhook answered ${res.status}`);
    sentAt.set(id, started);
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const post of slack.posts) {
      if (post.channel !== '#pno-incidents') continue;
      const id = /INC-[0-9a-f]{8}/.exec(post.text)?.[0];
      if (id && sentAt.has(id) && !pageFor.has(id)) pageFor.set(id, post.at);
    }
    if (pageFor.size >= sentAt.size) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const [id, started] of sentAt) {
    const at = pageFor.get(id);
    if (at !== undefined) latencies.push(at - started);
  }
  console.log(`pages received: ${pageFor.size}/${sentAt.size}`);
  return latencies;
}

async function measureFloor(): Promise<number[]> {
  const startedAt = new Map<string, number>();
  await paced(total, rate, async (i) => {
    const id = `floor-${i}-${randomUUID()}`;
    startedAt.set(id, Date.now());
    await floor.start(id);
  });
  const deadline = Date.now() + 60_000;
  while (touched.size < startedAt.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return [...startedAt].flatMap(([id, t]) => (touched.has(id) ? [(touched.get(id) ?? t) - t] : []));
}

try {
  console.log(
    `alert-to-page: ${total} alerts at ${rate}/s (each a new incident), ${values.topology} topology, dev server ${server.address}`,
  );
  const rssBefore = process.memoryUsage().rss;
  const pages = summarize('alert → Slack page', await measurePages());
  const floorSummary = summarize('floor: start → no-op activity', await measureFloor());
  for (const s of [summarize('webhook POST → 202', webhookLatencies), pages, floorSummary]) {
    console.log(
      `${s.name.padEnd(32)} n=${s.count}  p50 ${fmt(s.p50)}  p90 ${fmt(s.p90)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}`,
    );
  }
  console.log(
    `ratio p50 ${(pages.p50 / floorSummary.p50).toFixed(2)}×  p99 ${(pages.p99 / floorSummary.p99).toFixed(2)}×  (aim: p99 ≤ 1.5× the floor)`,
  );
  console.log(
    `process RSS ${(rssBefore / 1e6).toFixed(0)} MB → ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
} finally {
  await floor.stop();
  await stack.stop();
}
