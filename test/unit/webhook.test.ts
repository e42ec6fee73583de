import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/starter/api/app.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const TOKEN = 'test-webhook-token';
const policy = loadDefaultPolicy();

function setup() {
  const gateway = new FakeGateway();
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: TOKEN,
    engineerTokens: new Map([['alice-token', 'alice']]),
  });
  const post = (payload: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    app.inject({
      method: 'POST',
      url: '/webhooks/alertmanager',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  return { app, gateway, post };
}

describe('POST /webhooks/alertmanager', () => {
  it('starts an incident for a firing group and answers 202 with its id', async () => {
    const { post, gateway } = setup();
    const res = await post(alertmanagerPayload());
    expect(res.statusCode).toBe(202);
    const body = res.json<{ incidents: { id: string; workflowId: string; action: string }[] }>();
    expect(body.incidents).toHaveLength(1);
    expect(body.incidents[0]).toMatchObject({
      action: 'started',
      id: expect.stringMatching(/^INC-[0-9a-f]{8}$/),
    });
    expect(body.incidents[0]?.workflowId).toMatch(/^alertgroup-[0-9a-f]{32}$/);
    expect(gateway.batches[0]?.alerts[0]).toMatchObject({ severity: 'P1', fingerprint: 'f00d000000000000' });
  });

  it('lands a redelivered group in the same workflow', async () => {
    const { post } = setup();
    const first = (await post(alertmanagerPayload())).json<{ incidents: { workflowId: string }[] }>();
    const second = (await post(alertmanagerPayload())).json<{
      incidents: { workflowId: string; action: string }[];
    }>();
    expect(second.incidents[0]?.workflowId).toBe(first.incidents[0]?.workflowId);
    expect(second.incidents[0]?.action).toBe('signalled');
  });

  it('maps the severity label table and the priority label', async () => {
    const { post, gateway } = setup();
    const cases: [Record<string, string>, string][] = [
      [{ severity: 'page' }, 'P0'],
      [{ severity: 'emergency' }, 'P0'],
      [{ severity: 'critical' }, 'P1'],
      [{ severity: 'warning' }, 'P2'],
      [{ severity: 'high' }, 'P2'],
      [{ severity: 'info' }, 'P3'],
      [{ severity: 'low' }, 'P3'],
      [{ severity: 'whatever' }, 'P2'],
      [{ severity: 'info', priority: 'P0' }, 'P0'],
    ];
    for (const [labels, expected] of cases) {
      await post(alertmanagerPayload({ groupKey: JSON.stringify(labels), alerts: [{ labels }] }));
      expect(gateway.batches.at(-1)?.alerts[0]?.severity, JSON.stringify(labels)).toBe(expected);
    }
  });

  it('accepts basic auth when the policy configures it, as Alertmanager http_config sends it', async () => {
    const gateway = new FakeGateway();
    const app = buildApp({
      policy,
      incidents: gateway,
      webhookToken: TOKEN,
      webhookBasicAuth: { username: 'am', password: 'pw' },
      engineerTokens: new Map(),
    });
    const send = (authorization: string) =>
      app.inject({
        method: 'POST',
        url: '/webhooks/alertmanager',
        headers: { 'content-type': 'application/json', authorization },
        payload: alertmanagerPayload(),
      });
    expect((await send(`Basic ${Buffer.from('am:pw').toString('base64')}`)).statusCode).toBe(202);
    expect((await send(`Basic ${Buffer.from('am:nope').toString('base64')}`)).statusCode).toBe(401);
    expect((await send(`Bearer ${TOKEN}`)).statusCode).toBe(202);
  });

  it('refuses a missing or wrong bearer token with 401 and starts nothing', async () => {
    const { post, gateway } = setup();
    expect((await post(alertmanagerPayload(), {})).statusCode).toBe(401);
    expect((await post(alertmanagerPayload(), { authorization: 'Bearer nope' })).statusCode).toBe(401);
    expect((await post(alertmanagerPayload(), { authorization: `Basic ${TOKEN}` })).statusCode).toBe(401);
    expect(gateway.batches).toHaveLength(0);
  });

  it.each([
    ['version', { version: '3' }, 'version'],
    ['groupKey', { groupKey: '' }, 'groupKey'],
    ['alerts missing', { alerts: undefined }, 'alerts'],
    ['alerts empty', { alerts: [] }, 'alerts'],
    ['status', { status: 'weird' }, 'status'],
    [
      'alert startsAt',
      { alerts: [{ ...alertmanagerPayload().alerts[0], startsAt: 'yesterday' }] },
      'alerts.0.startsAt',
    ],
    [
      'alert fingerprint',
      { alerts: [{ ...alertmanagerPayload().alerts[0], fingerprint: undefined }] },
      'alerts.0.fingerprint',
    ],
    [
      'label value type',
      { alerts: [{ ...alertmanagerPayload().alerts[0], labels: { alertname: 5 } }] },
      'alerts.0.labels.alertname',
    ],
    [
      'annotations not an object',
      { alerts: [{ ...alertmanagerPayload().alerts[0], annotations: ['a'] }] },
      'alerts.0.annotations',
    ],
    [
      'duplicate fingerprints',
      { alerts: [alertmanagerPayload().alerts[0], alertmanagerPayload().alerts[0]] },
      'alerts.1.fingerprint',
    ],
  ])('answers 400 naming the bad field (%s) and starts nothing', async (_name, patch, field) => {
    const { post, gateway } = setup();
    const res = await post({ ...alertmanagerPayload(), ...patch });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { field: string; code: string } }>().error).toMatchObject({
      field,
      code: 'INVALID_PAYLOAD',
    });
    expect(gateway.batches).toHaveLength(0);
  });

  it('answers 400 to a body that is not JSON', async () => {
    const { post, gateway } = setup();
    const res = await post('{"version": "4",');
    expect(res.statusCode).toBe(400);
    expect(gateway.batches).toHaveLength(0);
  });

  // A huge label, a lone surrogate, a NUL: accepted, cut and noted (webhook-ingestion.test.ts, item 3).

  it('answers 413 to a body over the size limit', async () => {
    const { post, gateway } = setup();
    // Over (maxAlertsPerGroup + 4) × maxAlertBytes: a group far outside the documented limits.
    const huge = alertmanagerPayload({ alerts: [{ annotations: { description: 'x'.repeat(17_000_000) } }] });
    const res = await post(huge);
    expect(res.statusCode).toBe(413);
    expect(gateway.batches).toHaveLength(0);
  });

  it('answers 503 with Retry-After when Temporal is unreachable, never a 4xx', async () => {
    const { post, gateway } = setup();
    gateway.failWith = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 });
    const res = await post(alertmanagerPayload());
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
  });

  it('accepts a group larger than the limit truncated, and records the truncation', async () => {
    const { post, gateway } = setup();
    const alerts = Array.from({ length: policy.webhook.maxAlertsPerGroup + 5 }, (_, i) => ({
      fingerprint: i.toString(16).padStart(16, '0'),
    }));
    const res = await post(alertmanagerPayload({ alerts }));
    expect(res.statusCode).toBe(202);
    expect(gateway.batches[0]?.alerts).toHaveLength(policy.webhook.maxAlertsPerGroup);
    expect(gateway.batches[0]?.truncatedAlerts).toBe(5);
  });

  it('property: malformed bodies always get a 4xx with a reason and start nothing', async () => {
    const { post, gateway } = setup();
    const valid = alertmanagerPayload();
    const alert = valid.alerts[0];
    const mutation = fc.oneof(
      fc.record({ key: fc.constantFrom(...Object.keys(valid)), value: fc.anything() }),
      fc.record({ key: fc.constant('alerts'), value: fc.array(fc.anything(), { maxLength: 3 }) }),
      fc.record({ key: fc.constant('version'), value: fc.string({ unit: 'binary' }) }),
      // Hostile labels: odd names, oversized or ill-formed values (valid now: cut and noted, never refused).
      fc.record({
        key: fc.constant('alerts'),
        value: fc
          .tuple(
            fc.string({ unit: 'binary', maxLength: 20 }),
            fc.oneof(fc.string({ unit: 'binary' }), fc.string({ minLength: 4097, maxLength: 5000 })),
          )
          .map(([name, value]) => [{ ...alert, labels: { [name]: value } }]),
      }),
      // Duplicate fingerprints in one group.
      fc
        .integer({ min: 2, max: 5 })
        .map((n) => ({ key: 'alerts', value: Array.from({ length: n }, () => alert) })),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async ({ key, value }) => {
        // What goes over the wire: JSON drops `undefined` (`{"": undefined}` arrives as `{}`, which is valid).
        const body = JSON.parse(JSON.stringify({ ...valid, [key]: value }) ?? 'null') as Record<
          string,
          unknown
        >;
        const ok = (await import('../../src/domain/alertmanager.ts')).webhookPayloadSchema.safeParse(
          body,
        ).success;
        fc.pre(!ok);
        const res = await post(body);
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.json<{ error: { message: string } }>().error.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
    expect(gateway.batches).toHaveLength(0);
  });
});

describe('health and metrics', () => {
  it('readyz follows Temporal only; the worker has its own probe (/healthz/worker)', async () => {
    const { app, gateway } = setup();
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/healthz/worker' })).statusCode).toBe(200);
    // No worker: the API still takes alerts durably, so it stays in its Service.
    gateway.workers = { taskQueue: 'incident-response', polling: false, workers: 0 };
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/healthz/worker' })).statusCode).toBe(503);
    gateway.ready = { temporal: false, error: 'connect ECONNREFUSED' };
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
  });

  it('counts received, started, signalled and rejected in /metrics', async () => {
    const { app, post } = setup();
    await post(alertmanagerPayload());
    await post(alertmanagerPayload());
    await post({ version: '4' });
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/incident_webhook_alerts_received_total 2/);
    expect(text).toMatch(/incident_webhook_groups_total\{action="started"\} 1/);
    expect(text).toMatch(/incident_webhook_groups_total\{action="signalled"\} 1/);
    expect(text).toMatch(/incident_webhook_rejected_total\{reason="invalid"\} 1/);
    expect(text).toMatch(/incident_webhook_alerts_deduplicated_total 1/);
  });
});
