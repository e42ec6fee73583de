import type { Client } from '@temporalio/client';
import { describe, expect, it, vi } from 'vitest';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { parsePolicy } from '../../src/domain/policy.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { WebhookBackpressure } from '../../src/starter/api/backpressure.ts';
import { createMetrics } from '../../src/starter/api/metrics.ts';
import { AlertIngest } from '../../src/starter/api/routes/alert-ingest.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import type { IngestResult, TaskQueueBacklog } from '../../src/starter/client/incidents.ts';
import { alertmanagerPayload, postToAlertmanagerWebhook } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultDocument, policyWith } from '../support/policy.ts';

const TOKEN = 'test-webhook-token';

/** A gateway whose ingest calls wait until released, and whose task queue reports `backlog`. */
class SlowGateway extends FakeGateway {
  private readonly waiting: (() => void)[] = [];
  hold = false;
  backlog: TaskQueueBacklog | Error = { count: 0, ageSeconds: 0 };
  backlogAsked = 0;

  override async ingestAlerts(batch: AlertBatch): Promise<IngestResult> {
    if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.ingestAlerts(batch);
  }
  release(): void {
    this.hold = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
  get held(): number {
    return this.waiting.length;
  }
  taskQueueBacklog(): Promise<TaskQueueBacklog> {
    this.backlogAsked += 1;
    return this.backlog instanceof Error ? Promise.reject(this.backlog) : Promise.resolve(this.backlog);
  }
}

function setup(backpressure: Record<string, number>) {
  const gateway = new SlowGateway();
  const app = buildApp({
    policy: policyWith({ webhook: { backpressure } }),
    incidents: gateway,
    webhookToken: TOKEN,
    engineerTokens: new Map(),
  });
  const post = (group: number) =>
    postToAlertmanagerWebhook(
      app,
      TOKEN,
      alertmanagerPayload({ groupKey: `{}:{alertname="HighErrorRate",n="${group}"}` }),
    );
  const metric = async (line: string) => {
    const text = (await app.inject({ url: '/metrics' })).body;
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  };
  return { app, gateway, post, metric };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

describe('webhook backpressure', () => {
  it('has defaults, and refuses a bound that makes no sense', () => {
    const document = loadDefaultDocument();
    const policy = parsePolicy(document, 'default');
    expect(policy.webhook.backpressure).toEqual({
      maxInFlight: 128,
      maxQueueBacklog: 1_000,
      queueBacklogPollSeconds: 5,
      retryAfterSeconds: 5,
    });
    expect(() => policyWith({ webhook: { backpressure: { maxInFlight: 0 } } })).toThrow(
      /webhook\.backpressure\.maxInFlight/,
    );
    expect(() => policyWith({ webhook: { backpressure: { queueBacklogPollSeconds: 0.1 } } })).toThrow(
      /queueBacklogPollSeconds/,
    );
  });

  it('answers 503 with Retry-After past the in-flight bound, starts nothing, and loses nothing it took', async () => {
    const { app, gateway, post, metric } = setup({
      maxInFlight: 2,
      retryAfterSeconds: 7,
      maxQueueBacklog: 0,
    });
    gateway.hold = true;
    const first = post(1);
    const second = post(2);
    await until(() => gateway.held === 2);
    expect(await metric('incident_webhook_in_flight')).toBe(2);

    const refused = await post(3);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('7');
    expect(refused.json()).toMatchObject({ error: { code: 'OVERLOADED' } });
    expect(gateway.held).toBe(2); // the third delivery never reached Temporal

    gateway.release();
    const answers = await Promise.all([first, second]);
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202]);
    expect(gateway.batches.map((b) => b.groupKey)).toEqual([
      '{}:{alertname="HighErrorRate",n="1"}',
      '{}:{alertname="HighErrorRate",n="2"}',
    ]);

    // Under the bound again: the retried delivery goes through.
    const retried = await post(3);
    expect(retried.statusCode).toBe(202);
    expect(retried.json<{ incidents: { action: string }[] }>().incidents[0]?.action).toBe('started');
    expect(gateway.batches).toHaveLength(3);
    expect(await metric('incident_webhook_backpressure_total{bound="in_flight"}')).toBe(1);
    expect(await metric('incident_webhook_rejected_total{reason="overloaded"}')).toBe(1);
    expect(await metric('incident_webhook_in_flight')).toBe(0);
    await app.close();
  });

  it('answers 503 past the task queue backlog bound as Temporal reports it, and takes work again below it', async () => {
    const { app, gateway, post, metric } = setup({ maxQueueBacklog: 10, queueBacklogPollSeconds: 1 });
    gateway.backlog = { count: 11, ageSeconds: 4 };
    // A scrape asks Temporal (at most once per poll period) and shows what it said.
    expect(await metric('incident_task_queue_backlog')).toBe(11);
    const asked = gateway.backlogAsked;

    for (const n of [1, 2, 3]) {
      const res = await post(n);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
    }
    expect(gateway.batches).toHaveLength(0);
    // Never asked per request: the three deliveries read the answer the scrape got.
    expect(gateway.backlogAsked).toBe(asked);
    expect(await metric('incident_webhook_backpressure_total{bound="queue_backlog"}')).toBe(3);

    // The workers catch up; the next ask, a period later, lets deliveries through.
    gateway.backlog = { count: 10, ageSeconds: 0 };
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await metric('incident_task_queue_backlog')).toBe(10);
    const res = await post(4);
    expect(res.statusCode).toBe(202);
    expect(gateway.batches).toHaveLength(1);
    await app.close();
  });

  it('takes deliveries while the backlog cannot be asked (Temporal down is the ingest call’s own 503)', async () => {
    const { app, gateway, post, metric } = setup({ maxQueueBacklog: 1, queueBacklogPollSeconds: 1 });
    gateway.backlog = new Error('14 UNAVAILABLE');
    expect(await metric('incident_task_queue_backlog')).toBeNaN();
    expect((await post(1)).statusCode).toBe(202);
    await app.close();
  });
});

describe('a task queue backlog Temporal does not report', () => {
  it('is unknown, not 0: the gateway throws, and the webhook says so at most once a minute', async () => {
    const answer: { stats?: unknown } = {};
    const client = {
      options: { namespace: 'default' },
      withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
      workflowService: { describeTaskQueue: () => Promise.resolve(answer) },
    } as unknown as Client;
    const incidents = new TemporalIncidents(client, 'q', policyWith({}), {
      maintenance: { activeFor: () => Promise.resolve(undefined) },
    });
    await expect(incidents.taskQueueBacklog()).rejects.toThrow(/did not report the task queue’s statistics/);
    answer.stats = { approximateBacklogCount: 7, approximateBacklogAge: { seconds: 3, nanos: 5e8 } };
    expect(await incidents.taskQueueBacklog()).toEqual({ count: 7, ageSeconds: 3.5 });

    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const gateway = new SlowGateway();
      gateway.backlog = new Error('Temporal did not report the task queue’s statistics');
      const warned: unknown[][] = [];
      const ingest = new AlertIngest(
        {
          policy: policyWith({
            webhook: { backpressure: { maxQueueBacklog: 1, queueBacklogPollSeconds: 1 } },
          }),
          incidents: gateway,
          webhookToken: TOKEN,
          engineerTokens: new Map(),
        },
        createMetrics(),
        { warn: (...args: unknown[]) => warned.push(args) },
      );
      await ingest.backpressure.poll();
      expect(warned).toHaveLength(1);
      expect(String(warned[0]?.[1])).toContain('backlog is unknown');
      // Asked again two seconds on (its poll period is 1 s): still unknown, not said again within the minute.
      vi.setSystemTime(Date.now() + 2_000);
      await ingest.backpressure.poll();
      expect(gateway.backlogAsked).toBe(2);
      expect(warned).toHaveLength(1);
      vi.setSystemTime(Date.now() + 60_000);
      await ingest.backpressure.poll();
      expect(warned).toHaveLength(2);
      // Unknown is never a reason to refuse.
      expect(ingest.backpressure.refusal()).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('WebhookBackpressure', () => {
  it('asks at most once per period, never waits on a request, and forgets an answer two periods old', async () => {
    let now = 0;
    let asked = 0;
    let answer = 50;
    const bp = new WebhookBackpressure({
      maxInFlight: 10,
      maxQueueBacklog: 20,
      pollMs: 1_000,
      retryAfterSeconds: 5,
      now: () => now,
      probe: () => {
        asked += 1;
        return Promise.resolve({ count: answer, ageSeconds: 1 });
      },
    });
    // The first delivery is taken while the first ask is under way.
    expect(bp.refusal()).toBeUndefined();
    expect(asked).toBe(1);
    await bp.poll();
    expect(bp.refusal()).toBe('queue_backlog');
    now = 999;
    expect(bp.refusal()).toBe('queue_backlog');
    expect(asked).toBe(1);
    answer = 0;
    now = 1_000;
    expect(bp.refusal()).toBe('queue_backlog'); // the answer in hand, while the new ask runs
    await bp.poll();
    expect(asked).toBe(2);
    expect(bp.refusal()).toBeUndefined();

    // An answer older than two periods is not acted on.
    answer = 50;
    now = 2_000;
    await bp.poll();
    expect(bp.refusal()).toBe('queue_backlog');
    // Acted on up to two periods after the answer (pollMs is 1 s here), forgotten just after.
    now = 4_000;
    expect(bp.refusal()).toBe('queue_backlog');
    now = 4_001;
    expect(bp.queueBacklog).toBeUndefined();
    expect(bp.refusal()).toBeUndefined();
  });

  it('counts calls in flight, also those that fail', async () => {
    const bp = new WebhookBackpressure({
      maxInFlight: 1,
      maxQueueBacklog: 0,
      pollMs: 1_000,
      retryAfterSeconds: 1,
    });
    let release: () => void = () => undefined;
    const call = bp.track(() => new Promise<void>((resolve) => (release = resolve)));
    expect(bp.inFlight).toBe(1);
    expect(bp.refusal()).toBe('in_flight');
    release();
    await call;
    await expect(bp.track(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(bp.inFlight).toBe(0);
    expect(bp.refusal()).toBeUndefined();
  });
});
