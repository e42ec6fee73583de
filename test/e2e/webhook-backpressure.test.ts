/**
 * Backpressure on a real dev server (issue 11, "Past capacity, degrade predictably"): with no worker polling,
 * every new incident's first workflow task waits on the task queue. Once Temporal reports more waiting than
 * `webhook.backpressure.maxQueueBacklog`, the webhook answers 503 with Retry-After and starts nothing; once a
 * worker has worked the backlog off, the same delivery, retried as Alertmanager would, goes through; every
 * delivery that was accepted is paged.
 */
import * as path from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtemp } from 'node:fs/promises';
import { loopbackEnv } from '../support/loopback-env.ts';
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import { startApi } from '../../src/starter/api/server.ts';
import { createWorker } from '../../src/worker.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { policyFileWith } from '../support/policy.ts';
import { readMetric } from '../support/prometheus.ts';
import { SlackStandIn } from '../support/slack-server.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const WEBHOOK_TOKEN = `am-${randomUUID()}`;
const SLACK_TOKEN = `xoxb-${randomUUID()}`;
const RECEIVER = 'incident-response';
const BOUND = 3;

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let slack: SlackStandIn;
let api: Awaited<ReturnType<typeof startApi>>;
let client: Client;
let worker: Worker | undefined;
let workerDone: Promise<void> | undefined;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startTestDevServer();
  slack = new SlackStandIn({ token: SLACK_TOKEN });
  env = {
    ...loopbackEnv(),
    // What the API writes (policy snapshots, dead letters): a directory of this test's own.
    INCIDENT_DATA_DIR: await mkdtemp(path.join(tmpdir(), 'pno-e2e-backpressure-')),
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `e2e-backpressure-${randomUUID()}`,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: SLACK_TOKEN,
    ALERTMANAGER_WEBHOOK_TOKEN: WEBHOOK_TOKEN,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    INCIDENT_CONFIG: policyFileWith({
      webhook: { backpressure: { maxQueueBacklog: BOUND, queueBacklogPollSeconds: 1, retryAfterSeconds: 2 } },
    }),
  };
  // The API alone: no worker polls yet, so what it accepts waits on the task queue.
  api = await startApi(loadSettings(env), env);
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
}, 120_000);

afterAll(async () => {
  await api?.app.close();
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await workerDone;
  await client?.connection.close();
  await slack?.stop();
  await server?.stop();
});

const groupKey = (n: number) => `{}:{alertname="HighErrorRate",backpressure="${n}"}`;

async function post(n: number) {
  const res = await fetch(`${api.address}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(
      alertmanagerPayload({
        receiver: RECEIVER,
        groupKey: groupKey(n),
        alerts: [{ labels: { alertname: 'HighErrorRate', backpressure: String(n) } }],
      }),
    ),
    signal: AbortSignal.timeout(15_000),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { incidents?: { id: string; action: string }[]; error?: { code: string } },
  };
}

const metric = (name: string, labels: Record<string, string> = {}) =>
  readMetric(`${api.address}/metrics`, name, labels);

describe('webhook backpressure on the task queue backlog', () => {
  it('503 + Retry-After past the bound, nothing started; through again once worked off; nothing accepted lost', async () => {
    const accepted = new Map<number, string>();
    for (let n = 1; n <= BOUND + 1; n++) {
      const res = await post(n);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expect(res.body.incidents?.[0]?.action).toBe('started');
      accepted.set(n, res.body.incidents?.[0]?.id ?? '');
    }
    // Temporal reports the waiting first tasks (asked at most once a second, here through the scrape).
    await eventually(
      'the backlog over the bound in the metric',
      async () => ((await metric('incident_task_queue_backlog')) > BOUND ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 300 },
    );

    const refusedGroup = BOUND + 2;
    const refused = await post(refusedGroup);
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('2');
    expect(refused.body.error?.code).toBe('OVERLOADED');
    expect(await metric('incident_webhook_backpressure_total', { bound: 'queue_backlog' })).toBe(1);
    // Nothing of it was started.
    await expect(
      client.workflow.getHandle(alertGroupWorkflowId(RECEIVER, groupKey(refusedGroup))).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);

    // A worker starts and works the backlog off; Alertmanager's retry then goes through.
    const created = await createWorker(
      loadSettings(env),
      { workflowsPath: undefined, workflowBundle: await workflowBundle() },
      env,
    );
    worker = created.worker;
    workerDone = worker.run();
    const retried = await eventually(
      'the refused delivery accepted on a retry',
      async () => {
        const res = await post(refusedGroup);
        return res.status === 202 ? res : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(retried.body.incidents?.[0]?.action).toBe('started');
    accepted.set(refusedGroup, retried.body.incidents?.[0]?.id ?? '');

    // Every accepted delivery opened its incident and paged (the initial report in #pno-incidents).
    await eventually(
      'every accepted incident paged',
      () => {
        const paged = new Set(
          slack.posts
            .filter((p) => p.channel === '#pno-incidents')
            .map((p) => /INC-[0-9a-f]{8}/.exec(p.text)?.[0]),
        );
        return [...accepted.values()].every((id) => paged.has(id)) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(new Set(accepted.values()).size).toBe(BOUND + 2);
    expect(await metric('incident_webhook_groups_total', { action: 'started' })).toBe(BOUND + 2);
  }, 180_000);
});
