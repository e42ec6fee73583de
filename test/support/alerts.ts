import type { FastifyInstance } from 'fastify';

/** Alertmanager webhook v4 payloads as Alertmanager 0.25 sends them. */
export interface TestAlert {
  status?: 'firing' | 'resolved';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  fingerprint?: string;
}

export function alertmanagerPayload(
  options: {
    groupKey?: string;
    receiver?: string;
    alerts?: TestAlert[];
    status?: 'firing' | 'resolved';
  } = {},
) {
  const alerts = (options.alerts ?? [{}]).map((a, i) => ({
    status: a.status ?? 'firing',
    labels: { alertname: 'HighErrorRate', severity: 'critical', job: 'pno-physics-bench', ...a.labels },
    annotations: { summary: 'Error rate above 5%', ...a.annotations },
    startsAt: '2026-11-26T10:00:00.000Z',
    endsAt: a.status === 'resolved' ? '2026-11-26T10:30:00.000Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=up',
    fingerprint: a.fingerprint ?? `f00d${i.toString(16).padStart(12, '0')}`,
  }));
  const status = options.status ?? (alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved');
  return {
    version: '4',
    groupKey: options.groupKey ?? '{}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
    status,
    receiver: options.receiver ?? 'incident-response',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate' },
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts,
  };
}

/** A realistic Kubernetes pod alert (about 1 KB), one per pod. */
export function podAlert(i: number, status: 'firing' | 'resolved' = 'firing'): TestAlert {
  const pod = `pno-physics-bench-7d9f8c6b5-${i.toString(36).padStart(5, '0')}`;
  return {
    status,
    fingerprint: `ab${i.toString(16).padStart(14, '0')}`,
    labels: {
      alertname: 'KubePodCrashLooping',
      severity: 'warning',
      namespace: 'pno-prod',
      pod,
      container: 'api',
      job: 'kube-state-metrics',
      instance: '127.0.0.1:8080',
      uid: `4c0e${i.toString(16).padStart(8, '0')}-9a1b-4c2d-8e3f-1234567890ab`,
    },
    annotations: {
      summary: `Pod pno-prod/${pod} (api) is in waiting state (reason: "CrashLoopBackOff").`,
      description: `Pod pno-prod/${pod} (api) is restarting ${(i % 7) + 2} times / 10 minutes. ${'x'.repeat(400)}`,
      runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping',
    },
  };
}

/** POSTs `payload` (JSON, or a string as is) to the API's Alertmanager webhook with `token`, in process. */
export function postToAlertmanagerWebhook(app: FastifyInstance, token: string, payload: unknown) {
  return app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}
