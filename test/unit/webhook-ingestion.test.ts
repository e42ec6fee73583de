import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Fastify from 'fastify';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import { ALERT_LIMITS, seedIncident, splitAlertBatch, toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookBodyLimit, webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import { renderTemplate } from '../../src/domain/templates.ts';
import { readDeadLetters } from '../../src/deadletter-file.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import type { AppDeps } from '../../src/starter/api/app.ts';
import { createMetrics } from '../../src/starter/api/metrics.ts';
import { AlertIngest } from '../../src/starter/api/routes/alert-ingest.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

/*
 * Issue 11, "Ingestion: no valid alert is ever refused". Alertmanager drops a group for good on a 4xx, so an
 * authenticated, parseable v4 payload is accepted, and whatever is too large is cut or cleaned and recorded on
 * the incident, never refused. Each describe block is one item of the issue.
 */

const TOKEN = 'test-webhook-token';
const policy = loadDefaultPolicy();
const AUTH = { authorization: `Bearer ${TOKEN}` };

function setup(deps: Partial<AppDeps> = {}) {
  const gateway = new FakeGateway();
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: TOKEN,
    engineerTokens: new Map(),
    ...deps,
  });
  const post = (payload: unknown, headers: Record<string, string> = AUTH, url = '/webhooks/alertmanager') =>
    app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  return { app, gateway, post };
}

type Answer = {
  incidents: { id: string | null; workflowId: string | null; action: string; deadLetter?: string }[];
};

/** A payload whose first alert has exactly these labels (no defaults added). */
function withLabels(labels: Record<string, string>, patch: Record<string, unknown> = {}) {
  const payload = alertmanagerPayload();
  return { ...payload, alerts: [{ ...payload.alerts[0], labels, ...patch }] };
}

/**
 * A realistic Kubernetes alert as kube-prometheus' rules and Alertmanager send it: about 1.2 KiB of JSON.
 */
function kubernetesAlert(i: number) {
  const pod = `checkout-api-7d9f8c6b5-${i.toString(36).padStart(5, 'x')}`;
  return {
    status: 'firing',
    labels: {
      alertname: 'KubePodCrashLooping',
      container: 'checkout-api',
      endpoint: 'http',
      image: 'registry.example.com/payments/checkout-api:1.42.3',
      instance: '10.244.3.17:8080',
      job: 'kube-state-metrics',
      namespace: 'production',
      pod,
      prometheus: 'monitoring/k8s',
      reason: 'CrashLoopBackOff',
      service: 'kube-prometheus-stack-kube-state-metrics',
      severity: 'warning',
      uid: `3f0c6a2e-5d1b-4e8f-9a7c-${i.toString(16).padStart(12, '0')}`,
      cluster: 'prod-eu-west-1',
      team: 'payments',
    },
    annotations: {
      description: `Pod production/${pod} (checkout-api) is in waiting state (reason: "CrashLoopBackOff") and has restarted 7 times in the last 15 minutes; its last termination was an OOMKill.`,
      runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping',
      summary: 'Pod is crash looping.',
    },
    startsAt: '2026-11-26T10:00:00.000Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL:
      'http://prometheus-k8s-0:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason%7Breason%3D%22CrashLoopBackOff%22%2C+job%3D%22kube-state-metrics%22%2C+namespace%3D~%22.%2A%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1',
    fingerprint: i.toString(16).padStart(16, '0'),
  };
}

function kubernetesGroup(n: number) {
  return {
    ...alertmanagerPayload({ groupKey: '{}/{severity="warning"}:{namespace="production"}' }),
    groupLabels: { namespace: 'production' },
    commonLabels: { namespace: 'production', severity: 'warning', alertname: 'KubePodCrashLooping' },
    alerts: Array.from({ length: n }, (_, i) => kubernetesAlert(i)),
  };
}

describe('item 1: Prometheus 3 UTF-8 label names', () => {
  it('accepts service.name and k8s.pod.name, and keeps them as the alert’s labels', async () => {
    const { post, gateway } = setup();
    const labels = {
      alertname: 'PodCrash',
      severity: 'critical',
      'service.name': 'checkout',
      'k8s.pod.name': 'checkout-7d9f-abcde',
      'k8s.namespace.name': 'production',
      'http.route': '/api/v1/pay',
      'ünïcødé label ☃': 'yes',
    };
    const res = await post(withLabels(labels, { annotations: { 'summary.text': 'crash' } }));
    expect(res.statusCode).toBe(202);
    expect(res.json<Answer>().incidents[0]?.action).toBe('started');
    expect(gateway.batches[0]?.alerts[0]?.labels).toEqual(labels);
    expect(gateway.batches[0]?.alerts[0]?.severity).toBe('P1');
    expect(gateway.batches[0]?.alerts[0]?.sanitised).toBeUndefined();
  });

  it('mapping rules match them, templates read them, and the service comes from one', () => {
    const otel = policyWith({
      alerts: {
        serviceLabels: ['service.name', 'service', 'app', 'job'],
        rules: [
          {
            name: 'otel-pods',
            match: { 'k8s.namespace.name': 'production', alertname: '~Pod.*' },
            severity: 'P1',
            title: '{{ k8s.pod.name }} of {{ service.name }} crashed',
            summary: 'pod {{ k8s.pod.name }} ({{ http.route }})',
          },
        ],
      },
    });
    const batch = toAlertBatch(
      otel,
      webhookPayloadSchema.parse(
        withLabels({
          alertname: 'PodCrash',
          'service.name': 'checkout',
          'k8s.pod.name': 'checkout-7d9f-abcde',
          'k8s.namespace.name': 'production',
        }),
      ),
      1000,
    );
    expect(seedIncident(otel, batch)).toMatchObject({
      mappingRule: 'otel-pods',
      severity: 'P1',
      service: 'checkout',
      title: 'checkout-7d9f-abcde of checkout crashed',
      summary: 'pod checkout-7d9f-abcde (n/a)',
    });
  });

  it('an incident opened from them reports and records them like any other', () => {
    const batch = toAlertBatch(
      policy,
      webhookPayloadSchema.parse(
        withLabels({ alertname: 'PodCrash', severity: 'critical', 'service.name': 'checkout' }),
      ),
      1000,
    );
    const run = new IncidentLifecycle({ incidentId: 'INC-0000beef' }, policy, {
      workflowId: 'alertgroup-1',
      namespace: 'default',
    });
    run.receiveAlerts(batch, Date.parse('2026-11-26T10:00:00Z'));
    const state = run.state as IncidentState;
    expect(state.alerts[0]?.labels['service.name']).toBe('checkout');
    expect(run.outbox.some((out) => 'text' in out && out.text.includes('PodCrash'))).toBe(true);
  });
});

describe('item 2: the body limit follows maxAlertsPerGroup', () => {
  it('accepts a 900-alert group of realistic Kubernetes alerts (~1.2 KiB each, over 1 MiB in all)', async () => {
    const { post, gateway } = setup();
    const group = kubernetesGroup(900);
    const body = JSON.stringify(group);
    expect(body.length / 900).toBeGreaterThan(1_150);
    expect(body.length / 900).toBeLessThan(1_300);
    expect(body.length).toBeGreaterThan(1_048_576);
    const res = await post(body);
    expect(res.statusCode).toBe(202);
    expect(gateway.batches[0]?.alerts).toHaveLength(900);
    expect(gateway.batches[0]?.truncatedAlerts).toBe(0);
  });

  it('derives the limit from maxAlertsPerGroup × maxAlertBytes, and refuses a smaller maxBodyBytes at load', () => {
    expect(policy.webhook.maxBodyBytes).toBeUndefined();
    const limit = webhookBodyLimit(policy.webhook);
    expect(limit).toBe((policy.webhook.maxAlertsPerGroup + 4) * policy.webhook.maxAlertBytes);
    expect(limit).toBeGreaterThanOrEqual(1_000 * 16_384);
    expect(webhookBodyLimit(policyWith({ webhook: { maxAlertsPerGroup: 2_000 } }).webhook)).toBe(
      2_004 * 16_384,
    );
    expect(() => policyWith({ webhook: { maxBodyBytes: 1_048_576 } })).toThrow(/webhook\.maxBodyBytes/);
    expect(policyWith({ webhook: { maxBodyBytes: 32 * 1024 * 1024 } }).webhook.maxBodyBytes).toBe(
      32 * 1024 * 1024,
    );
  });

  it('still answers 413 over the derived limit (a group far outside the documented limits)', async () => {
    const { post, gateway } = setup({
      policy: policyWith({ webhook: { maxAlertsPerGroup: 10, maxAlertBytes: 2_048 } }),
    });
    const limit = 14 * 2_048;
    const ok = await post(
      alertmanagerPayload({ alerts: [{ annotations: { description: 'x'.repeat(limit - 2_000) } }] }),
    );
    expect(ok.statusCode).toBe(202);
    const res = await post(
      alertmanagerPayload({ alerts: [{ annotations: { description: 'x'.repeat(limit) } }] }),
    );
    expect(res.statusCode).toBe(413);
    expect(res.json<{ error: { message: string } }>().error.message).toContain(String(limit));
    expect(gateway.batches).toHaveLength(1);
  });

  it('the engineer API keeps a 1 MiB body limit', async () => {
    const { app } = setup({ engineerTokens: new Map([['alice-token', 'alice']]) });
    const res = await app.inject({
      method: 'POST',
      url: '/api/incidents',
      headers: { 'content-type': 'application/json', authorization: 'Bearer alice-token' },
      payload: JSON.stringify({ title: 'x'.repeat(1_100_000), severity: 'P2' }),
    });
    expect(res.statusCode).toBe(413);
  });

  it('a large group reaches the workflow in signals Temporal accepts, the first opening the incident as the whole group would', () => {
    // 1,000 alerts of ~2.5 KiB: one 2.5 MB signal would be refused (Temporal's payload limit is 2 MB).
    const group = kubernetesGroup(1_000);
    group.alerts.forEach((a) => (a.annotations.description += ' '.repeat(1_300)));
    group.alerts[999]!.labels.severity = 'page';
    const batch = toAlertBatch(policy, webhookPayloadSchema.parse(group), 1_000);
    const parts = splitAlertBatch(batch, 512 * 1024);
    expect(parts.length).toBeGreaterThan(4);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(512 * 1024);
    expect(parts.flatMap((p) => p.alerts.map((a) => a.fingerprint)).sort()).toEqual(
      batch.alerts.map((a) => a.fingerprint).sort(),
    );
    expect(seedIncident(policy, parts[0]!)).toEqual(seedIncident(policy, batch));
    expect(seedIncident(policy, parts[0]!).severity).toBe('P0');
    // A batch that fits is sent as it is.
    const small = toAlertBatch(policy, webhookPayloadSchema.parse(alertmanagerPayload()), 1_000);
    expect(splitAlertBatch(small, 512 * 1024)).toEqual([small]);
  });
});

describe('item 3: what is too large or not storable is cut or cleaned and recorded, never refused', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'over 64 labels',
      withLabels({
        alertname: 'Many',
        severity: 'page',
        ...Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`label_${i}`, `v${i}`])),
      }),
      /labels: 18 of 82 not kept \(at most 64\)/,
    ],
    [
      'a label value over 4 KiB',
      withLabels({ alertname: 'Big', description: 'x'.repeat(10_000) }),
      /label "description": 10000 characters cut to 4096/,
    ],
    [
      'a NUL byte in a label value',
      withLabels({ alertname: 'Nul', note: 'a\u0000b' }),
      /label "note": NUL replaced/,
    ],
    [
      'a lone surrogate in a label value',
      withLabels({ alertname: 'Surrogate', note: 'x\ud800' }),
      /label "note": ill-formed Unicode replaced/,
    ],
    [
      'an annotation over 16 KiB',
      withLabels({ alertname: 'Long' }, { annotations: { description: 'y'.repeat(40_000) } }),
      /annotation "description": 40000 characters cut to 16384/,
    ],
  ];

  it.each(cases)('%s: 202, and the alert says what was cut', async (_name, payload, note) => {
    const { post, gateway } = setup();
    const res = await post(payload);
    expect(res.statusCode).toBe(202);
    const alert = gateway.batches[0]?.alerts[0];
    expect(alert?.sanitised?.join('\n')).toMatch(note);
    expect(Object.keys(alert?.labels ?? {}).length).toBeLessThanOrEqual(ALERT_LIMITS.maxLabels);
    for (const value of Object.values(alert?.labels ?? {})) {
      expect(value.length).toBeLessThanOrEqual(ALERT_LIMITS.maxLabelValueLength);
      expect(value.isWellFormed() && !value.includes('\u0000')).toBe(true);
    }
  });

  it('keeps the labels the policy reads when it must drop some', async () => {
    const { post, gateway } = setup();
    const labels = {
      ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`a_${i}`, 'v'])),
      alertname: 'ServiceDown',
      job: 'pno-physics-bench',
      severity: 'page',
    };
    await post(withLabels(labels));
    expect(gateway.batches[0]?.alerts[0]?.labels).toMatchObject({
      alertname: 'ServiceDown',
      job: 'pno-physics-bench',
      severity: 'page',
    });
    expect(seedIncident(policy, gateway.batches[0]!)).toMatchObject({
      severity: 'P0',
      playbook: 'serviceOutage',
    });
  });

  it('a long generatorURL is accepted', async () => {
    const { post, gateway } = setup();
    const res = await post(
      withLabels({ alertname: 'Url' }, { generatorURL: `http://p/${'q'.repeat(20_000)}` }),
    );
    expect(res.statusCode).toBe(202);
    expect(gateway.batches).toHaveLength(1);
  });

  it('a long or NUL-bearing groupKey is stored cut, but the workflow id hashes the whole key', async () => {
    const { post, gateway } = setup();
    const prefix = `{}:{${'pod="x",'.repeat(2_000)}`;
    const keyA = `${prefix}a}`;
    const keyB = `${prefix}b}`;
    const a = (await post(alertmanagerPayload({ groupKey: keyA }))).json<Answer>().incidents[0];
    const b = (await post(alertmanagerPayload({ groupKey: keyB }))).json<Answer>().incidents[0];
    const again = (await post(alertmanagerPayload({ groupKey: keyA }))).json<Answer>().incidents[0];
    expect(a?.workflowId).toBe(alertGroupWorkflowId('incident-response', keyA));
    expect(b?.workflowId).toBe(alertGroupWorkflowId('incident-response', keyB));
    expect(a?.workflowId).not.toBe(b?.workflowId);
    expect(again).toMatchObject({ workflowId: a?.workflowId, action: 'signalled' });
    const stored = gateway.batches[0]!;
    expect(stored.groupKey.length).toBeLessThanOrEqual(ALERT_LIMITS.maxStringLength);
    expect(stored.sanitised?.join('\n')).toMatch(/groupKey: \d+ characters cut to 8192/);
    expect(stored.identity).toEqual({ receiver: 'incident-response', groupKey: keyA });
    // The workflow never receives the whole key.
    expect(splitAlertBatch(stored, 512 * 1024)[0]).not.toHaveProperty('identity');

    const nul = await post(alertmanagerPayload({ groupKey: 'a\u0000b' }));
    expect(nul.statusCode).toBe(202);
    expect(nul.json<Answer>().incidents[0]?.workflowId).toBe(
      alertGroupWorkflowId('incident-response', 'a\u0000b'),
    );
    expect(gateway.batches.at(-1)?.groupKey).toBe('a\uFFFDb');
  });

  it('the incident’s timeline says what was cut, on the alert’s entry and the group’s', () => {
    const payload = {
      ...withLabels({ alertname: 'Big', severity: 'critical', description: 'x'.repeat(5_000) }),
      groupKey: `{}:{${'x'.repeat(9_000)}}`,
    };
    const batch = toAlertBatch(policy, webhookPayloadSchema.parse(payload), 1000);
    const run = new IncidentLifecycle({ incidentId: 'INC-0000beef' }, policy, {
      workflowId: 'alertgroup-1',
      namespace: 'default',
    });
    run.receiveAlerts(batch, Date.parse('2026-11-26T10:00:00Z'));
    const state = run.state as IncidentState;
    const messages = state.timeline.map((t) => t.message).join('\n');
    expect(messages).toMatch(/alert group sanitised on ingestion: groupKey: 9005 characters cut to 8192/);
    expect(messages).toMatch(
      /Big firing \(P1, [0-9a-f]+\); sanitised on ingestion: label "description": 5000 characters cut to 4096/,
    );
    expect(state.alerts[0]?.sanitised).toEqual(['label "description": 5000 characters cut to 4096']);
    expect(state.source).toMatchObject({ kind: 'alertmanager' });
  });

  it('an alert over webhook.maxAlertBytes keeps what the policy reads and is cut to fit', () => {
    const annotations = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`note_${i}`, 'n'.repeat(8_000)]),
    );
    const batch = toAlertBatch(
      policy,
      webhookPayloadSchema.parse(withLabels({ alertname: 'Heavy', severity: 'page' }, { annotations })),
      1000,
    );
    const alert = batch.alerts[0]!;
    expect(Buffer.byteLength(JSON.stringify([alert.labels, alert.annotations, null]))).toBeLessThanOrEqual(
      policy.webhook.maxAlertBytes,
    );
    expect(alert.labels).toEqual({ alertname: 'Heavy', severity: 'page' });
    expect(alert.sanitised?.join('\n')).toMatch(
      /labels and annotations: \d+ bytes cut to \d+ \(webhook.maxAlertBytes 16384\)/,
    );
  });

  it('a long service label is cut to fit Temporal’s search attribute (2 KiB)', () => {
    const batch = toAlertBatch(
      policy,
      webhookPayloadSchema.parse(withLabels({ alertname: 'X', service: 's'.repeat(4_000) })),
      1000,
    );
    const seed = seedIncident(policy, batch);
    expect(seed.service.length).toBeLessThanOrEqual(ALERT_LIMITS.maxServiceLength);
    expect(Buffer.byteLength(JSON.stringify(seed.service))).toBeLessThan(2_048);
  });

  it('property: every payload the v4 schema accepts, hostile labels included, is a 202', async () => {
    const { post } = setup();
    const valid = alertmanagerPayload();
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'binary', minLength: 4_097, maxLength: 6_000 }),
      fc.constantFrom(
        'constructor',
        '__proto__',
        'toString',
        'hasOwnProperty',
        'valueOf',
        '\u0000',
        '\ud800',
      ),
    );
    const labelSet = fc.dictionary(text, text, { maxKeys: 80 });
    await fc.assert(
      fc.asyncProperty(labelSet, labelSet, text, async (labels, annotations, groupKey) => {
        const body = {
          ...valid,
          groupKey: groupKey === '' ? 'g' : groupKey,
          alerts: [{ ...valid.alerts[0], labels, annotations }],
        };
        const res = await post(JSON.stringify(body));
        expect(res.statusCode, res.body).toBe(202);
      }),
      { numRuns: 150 },
    );
  });
});

describe('item 4: severity is read from the whole group before it is cut', () => {
  it('a severity=page alert after the cut still opens a P0, and the first alert still picks the rule', async () => {
    const { post, gateway } = setup();
    const max = policy.webhook.maxAlertsPerGroup;
    const alerts = Array.from({ length: max + 5 }, (_, i) => ({
      fingerprint: i.toString(16).padStart(16, '0'),
      labels: { alertname: 'HighErrorRate', severity: i === max + 3 ? 'page' : 'warning' },
    }));
    const res = await post(alertmanagerPayload({ alerts }));
    expect(res.statusCode).toBe(202);
    const batch = gateway.batches[0]!;
    expect(batch.alerts).toHaveLength(max);
    expect(batch.truncatedAlerts).toBe(5);
    expect(batch.alerts.some((a) => a.severity === 'P0')).toBe(true);
    expect(batch.alerts[0]?.fingerprint).toBe('0000000000000000');
    expect(seedIncident(policy, batch)).toMatchObject({ severity: 'P0', mappingRule: 'high-error-rate' });
    expect(batch.sanitised?.join('\n')).toMatch(
      /5 of 1005 alerts not recorded \(webhook.maxAlertsPerGroup 1000\)/,
    );
  });

  it('a severity given only in the common labels counts too', () => {
    const payload = {
      ...alertmanagerPayload({ alerts: [{ labels: { severity: '' } }] }),
      commonLabels: { alertname: 'HighErrorRate', priority: 'P0' },
    };
    const batch = toAlertBatch(policy, webhookPayloadSchema.parse(payload), 1);
    expect(batch.alerts[0]?.severity).toBe('P0');
  });
});

describe('item 5: no lookup by a sender’s key reaches a prototype; what still fails is dead-lettered', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'deadletter-'));
    file = path.join(dir, 'data', 'deadletter.jsonl');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'])(
    'severity="%s" is an unknown severity (the default P2), not a function',
    async (value) => {
      const { post, gateway } = setup();
      const res = await post(
        withLabels({ alertname: 'Odd', severity: value, impact: value, security: value }),
      );
      expect(res.statusCode).toBe(202);
      expect(gateway.batches[0]?.alerts[0]?.severity).toBe('P2');
      expect(seedIncident(policy, gateway.batches[0]!)).toMatchObject({
        severity: 'P2',
        impact: 'medium',
        securityRelated: false,
      });
    },
  );

  it('labels named __proto__ and constructor are labels like any other', async () => {
    const { post, gateway } = setup();
    const res = await post(
      '{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[{"status":"firing",' +
        '"labels":{"alertname":"Proto","__proto__":"x","constructor":"y"},"annotations":{"__proto__":"z"},' +
        '"startsAt":"2026-11-26T10:00:00Z","fingerprint":"a1"}]}',
    );
    expect(res.statusCode).toBe(202);
    const alert = gateway.batches[0]?.alerts[0];
    expect(Object.keys(alert?.labels ?? {})).toEqual(['alertname', '__proto__', 'constructor']);
    expect(Object.hasOwn(alert?.labels ?? {}, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(alert?.labels)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('a long label named __proto__ in an alert over its budget is cut like any other', async () => {
    const { post, gateway } = setup();
    // No annotations, so labels are cut, the longest (`__proto__`) first: assigning it would change nothing.
    const others = Array.from({ length: 4 }, (_, i) => `"l${i}":"${'n'.repeat(4_000)}"`).join(',');
    const res = await post(
      '{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[{"status":"firing",' +
        `"labels":{"alertname":"Proto","__proto__":"${'p'.repeat(4_096)}",${others}},` +
        '"startsAt":"2026-11-26T10:00:00Z","fingerprint":"a1"}]}',
    );
    expect(res.statusCode).toBe(202);
    const alert = gateway.batches[0]?.alerts[0];
    expect(Object.hasOwn(alert?.labels ?? {}, '__proto__')).toBe(true);
    expect(alert?.labels['__proto__']?.length).toBeLessThan(4_096);
    expect(Buffer.byteLength(JSON.stringify([alert?.labels, alert?.annotations, null]))).toBeLessThanOrEqual(
      policy.webhook.maxAlertBytes,
    );
  });

  it('templates read own values only', () => {
    expect(renderTemplate('{{ constructor }} {{ toString }} {{ a }}', { a: 'b' })).toBe('n/a n/a b');
  });

  it('a delivery the gateway fails on (not an outage) is kept as a dead letter and answered 202', async () => {
    const metrics = createMetrics();
    const { post, gateway, app } = setup({ deadLetterFile: file, metrics });
    gateway.failWith = Object.assign(new Error('3 INVALID_ARGUMENT: Blob data size exceeds limit.'), {
      code: 3,
    });
    const payload = alertmanagerPayload({ groupKey: 'dead' });
    const res = await post(payload);
    expect(res.statusCode).toBe(202);
    const answer = res.json<Answer>().incidents[0];
    expect(answer).toMatchObject({
      id: null,
      action: 'deadlettered',
      workflowId: alertGroupWorkflowId('incident-response', 'dead'),
      deadLetter: expect.stringMatching(/^dl-/),
    });
    const letters = await readDeadLetters(file);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      id: answer?.deadLetter,
      source: 'alertmanager',
      stage: 'ingest',
      status: 'pending',
      groupKey: 'dead',
      alerts: 1,
      error: expect.stringContaining('Blob data size exceeds limit'),
      body: payload,
    });
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/incident_webhook_deadlettered_total\{source="alertmanager",stage="ingest"\} 1/);
    expect(text).toMatch(/incident_webhook_groups_total\{action="deadlettered"\} 1/);
  });

  it('an internal error while mapping is kept as a dead letter too', async () => {
    const metrics = createMetrics();
    const app = Fastify();
    const ingest = new AlertIngest(
      {
        policy,
        incidents: new FakeGateway(),
        webhookToken: TOKEN,
        engineerTokens: new Map(),
        deadLetterFile: file,
      },
      metrics,
      app.log,
    );
    app.post('/hook', (request, reply) =>
      ingest.handle(request, reply, 'grafana', () => {
        throw new TypeError('x is not a function');
      }),
    );
    const res = await app.inject({ method: 'POST', url: '/hook', payload: { any: 'thing' } });
    expect(res.statusCode).toBe(202);
    expect(res.json<Answer>().incidents[0]).toMatchObject({ action: 'deadlettered', workflowId: null });
    expect(await readDeadLetters(file)).toMatchObject([
      {
        source: 'grafana',
        stage: 'mapping',
        error: 'TypeError: x is not a function',
        body: { any: 'thing' },
      },
    ]);
  });

  it('a Temporal outage is still a 503 and never a dead letter', async () => {
    const { post, gateway } = setup({ deadLetterFile: file });
    gateway.failWith = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 });
    const res = await post(alertmanagerPayload());
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    await expect(readFile(file, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('without a dead-letter file, or when it cannot be written, the answer is a retryable 500', async () => {
    await writeFile(path.join(dir, 'a-file'), '');
    const unwritable = setup({ deadLetterFile: path.join(dir, 'a-file', 'deadletter.jsonl') });
    unwritable.gateway.failWith = new Error('boom');
    const res = await unwritable.post(alertmanagerPayload());
    expect(res.statusCode).toBe(500);
    expect(res.headers['retry-after']).toBeDefined();
    const none = setup();
    none.gateway.failWith = new Error('boom');
    expect((await none.post(alertmanagerPayload())).statusCode).toBe(500);
  });
});

describe('item 6: authentication before the body, and request timeouts', () => {
  it.each([
    ['a body that is not JSON', '{"version": "4",', 'application/json'],
    ['a body over the limit', 'x'.repeat(17 * 1024 * 1024), 'application/json'],
    ['a body of another type', 'hello', 'text/plain'],
  ])('an unauthenticated request with %s is a 401 (its body never parsed)', async (_name, payload, type) => {
    const { app, gateway } = setup();
    for (const authorization of [undefined, 'Bearer nope']) {
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/alertmanager',
        headers: { 'content-type': type, ...(authorization ? { authorization } : {}) },
        payload,
      });
      expect(res.statusCode).toBe(401);
    }
    expect(gateway.batches).toHaveLength(0);
  });

  it('every alert webhook checks the token first', async () => {
    const { post } = setup();
    for (const url of ['/webhooks/alertmanager', '/webhooks/grafana', '/webhooks/generic'])
      expect((await post('{not json', { authorization: 'Bearer nope' }, url)).statusCode).toBe(401);
  });

  it('has connection and request timeouts by default', () => {
    const { app } = setup();
    // Node's server: `timeout` is Fastify's connectionTimeout.
    expect(app.server.timeout).toBe(60_000);
    expect(app.server.requestTimeout).toBe(120_000);
  });

  it('closes a connection that stops sending its body', async () => {
    const { app } = setup({ connectionTimeoutMs: 300, requestTimeoutMs: 1_000 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;
      const closed = await new Promise<number>((resolve, reject) => {
        const started = Date.now();
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(
            'POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
              `Authorization: Bearer ${TOKEN}\r\nContent-Length: 1000\r\n\r\n{"version":`,
          );
        });
        socket.on('data', () => undefined);
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Date.now() - started));
        setTimeout(() => {
          socket.destroy();
          reject(new Error('the stalled connection was still open after 5 s'));
        }, 5_000);
      });
      expect(closed).toBeLessThan(5_000);
    } finally {
      await app.close();
    }
  });
});

describe('item 7: a Grafana payload at the Alertmanager endpoint', () => {
  it('is a 400 that names /webhooks/grafana (already so before; also in alert-sources.test.ts)', async () => {
    const { post } = setup();
    const res = await post({ ...alertmanagerPayload(), version: '1' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: {
        code: 'INVALID_PAYLOAD',
        field: 'version',
        message: expect.stringContaining('/webhooks/grafana'),
      },
    });
  });
});
