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
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { startDevServer } from '../scripts/lib/dev-server.ts';
import { loadSettings } from '../src/config.ts';
import { startApi } from '../src/starter/api/server.ts';
import { createWorker } from '../src/worker.ts';
import { freePort } from '../scripts/lib/ports.ts';
import { alertmanagerPayload } from '../test/support/alerts.ts';
import { SlackStandIn } from '../test/support/slack-server.ts';
import { fmt, paced, startChild, stopChild, summarize, waitUntil } from './support.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    topology: { type: 'string', default: 'processes' },
  },
});
const rate = Number(values.rate);
const total = rate * Number(values.seconds);
const WEBHOOK_TOKEN = randomUUID();
const SLACK_TOKEN = `xoxb-${randomUUID()}`;

const server = await startDevServer({ headless: true, port: await freePort(), log: () => undefined });
const slack = new SlackStandIn({ token: SLACK_TOKEN });
const env: NodeJS.ProcessEnv = {
  ...process.env,
  TEMPORAL_ADDRESS: server.address,
  TEMPORAL_TASK_QUEUE: `bench-${randomUUID()}`,
  SLACK_API_URL: await slack.start(),
  SLACK_BOT_TOKEN: SLACK_TOKEN,
  ALERTMANAGER_WEBHOOK_TOKEN: WEBHOOK_TOKEN,
  PORT: '0',
  LOG_LEVEL: 'warn',
};
// `--topology processes` (default) runs the worker and the API as their own processes, as `npm start`
// does; `inline` runs them in this process (fewer processes competing for two cores).
const apiPort = await freePort();
const children =
  values.topology === 'inline'
    ? []
    : [
        startChild('worker', ['src/worker.ts'], env),
        startChild('api', ['src/starter/api/server.ts'], { ...env, PORT: String(apiPort) }),
      ];
const inline = values.topology === 'inline' ? await startInline(env) : undefined;
const api = { address: inline?.address ?? `http://127.0.0.1:${apiPort}` };
await waitUntil(
  async () => (await fetch(`${api.address}/readyz`).catch(() => undefined))?.status === 200,
  60_000,
);

async function startInline(childEnv: NodeJS.ProcessEnv) {
  const settings = loadSettings(childEnv);
  const { worker } = await createWorker(settings, {}, childEnv);
  const running = worker.run();
  const started = await startApi(settings, childEnv);
  return {
    address: started.address,
    stop: async () => {
      await started.app.close();
      worker.shutdown();
      await running;
    },
  };
}

// The floor's own worker on its own task queue, same server.
const floorQueue = `floor-${randomUUID()}`;
const touched = new Map<string, number>();
const floorConnection = await NativeConnection.connect({ address: server.address });
const floorWorker = await Worker.create({
  connection: floorConnection,
  taskQueue: floorQueue,
  workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
  activities: { touch: (id: string) => Promise.resolve(void touched.set(id, Date.now())) },
});
const floorRun = floorWorker.run();
const client = new Client({ connection: await Connection.connect({ address: server.address }) });

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
    await client.workflow.start('floorWorkflow', { taskQueue: floorQueue, workflowId: id, args: [id] });
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
  const floor = summarize('floor: start → no-op activity', await measureFloor());
  for (const s of [summarize('webhook POST → 202', webhookLatencies), pages, floor]) {
    console.log(
      `${s.name.padEnd(32)} n=${s.count}  p50 ${fmt(s.p50)}  p90 ${fmt(s.p90)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}`,
    );
  }
  console.log(
    `ratio p50 ${(pages.p50 / floor.p50).toFixed(2)}×  p99 ${(pages.p99 / floor.p99).toFixed(2)}×  (aim: p99 ≤ 1.5× the floor)`,
  );
  console.log(
    `process RSS ${(rssBefore / 1e6).toFixed(0)} MB → ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
} finally {
  await Promise.all(children.map(stopChild));
  await inline?.stop();
  floorWorker.shutdown();
  await floorRun;
  await client.connection.close();
  await floorConnection.close();
  await slack.stop();
  await server.stop();
}
