/**
 * Issue 11, "Ingestion: no valid alert is ever refused", against a real Temporal dev server: what the webhook
 * accepts, Temporal accepts too. A group over Temporal's 2 MB payload limit reaches its workflow in several
 * signals (the first opening the incident as the whole group would), and Prometheus 3's UTF-8 labels, a
 * service label longer than a search attribute may be, and prototype names as values start an incident.
 * No worker runs: what is checked is what the API hands Temporal (the workflow's history and attributes).
 */
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentServiceAttribute, IncidentSeverityAttribute } from '../../src/contract/search-attributes.ts';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { alertmanagerPayload, postToAlertmanagerWebhook } from '../support/alerts.ts';
import { loadDefaultPolicy } from '../support/policy.ts';
import { startTestDevServer } from '../support/temporal.ts';

const TOKEN = 'e2e-webhook-token';
const policy = loadDefaultPolicy();

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let connection: Connection;
let client: Client;
let app: FastifyInstance;

beforeAll(async () => {
  server = await startTestDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  app = buildApp({
    policy,
    incidents: new TemporalIncidents(client, `webhook-limits-${Date.now()}`, policy, {
      maintenance: { activeFor: () => Promise.resolve(undefined) },
    }),
    webhookToken: TOKEN,
    engineerTokens: new Map(),
  });
});

afterAll(async () => {
  await app?.close();
  await connection?.close();
  await server?.stop();
});

const post = (payload: unknown) => postToAlertmanagerWebhook(app, TOKEN, payload);

/** The alert batches the workflow was signalled, in order. */
async function signalledBatches(workflowId: string): Promise<AlertBatch[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const converter = client.options.loadedDataConverter.payloadConverter;
  return (history.events ?? [])
    .filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'alertsReceived')
    .map((e) =>
      converter.fromPayload<AlertBatch>(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!),
    );
}

describe('the webhook against a real Temporal', () => {
  it('a 1,000-alert group of 2.5 MB starts one incident, in signals Temporal accepts, as a P0', async () => {
    const alerts = Array.from({ length: 1_000 }, (_, i) => ({
      fingerprint: i.toString(16).padStart(16, '0'),
      labels: {
        alertname: 'KubePodCrashLooping',
        severity: i === 999 ? 'page' : 'warning',
        namespace: 'production',
        pod: `checkout-api-7d9f8c6b5-${i}`,
      },
      annotations: { description: `Pod production/checkout-api-${i} is crash looping. ${'x'.repeat(2_200)}` },
    }));
    const payload = alertmanagerPayload({ groupKey: '{}:{namespace="production"}', alerts });
    expect(Buffer.byteLength(JSON.stringify(payload))).toBeGreaterThan(2_200_000);
    const res = await post(payload);
    expect(res.statusCode, res.body).toBe(202);
    const answer = res.json<{ incidents: { id: string; workflowId: string; action: string }[] }>()
      .incidents[0];
    expect(answer?.action).toBe('started');
    const batches = await signalledBatches(answer!.workflowId);
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flatMap((b) => b.alerts)).toHaveLength(1_000);
    expect(batches[0]?.alerts.some((a) => a.severity === 'P0')).toBe(true);
    const description = await client.workflow.getHandle(answer!.workflowId).describe();
    expect(description.typedSearchAttributes.get(IncidentSeverityAttribute)).toBe('P0');
  });

  it('UTF-8 label names, a 4,000-character service label and prototype names as values start an incident', async () => {
    const res = await post(
      alertmanagerPayload({
        groupKey: '{}:{"service.name"="checkout"}',
        alerts: [
          {
            labels: {
              alertname: 'PodCrash',
              severity: 'constructor',
              priority: 'toString',
              'service.name': 'checkout',
              'k8s.pod.name': 'checkout-7d9f-abcde',
              service: 's'.repeat(4_000),
              note: 'nul\u0000here',
            },
          },
        ],
      }),
    );
    expect(res.statusCode, res.body).toBe(202);
    const answer = res.json<{ incidents: { workflowId: string; action: string }[] }>().incidents[0];
    expect(answer?.action).toBe('started');
    const description = await client.workflow.getHandle(answer!.workflowId).describe();
    expect(description.typedSearchAttributes.get(IncidentSeverityAttribute)).toBe('P2');
    expect(description.typedSearchAttributes.get(IncidentServiceAttribute)?.length).toBeLessThanOrEqual(255);
    const [batch] = await signalledBatches(answer!.workflowId);
    expect(batch?.alerts[0]?.labels).toMatchObject({
      'k8s.pod.name': 'checkout-7d9f-abcde',
      note: 'nul\uFFFDhere',
    });
    expect(batch?.alerts[0]?.sanitised).toEqual(['label "note": NUL replaced']);
  });
});
