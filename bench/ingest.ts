/**
 * bench/ingest: alert-storm ingestion through the real webhook, on a dev server started here, with the
 * worker and the API in this process. Three loads of the same number of alerts, each in fresh groups:
 *
 *   (a) one alert per request, `--concurrency` requests in flight, alerts spread over `--groups` groups;
 *   (b) the same alerts batched per group as Alertmanager sends them (`--batch` alerts per payload);
 *   (c) the floor: plain `client.workflow.signalWithStart` of the incident workflow, one alert per call,
 *       same concurrency, no HTTP and no API.
 *
 * For each: incidents created (must equal the number of groups: one workflow run per group), alerts lost
 * (sent minus the sum of `state.alerts.length` over the groups' incidents: must be 0), request latency
 * p50/p99, alerts per second (sent / wall time until the last answer), and ratios to (c).
 *
 *   npm run bench:ingest [-- --alerts 10000 --groups 100 --concurrency 64 --batch 100]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { toAlertBatch } from '../src/domain/alert-mapping.ts';
import type { AlertBatch } from '../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../src/domain/alertmanager.ts';
import type { IncidentState } from '../src/domain/incident.ts';
import { alertGroupWorkflowId } from '../src/contract/workflow-ids.ts';
import { newIncidentId } from '../src/starter/client/temporal.ts';
import { INCIDENT_WORKFLOW_TYPE, alertsReceivedSignal, stateQuery } from '../src/contract/messages.ts';
import type { IncidentInput } from '../src/contract/messages.ts';
import { policyRefOf } from '../src/policy-snapshots.ts';
import { startDevServer } from '../scripts/lib/dev-server.ts';
import { freePort } from '../scripts/lib/ports.ts';
import { alertmanagerPayload } from '../test/support/alerts.ts';
import { startStack } from '../test/support/stack.ts';
import { concurrent, fmt, summarize, giveUpAfter } from './support.ts';

const { values } = parseArgs({
  options: {
    alerts: { type: 'string', default: '10000' },
    groups: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '64' },
    batch: { type: 'string', default: '100' },
    'timeout-seconds': { type: 'string', default: '600' },
  },
});
const ALERTS = Number(values.alerts);
const GROUPS = Number(values.groups);
const CONCURRENCY = Number(values.concurrency);
const BATCH = Number(values.batch);
const REQUEST_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 180_000;
if (
  ![ALERTS, GROUPS, CONCURRENCY, BATCH].every((n) => Number.isInteger(n) && n > 0) ||
  ALERTS % GROUPS !== 0
) {
  console.error(
    '--alerts, --groups, --concurrency and --batch must be positive integers, alerts a multiple of groups',
  );
  process.exit(2);
}

giveUpAfter('bench:ingest', values['timeout-seconds']);

Runtime.install({ logger: new DefaultLogger('WARN') });

const server = await startDevServer({ headless: true, port: await freePort(), log: () => undefined });
const stack = await startStack({ address: server.address, name: 'bench-ingest' });
const { api, client, settings } = stack;

/** Alertmanager-shaped alerts of one run: alert `i` belongs to group `i % GROUPS`, fingerprints unique. */
function alertOf(run: string, i: number) {
  return {
    labels: {
      alertname: 'HighErrorRate',
      severity: 'critical',
      job: 'pno-physics-bench',
      instance: `pod-${i}`,
    },
    fingerprint: `${run}${i.toString(16).padStart(8, '0')}`,
  };
}
const groupKeyOf = (run: string, g: number) => `{}:{alertname="HighErrorRate",bench="${run}",group="${g}"}`;

interface Outcome {
  name: string;
  receiver: string;
  run: string;
  latencies: number[];
  wallMs: number;
  retries: number;
}

async function postWebhook(payload: unknown): Promise<{ status: number; retryAfter: number }> {
  const res = await fetch(`${api.address}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.webhookToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: Number(res.headers.get('retry-after') ?? '1') };
}

/** Sends `requests` payloads with `CONCURRENCY` in flight; a 503 is retried after Retry-After, as Alertmanager would. */
async function throughWebhook(
  name: string,
  requests: number,
  payloadOf: (i: number, receiver: string, run: string) => unknown,
): Promise<Outcome> {
  const run = randomUUID().replaceAll('-', '').slice(0, 8);
  const receiver = `bench-${run}`;
  const payloads = Array.from({ length: requests }, (_, i) => payloadOf(i, receiver, run));
  const latencies: number[] = [];
  let retries = 0;
  const started = performance.now();
  await concurrent(requests, CONCURRENCY, async (i) => {
    for (let attempt = 0; ; attempt += 1) {
      const t = performance.now();
      const { status, retryAfter } = await postWebhook(payloads[i]);
      latencies.push(performance.now() - t);
      if (status === 202) return;
      if (status !== 503 || attempt >= 5) throw new Error(`webhook answered ${status} to request ${i}`);
      retries += 1;
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    }
  });
  return { name, receiver, run, latencies, wallMs: performance.now() - started, retries };
}

async function floorSignalWithStart(): Promise<Outcome> {
  const run = randomUUID().replaceAll('-', '').slice(0, 8);
  const receiver = `bench-${run}`;
  // Built beforehand: the floor is the Temporal call alone.
  const batches: AlertBatch[] = Array.from({ length: ALERTS }, (_, i) =>
    toAlertBatch(
      settings.policy,
      webhookPayloadSchema.parse(
        alertmanagerPayload({ receiver, groupKey: groupKeyOf(run, i % GROUPS), alerts: [alertOf(run, i)] }),
      ),
      settings.policy.webhook.maxAlertsPerGroup,
    ),
  );
  // As the API starts incidents: the policy by hash (the worker, on the same file, knows it).
  const policyRef = policyRefOf(settings.policy);
  const latencies: number[] = [];
  const started = performance.now();
  await concurrent(ALERTS, CONCURRENCY, async (i) => {
    const batch = batches[i] as AlertBatch;
    const t = performance.now();
    await client.workflow.signalWithStart(INCIDENT_WORKFLOW_TYPE, {
      workflowId: alertGroupWorkflowId(receiver, batch.groupKey),
      taskQueue: settings.temporal.taskQueue,
      args: [{ incidentId: newIncidentId(), policyRef } satisfies IncidentInput],
      signal: alertsReceivedSignal,
      signalArgs: [batch],
    });
    latencies.push(performance.now() - t);
  });
  return {
    name: '(c) signalWithStart floor',
    receiver,
    run,
    latencies,
    wallMs: performance.now() - started,
    retries: 0,
  };
}

/**
 * What reached the incidents: the runs of each group's workflow (incidents) and the alerts their state
 * holds, polled until every sent alert is there or the deadline passes.
 */
async function settle(outcome: Outcome): Promise<{ incidents: number; recorded: number; settleMs: number }> {
  const started = performance.now();
  const ids = Array.from({ length: GROUPS }, (_, g) =>
    alertGroupWorkflowId(outcome.receiver, groupKeyOf(outcome.run, g)),
  );
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let recorded: number;
  for (;;) {
    const counts = await Promise.all(
      ids.map(async (id) => {
        const state = await client.workflow
          .getHandle(id)
          .query(stateQuery)
          .catch(() => undefined as IncidentState | undefined);
        return state?.alerts.length ?? 0;
      }),
    );
    recorded = counts.reduce((a, b) => a + b, 0);
    if (recorded >= ALERTS || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  let incidents = 0;
  for (const id of ids) {
    for await (const _ of client.workflow.list({ query: `WorkflowId = '${id}'` })) incidents += 1;
  }
  return { incidents, recorded, settleMs: performance.now() - started };
}

let failed = false;
try {
  console.log(
    `ingest: ${ALERTS} alerts in ${GROUPS} groups, ${CONCURRENCY} requests in flight, batches of ${BATCH}; ` +
      `dev server ${server.address}, node ${process.version}`,
  );
  const outcomes: (Outcome & Awaited<ReturnType<typeof settle>>)[] = [];
  const measure = async (load: () => Promise<Outcome>) => {
    const outcome = await load();
    const settled = await settle(outcome);
    outcomes.push({ ...outcome, ...settled });
  };

  await measure(() =>
    throughWebhook('(a) webhook, 1 alert/request', ALERTS, (i, receiver, run) =>
      alertmanagerPayload({ receiver, groupKey: groupKeyOf(run, i % GROUPS), alerts: [alertOf(run, i)] }),
    ),
  );
  // (b): each group's alerts in payloads of BATCH, the groups' payloads interleaved.
  const perGroup = ALERTS / GROUPS;
  const chunksPerGroup = Math.ceil(perGroup / BATCH);
  await measure(() =>
    throughWebhook(`(b) webhook, ${BATCH} alerts/request`, GROUPS * chunksPerGroup, (r, receiver, run) => {
      const g = r % GROUPS;
      const chunk = Math.floor(r / GROUPS);
      const alerts = [];
      for (let k = chunk * BATCH; k < Math.min(perGroup, (chunk + 1) * BATCH); k += 1)
        alerts.push(alertOf(run, k * GROUPS + g));
      return alertmanagerPayload({ receiver, groupKey: groupKeyOf(run, g), alerts });
    }),
  );
  await measure(floorSignalWithStart);

  const floor = outcomes.at(-1);
  const rateOf = (o: Outcome) => ALERTS / (o.wallMs / 1000);
  console.log('');
  for (const o of outcomes) {
    const s = summarize(o.name, o.latencies);
    const lost = ALERTS - o.recorded;
    const ok = o.incidents === GROUPS && lost === 0;
    if (!ok) failed = true;
    console.log(`${o.name}`);
    console.log(
      `  incidents ${o.incidents} (expected ${GROUPS})   alerts lost ${lost} of ${ALERTS}${ok ? '' : '   ← FAILED'}` +
        `${o.retries ? `   503 retries ${o.retries}` : ''}`,
    );
    console.log(
      `  requests ${s.count}: p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}   ` +
        `${rateOf(o).toFixed(0)} alerts/s (${(o.wallMs / 1000).toFixed(1)} s), all recorded ${(o.settleMs / 1000).toFixed(1)} s later`,
    );
    if (floor && o !== floor) {
      const f = summarize(floor.name, floor.latencies);
      console.log(
        `  vs (c): throughput ${(rateOf(o) / rateOf(floor)).toFixed(2)}×   ` +
          `latency p50 ${(s.p50 / f.p50).toFixed(2)}×  p99 ${(s.p99 / f.p99).toFixed(2)}× (per request)`,
      );
    }
  }
} catch (err) {
  failed = true;
  console.error(`bench:ingest failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await stack.stop();
  await server.stop();
}
process.exitCode = failed ? 1 : 0;
