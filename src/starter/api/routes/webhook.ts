import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toAlertBatch } from '../../../domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../../domain/alertmanager.ts';
import type { IngestResult } from '../../client/incidents.ts';
import { ApiError } from '../errors.ts';
import { basicMatches, bearerMatches, firstIssue, sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { ApiMetrics } from '../metrics.ts';

/**
 * Remembers, per alert group, each alert's last status, to count redelivered
 * alerts (`deduplicated`). Observation only: every delivery is still signalled,
 * because only the workflow knows whether its incident is still open.
 */
class SeenAlerts {
  private readonly groups = new Map<string, Map<string, string>>();
  private static readonly MAX_GROUPS = 10_000;

  repeats(group: string, alerts: readonly { fingerprint: string; status: string }[]): number {
    let known = this.groups.get(group);
    if (!known) {
      if (this.groups.size >= SeenAlerts.MAX_GROUPS)
        this.groups.delete(this.groups.keys().next().value as string);
      known = new Map();
      this.groups.set(group, known);
    }
    let repeated = 0;
    for (const alert of alerts) {
      if (known.get(alert.fingerprint) === alert.status) repeated += 1;
      else known.set(alert.fingerprint, alert.status);
    }
    return repeated;
  }
}

/**
 * `POST /webhooks/alertmanager`: Alertmanager webhook v4. Authenticated,
 * validated, then one signal-with-start per delivery on the group's workflow.
 * A valid payload is never answered with a 4xx (Alertmanager drops those):
 * overload and an unreachable Temporal are 503 with Retry-After.
 */
export function registerWebhookRoutes(app: FastifyInstance, deps: AppDeps, metrics: ApiMetrics): void {
  const maxInFlight = deps.maxInFlight ?? 512;
  let inFlight = 0;
  const seen = new SeenAlerts();

  app.post('/webhooks/alertmanager', async (request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const finish = (status: number) =>
      metrics.latency.observe({ status: String(status) }, (performance.now() - started) / 1000);
    const auth = request.headers.authorization;
    const basic = deps.webhookBasicAuth;
    if (!bearerMatches(auth, deps.webhookToken) && !(basic && basicMatches(auth, basic))) {
      metrics.rejected.inc({ reason: 'unauthorized' });
      finish(401);
      return sendError(reply, new ApiError('UNAUTHORIZED', 'a valid bearer token is required'));
    }
    const parsed = webhookPayloadSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = firstIssue(parsed.error);
      metrics.rejected.inc({ reason: 'invalid' });
      finish(400);
      return sendError(reply, new ApiError('INVALID_PAYLOAD', issue.message, { field: issue.field }));
    }
    if (inFlight >= maxInFlight) {
      metrics.rejected.inc({ reason: 'overloaded' });
      finish(503);
      return sendError(
        reply,
        new ApiError('OVERLOADED', 'too many webhook requests in flight', { retryAfterSeconds: 1 }),
      );
    }
    inFlight += 1;
    try {
      const batch = toAlertBatch(deps.policy, parsed.data, deps.policy.webhook.maxAlertsPerGroup);
      metrics.alertsReceived.inc(batch.alerts.length);
      metrics.deduplicated.inc(seen.repeats(`${batch.receiver}\n${batch.groupKey}`, batch.alerts));
      const result: IngestResult = await deps.incidents.ingestAlerts(batch);
      metrics.incidents.inc({ action: result.action });
      finish(202);
      return reply.code(202).send({ incidents: [result] });
    } catch (err) {
      const apiError = toApiError(err);
      metrics.rejected.inc({
        reason: apiError.code === 'TEMPORAL_UNAVAILABLE' ? 'temporal_unavailable' : 'internal',
      });
      // Never a 4xx here: Alertmanager drops a 4xx, and this payload was valid.
      const answer =
        apiError.status >= 500
          ? apiError
          : new ApiError('TEMPORAL_UNAVAILABLE', apiError.message, { retryAfterSeconds: 5 });
      if (answer.code === 'INTERNAL') request.log.error({ err }, 'webhook failed');
      finish(answer.status);
      return sendError(
        reply,
        answer.retryAfterSeconds === undefined
          ? new ApiError(answer.code, answer.message, { retryAfterSeconds: 5 })
          : answer,
      );
    } finally {
      inFlight -= 1;
    }
  });
}
