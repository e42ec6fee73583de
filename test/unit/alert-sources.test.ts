import { describe, expect, it } from 'vitest';
import { genericToAlertBatch } from '../../src/domain/generic-source.ts';
import { parseJsonPath, readJsonPath } from '../../src/domain/json-path.ts';
import { PolicyError, parsePolicy } from '../../src/domain/policy.ts';
import { seedIncident } from '../../src/domain/alert-mapping.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultDocument, loadDefaultPolicy, policyWith } from '../support/policy.ts';

const TOKEN = 'test-webhook-token';

function setup(policy = loadDefaultPolicy()) {
  const gateway = new FakeGateway();
  const app = buildApp({ policy, incidents: gateway, webhookToken: TOKEN, engineerTokens: new Map() });
  const post = (url: string, payload: unknown, authorization = `Bearer ${TOKEN}`) =>
    app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', authorization },
      payload: JSON.stringify(payload),
    });
  return { app, gateway, post };
}

/** Grafana Alerting's webhook contact point payload, as Grafana 11 sends it. */
function grafanaPayload(patch: Record<string, unknown> = {}) {
  return {
    receiver: 'pno-oncall',
    status: 'firing',
    orgId: 1,
    alerts: [
      {
        status: 'firing',
        labels: {
          alertname: 'HighErrorRate',
          service: 'pno-physics-bench',
          severity: 'critical',
          grafana_folder: 'PNO',
        },
        annotations: { summary: 'Error rate 7% on pno-physics-bench' },
        startsAt: '2025-03-06T10:00:00.000Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'https://grafana.example.com/alerting/grafana/abc/view',
        fingerprint: '9b6d3c1a2f4e5d60',
        silenceURL: 'https://grafana.example.com/alerting/silence/new?matcher=alertname%3DHighErrorRate',
        dashboardURL: 'https://grafana.example.com/d/pno',
        panelURL: 'https://grafana.example.com/d/pno?viewPanel=2',
        values: { B: 0.07, C: 1 },
        valueString: "[ var='B' labels={service=pno-physics-bench} value=0.07 ]",
      },
    ],
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', service: 'pno-physics-bench', severity: 'critical' },
    commonAnnotations: { summary: 'Error rate 7% on pno-physics-bench' },
    externalURL: 'https://grafana.example.com/',
    version: '1',
    groupKey: '{}/{}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
    title: '[FIRING:1] HighErrorRate (pno-physics-bench critical)',
    state: 'alerting',
    message: '**Firing**\n\nValue: B=0.07, C=1',
    ...patch,
  };
}

describe('POST /webhooks/grafana', () => {
  it('opens one incident through the mapping rules, keeping Grafana’s links; a redelivery opens none', async () => {
    const { post, gateway } = setup();
    const first = await post('/webhooks/grafana', grafanaPayload());
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({
      incidents: [{ action: 'started', id: expect.stringMatching(/^INC-/) }],
    });
    const batch = gateway.batches[0];
    expect(batch?.receiver).toBe('grafana/pno-oncall');
    expect(batch?.alerts[0]).toMatchObject({
      severity: 'P1',
      links: {
        dashboard: 'https://grafana.example.com/d/pno',
        panel: 'https://grafana.example.com/d/pno?viewPanel=2',
        silence: expect.stringContaining('/alerting/silence/new'),
        source: 'https://grafana.example.com/alerting/grafana/abc/view',
      },
      annotations: { value: expect.stringContaining('value=0.07') },
    });
    expect(batch?.alerts[0]?.endsAt).toBeUndefined();
    // The policy's high-error-rate rule matched: its playbook is selected, as for Alertmanager.
    expect(seedIncident(loadDefaultPolicy(), batch!)).toMatchObject({
      mappingRule: 'high-error-rate',
      playbook: 'highErrorRate',
      severity: 'P1',
      service: 'pno-physics-bench',
    });

    const again = await post('/webhooks/grafana', grafanaPayload());
    expect(again.json()).toMatchObject({
      incidents: [
        {
          action: 'signalled',
          workflowId: first.json<{ incidents: { workflowId: string }[] }>().incidents[0]?.workflowId,
        },
      ],
    });
  });

  it('never shares an incident with an Alertmanager receiver of the same name and group', async () => {
    const { post } = setup();
    const grafana = await post('/webhooks/grafana', grafanaPayload({ receiver: 'pno', groupKey: 'g' }));
    const am = await post('/webhooks/alertmanager', alertmanagerPayload({ receiver: 'pno', groupKey: 'g' }));
    expect(grafana.json<{ incidents: { workflowId: string }[] }>().incidents[0]?.workflowId).not.toBe(
      am.json<{ incidents: { workflowId: string }[] }>().incidents[0]?.workflowId,
    );
  });

  it('authenticates like the Alertmanager webhook', async () => {
    const { post, gateway } = setup();
    expect((await post('/webhooks/grafana', grafanaPayload(), 'Bearer nope')).statusCode).toBe(401);
    expect((await post('/webhooks/grafana', grafanaPayload(), '')).statusCode).toBe(401);
    expect(gateway.batches).toHaveLength(0);
  });

  it('answers 400 naming the bad field, and 503 when Temporal is down', async () => {
    const { post, gateway } = setup();
    const bad = await post('/webhooks/grafana', grafanaPayload({ version: '4' }));
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'INVALID_PAYLOAD', field: 'version' } });
    const noAlerts = await post('/webhooks/grafana', grafanaPayload({ alerts: [] }));
    expect(noAlerts.json()).toMatchObject({ error: { field: 'alerts' } });
    gateway.failWith = Object.assign(new Error('14 UNAVAILABLE'), { code: 14 });
    const down = await post('/webhooks/grafana', grafanaPayload());
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBeDefined();
  });

  it('the Alertmanager endpoint points a Grafana payload to /webhooks/grafana', async () => {
    const { post, gateway } = setup();
    const res = await post('/webhooks/alertmanager', grafanaPayload());
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: { field: 'version', message: expect.stringContaining('/webhooks/grafana') },
    });
    expect(gateway.batches).toHaveLength(0);
  });

  it('counts Grafana deliveries in the webhook metrics', async () => {
    const { app, post } = setup();
    await post('/webhooks/grafana', grafanaPayload());
    await post('/webhooks/grafana', grafanaPayload());
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/incident_webhook_groups_total\{action="started"\} 1/);
    expect(text).toMatch(/incident_webhook_groups_total\{action="signalled"\} 1/);
    expect(text).toMatch(/incident_webhook_alerts_deduplicated_total 1/);
  });
});

describe('POST /webhooks/generic', () => {
  const body = {
    id: 'chk-42',
    title: 'ServiceDown',
    severity: 'critical',
    service: 'pno-physics-bench',
    status: 'open',
    summary: 'health check failed 3 times',
    dedup_key: 'uptime/pno-health',
  };

  it('opens one incident through the mapping rules; a redelivery opens none', async () => {
    const { post, gateway } = setup();
    const first = await post('/webhooks/generic', body);
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ incidents: [{ action: 'started' }] });
    const batch = gateway.batches[0]!;
    expect(batch).toMatchObject({ receiver: 'generic', groupKey: 'uptime/pno-health', status: 'firing' });
    expect(batch.alerts[0]?.labels).toEqual({
      alertname: 'ServiceDown',
      severity: 'critical',
      service: 'pno-physics-bench',
      source: 'generic',
    });
    // The service-down rule applies: P0, critical impact, the serviceOutage playbook, its title template.
    expect(seedIncident(loadDefaultPolicy(), batch)).toMatchObject({
      mappingRule: 'service-down',
      severity: 'P0',
      impact: 'critical',
      playbook: 'serviceOutage',
      title: 'pno-physics-bench is down',
      summary: 'health check failed 3 times',
    });
    const again = await post('/webhooks/generic', body);
    expect(again.json()).toMatchObject({ incidents: [{ action: 'signalled' }] });
    expect(again.json<{ incidents: { workflowId: string }[] }>().incidents[0]?.workflowId).toBe(
      first.json<{ incidents: { workflowId: string }[] }>().incidents[0]?.workflowId,
    );
  });

  it('reads fields at the policy’s paths, and a resolved status never opens an incident', async () => {
    const policy = policyWith({
      sources: {
        generic: {
          fields: {
            title: '$.alert.name',
            severity: '$.alert.labels.priority',
            service: "$['alert']['labels']['app.kubernetes.io/name']",
            dedupKey: '$.alert.id',
            status: '$.state',
            summary: '$.messages[0]',
          },
        },
      },
    });
    const { post, gateway } = setup(policy);
    const alert = {
      alert: {
        name: 'Disk almost full',
        id: 7,
        labels: { priority: 'p3', 'app.kubernetes.io/name': 'pno-db' },
      },
      messages: ['95% used'],
      state: 'firing',
    };
    await post('/webhooks/generic', alert);
    expect(gateway.batches[0]).toMatchObject({
      groupKey: '7',
      alerts: [
        {
          severity: 'P3',
          labels: { alertname: 'Disk almost full', service: 'pno-db', priority: 'P3' },
          annotations: { summary: '95% used' },
        },
      ],
    });
    const cleared = await post('/webhooks/generic', {
      ...alert,
      alert: { ...alert.alert, id: 8 },
      state: 'OK',
    });
    expect(cleared.json()).toMatchObject({ incidents: [{ action: 'ignored' }] });
  });

  it('answers 400 naming the path when the title is missing or not text; 401 without the token', async () => {
    const { post, gateway } = setup();
    const missing = await post('/webhooks/generic', { severity: 'critical' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ error: { code: 'INVALID_PAYLOAD', field: '$.title' } });
    const wrong = await post('/webhooks/generic', { title: { nested: true } });
    expect(wrong.json()).toMatchObject({ error: { field: '$.title' } });
    expect((await post('/webhooks/generic', [1, 2])).statusCode).toBe(400);
    expect((await post('/webhooks/generic', body, 'Bearer nope')).statusCode).toBe(401);
    expect(gateway.batches).toHaveLength(0);
  });

  it('does not read inherited properties', () => {
    const policy = policyWith({ sources: { generic: { fields: { title: '$.constructor' } } } });
    expect(genericToAlertBatch(policy, {}, '2025-03-06T10:00:00.000Z')).toMatchObject({
      field: '$.constructor',
    });
  });
});

describe('JSON paths in the policy', () => {
  it.each([
    ['$', []],
    ['$.a.b', ['a', 'b']],
    ['$.items[0].id', ['items', 0, 'id']],
    ["$['odd key'].x", ['odd key', 'x']],
    ['$["a.b"]', ['a.b']],
  ])('parses %s', (path, segments) => {
    expect(parseJsonPath(path)).toEqual(segments);
  });

  it.each(['a.b', '$..a', '$.*', '$[?(@.x)]', '$.', '$[x]'])('refuses %s', (path) => {
    expect(parseJsonPath(path)).toBeUndefined();
  });

  it('reads only own properties and array indexes', () => {
    expect(readJsonPath({ a: [{ b: 1 }] }, '$.a[0].b')).toBe(1);
    expect(readJsonPath({ a: {} }, '$.a.toString')).toBeUndefined();
    expect(readJsonPath({ a: { 0: 'x' } }, '$.a[0]')).toBeUndefined();
  });

  it('a bad path in the policy is a start-up error naming the key', () => {
    const document = loadDefaultDocument();
    const bad = { ...document, sources: { generic: { fields: { title: 'alert.name' } } } };
    expect(() => parsePolicy(bad)).toThrow(PolicyError);
    expect(() => parsePolicy(bad)).toThrow(/sources\.generic\.fields\.title/);
  });
});
