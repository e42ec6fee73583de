/**
 * The webhook's side of the dead-man's switch: a delivery of the policy's Watchdog alert starts no incident,
 * is answered 2xx and beats its receiver's watchdog; other alerts of the same delivery are ingested as usual;
 * a heartbeat that cannot be recorded is a 5xx Alertmanager retries (never a 4xx, never silently dropped).
 */
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/domain/policy.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { createMetrics } from '../../src/starter/api/metrics.ts';
import type { WatchdogBeat, WatchdogBeatResult, WatchdogGateway } from '../../src/starter/client/watchdog.ts';
import { watchdogWorkflowId } from '../../src/contract/workflow-ids.ts';
import { alertmanagerPayload, postToAlertmanagerWebhook } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const TOKEN = 'test-webhook-token';

/** A sample's value in Prometheus text, e.g. `incident_webhook_groups_total{action="heartbeat"}`. */
function readMetricText(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

class FakeWatchdog implements WatchdogGateway {
  readonly beats: WatchdogBeat[] = [];
  failWith: Error | undefined;
  /** A heartbeat that answers only once this holds (within 2 s; else it fails). */
  answerWhen: (() => boolean) | undefined;
  async heartbeat(beat: WatchdogBeat): Promise<WatchdogBeatResult> {
    for (const until = Date.now() + 2_000; this.answerWhen && !this.answerWhen();) {
      if (Date.now() > until) throw new Error('the heartbeat waited for ever');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (this.failWith) throw this.failWith;
    this.beats.push(beat);
    return { workflowId: watchdogWorkflowId(beat.receiver), action: 'heartbeat' };
  }
}

function setup(options: { policy?: Policy; watchdog?: FakeWatchdog | null } = {}) {
  const gateway = new FakeGateway();
  const watchdog = options.watchdog === undefined ? new FakeWatchdog() : options.watchdog;
  const metrics = createMetrics();
  const app = buildApp({
    policy: options.policy ?? loadDefaultPolicy(),
    incidents: gateway,
    ...(watchdog ? { watchdog } : {}),
    webhookToken: TOKEN,
    engineerTokens: new Map(),
    metrics,
  });
  const post = (payload: unknown) => postToAlertmanagerWebhook(app, TOKEN, payload);
  return { app, gateway, watchdog, post, metrics: async () => metrics.registry.metrics() };
}

/** Alertmanager's delivery of Prometheus' Watchdog (kube-prometheus' shape: severity none). */
const WATCHDOG = { labels: { alertname: 'Watchdog', severity: 'none' } };
const watchdogPayload = (status: 'firing' | 'resolved' = 'firing', receiver = 'incident-response') =>
  alertmanagerPayload({
    receiver,
    groupKey: '{}/{alertname="Watchdog"}:{alertname="Watchdog"}',
    alerts: [{ ...WATCHDOG, status }],
  });

describe('the webhook and the Watchdog alert', () => {
  it('a Watchdog delivery starts no incident, answers 202 and beats the receiver’s watchdog', async () => {
    const { post, gateway, watchdog, metrics } = setup();
    const res = await post(watchdogPayload('firing', 'team-a'));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      incidents: [],
      watchdog: { workflowId: 'watchdog-team-a', action: 'heartbeat' },
    });
    expect(gateway.batches).toEqual([]);
    expect(watchdog?.beats).toMatchObject([{ receiver: 'team-a', alerts: 1 }]);
    // Every repeat is a heartbeat again (Alertmanager's repeat_interval), never an incident.
    for (let i = 0; i < 3; i++)
      expect((await post(watchdogPayload('firing', 'team-a'))).statusCode).toBe(202);
    expect(watchdog?.beats).toHaveLength(4);
    expect(gateway.batches).toEqual([]);
    const text = await metrics();
    expect(readMetricText(text, 'incident_webhook_groups_total{action="heartbeat"}')).toBe(4);
    expect(readMetricText(text, 'incident_webhook_groups_total{action="started"}')).toBeUndefined();
  });

  it('a resolved Watchdog is no heartbeat and no incident', async () => {
    const { post, gateway, watchdog } = setup();
    const res = await post(watchdogPayload('resolved'));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ incidents: [], watchdog: { workflowId: null, action: 'ignored' } });
    expect(watchdog?.beats).toEqual([]);
    expect(gateway.batches).toEqual([]);
  });

  it('other alerts of the same delivery are ingested as usual, without the Watchdog', async () => {
    const { post, gateway, watchdog } = setup();
    const res = await post(
      alertmanagerPayload({ alerts: [WATCHDOG, { labels: { alertname: 'HighErrorRate' } }] }),
    );
    expect(res.statusCode).toBe(202);
    expect(res.json<{ incidents: { action: string }[] }>().incidents).toMatchObject([{ action: 'started' }]);
    expect(watchdog?.beats).toHaveLength(1);
    expect(gateway.batches).toHaveLength(1);
    expect(gateway.batches[0]?.alerts.map((a) => a.labels['alertname'])).toEqual(['HighErrorRate']);
    expect(gateway.batches[0]?.status).toBe('firing');
  });

  it('recognises the alert the policy names, and only it', async () => {
    const { post, gateway, watchdog } = setup({
      policy: policyWith({ watchdog: { alertname: 'DeadMansSwitch' } }),
    });
    const beat = await post(
      alertmanagerPayload({ alerts: [{ labels: { alertname: 'DeadMansSwitch', severity: 'none' } }] }),
    );
    expect(beat.json()).toMatchObject({ incidents: [], watchdog: { action: 'heartbeat' } });
    // Under this policy an alert called Watchdog is an ordinary alert.
    const other = await post(watchdogPayload());
    expect(other.json<{ incidents: { action: string }[] }>().incidents).toMatchObject([
      { action: 'started' },
    ]);
    expect(watchdog?.beats).toHaveLength(1);
    expect(gateway.batches).toHaveLength(1);
  });

  it('a heartbeat that cannot be recorded is a 5xx the sender retries, never a 4xx or an incident', async () => {
    const down = setup();
    if (down.watchdog)
      down.watchdog.failWith = Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), { code: 14 });
    const unavailable = await down.post(watchdogPayload());
    expect(unavailable.statusCode).toBe(503);
    expect(unavailable.headers['retry-after']).toBe('5');
    expect(unavailable.json()).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });

    const broken = setup();
    if (broken.watchdog) broken.watchdog.failWith = new Error('something else');
    const failed = await broken.post(watchdogPayload());
    expect(failed.statusCode).toBe(500);
    expect(failed.headers['retry-after']).toBe('5');

    const unwired = setup({ watchdog: null });
    const refused = await unwired.post(watchdogPayload());
    expect(refused.statusCode).toBe(500);
    expect(refused.json()).toMatchObject({ error: { code: 'INTERNAL', message: 'watchdog not configured' } });
    for (const s of [down, broken, unwired]) expect(s.gateway.batches).toEqual([]);
  });

  it('a heartbeat that cannot be recorded never costs the other alerts of its delivery', async () => {
    const mixed = alertmanagerPayload({
      groupKey: '{}:{alertname=~".+"}',
      alerts: [WATCHDOG, { labels: { alertname: 'ServiceDown', severity: 'page' } }],
    });
    for (const failure of [Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }), new Error('broken')]) {
      const s = setup();
      if (s.watchdog) s.watchdog.failWith = failure;
      const res = await s.post(mixed);
      expect(res.statusCode).toBe(202);
      expect(s.gateway.batches.map((b) => b.alerts.map((a) => a.labels['alertname']))).toEqual([
        ['ServiceDown'],
      ]);
    }
    const unwired = setup({ watchdog: null });
    expect((await unwired.post(mixed)).statusCode).toBe(202);
    expect(unwired.gateway.batches).toHaveLength(1);
  });

  it('a delivery’s heartbeat and its other alerts go at the same time (an outage costs one deadline, not two)', async () => {
    const { post, gateway, watchdog } = setup();
    // The heartbeat answers only once the other alerts have reached the gateway: one after the other, it fails.
    if (watchdog) watchdog.answerWhen = () => gateway.batches.length > 0;
    const res = await post(
      alertmanagerPayload({ alerts: [WATCHDOG, { labels: { alertname: 'HighErrorRate' } }] }),
    );
    expect(res.statusCode).toBe(202);
    expect(gateway.batches).toHaveLength(1);
    await eventually('the heartbeat recorded', () => (watchdog?.beats.length === 1 ? true : undefined), {
      timeoutMs: 1_000,
    });
  });

  it('heartbeats are never refused by backpressure', async () => {
    const s = setup();
    const busy = buildApp({
      policy: policyWith({ webhook: { backpressure: { maxInFlight: 1 } } }),
      incidents: s.gateway,
      ...(s.watchdog ? { watchdog: s.watchdog } : {}),
      webhookToken: TOKEN,
      engineerTokens: new Map(),
    });
    // One delivery held in flight by a gateway that does not answer yet: the bound is reached.
    let release: () => void = () => undefined;
    s.gateway.ingestAlerts = (batch) =>
      new Promise((resolve) => {
        release = () => resolve({ id: 'INC-00000001', workflowId: batch.groupKey, action: 'started' });
      });
    const held = postToAlertmanagerWebhook(busy, TOKEN, alertmanagerPayload({ groupKey: 'held' }));
    await new Promise((r) => setTimeout(r, 20));
    const refused = await postToAlertmanagerWebhook(busy, TOKEN, alertmanagerPayload({ groupKey: 'other' }));
    expect(refused.statusCode).toBe(503);
    const beat = await postToAlertmanagerWebhook(busy, TOKEN, watchdogPayload());
    expect(beat.statusCode).toBe(202);
    expect(s.watchdog?.beats).toHaveLength(1);
    release();
    expect((await held).statusCode).toBe(202);
  });
});

describe('the policy’s watchdog section', () => {
  it('defaults to Watchdog, 10m, P1, and refuses a timeout under a minute', () => {
    expect(loadDefaultPolicy().watchdog).toEqual({ alertname: 'Watchdog', timeout: 600_000, severity: 'P1' });
    expect(() => policyWith({ watchdog: { timeout: '30s' } })).toThrow(/watchdog\.timeout: at least 1m/);
    expect(() => policyWith({ watchdog: { severity: 'P9' } })).toThrow(/watchdog\.severity/);
  });

  it('gives each receiver its own watchdog workflow id; free-text receivers are hashed', () => {
    expect(watchdogWorkflowId('incident-response')).toBe('watchdog-incident-response');
    expect(watchdogWorkflowId('team a / prod')).toMatch(/^watchdog-[0-9a-f]{32}$/);
    expect(watchdogWorkflowId('team a / prod')).toBe(watchdogWorkflowId('team a / prod'));
    expect(watchdogWorkflowId('x'.repeat(5000))).toMatch(/^watchdog-[0-9a-f]{32}$/);
  });
});
