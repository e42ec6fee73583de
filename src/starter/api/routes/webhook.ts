import type { FastifyInstance } from 'fastify';
import { toAlertBatch } from '../../../domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../../domain/alertmanager.ts';
import { genericToAlertBatch } from '../../../domain/generic-source.ts';
import { grafanaPayloadSchema, grafanaToAlertBatch } from '../../../domain/grafana.ts';
import { firstIssue } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { ApiMetrics } from '../metrics.ts';
import { AlertIngest } from './alert-ingest.ts';

/**
 * The alert sources, each authenticated, answered and deduplicated alike
 * (see {@link AlertIngest}), each mapped through the policy's `alerts` rules:
 * - `POST /webhooks/alertmanager`: Alertmanager webhook v4;
 * - `POST /webhooks/grafana`: Grafana Alerting's webhook contact point (v1),
 *   its dashboard, panel and silence links kept on the alerts;
 * - `POST /webhooks/generic`: any JSON, read through `sources.generic`.
 */
export function registerWebhookRoutes(app: FastifyInstance, deps: AppDeps, metrics: ApiMetrics): void {
  const ingest = new AlertIngest(deps, metrics);
  const { policy } = deps;

  app.post('/webhooks/alertmanager', (request, reply) =>
    ingest.handle(request, reply, (body) => {
      if ((body as { version?: unknown } | null)?.version === '1')
        return {
          field: 'version',
          message: 'version: "1" is a Grafana Alerting payload; point the contact point at /webhooks/grafana',
        };
      const parsed = webhookPayloadSchema.safeParse(body);
      return parsed.success
        ? toAlertBatch(policy, parsed.data, policy.webhook.maxAlertsPerGroup)
        : firstIssue(parsed.error);
    }),
  );

  app.post('/webhooks/grafana', (request, reply) =>
    ingest.handle(request, reply, (body) => {
      const parsed = grafanaPayloadSchema.safeParse(body);
      return parsed.success
        ? grafanaToAlertBatch(policy, parsed.data, policy.webhook.maxAlertsPerGroup)
        : firstIssue(parsed.error);
    }),
  );

  app.post('/webhooks/generic', (request, reply) =>
    ingest.handle(request, reply, (body) => genericToAlertBatch(policy, body, new Date().toISOString())),
  );
}
