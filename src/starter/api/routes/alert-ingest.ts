import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AlertBatch } from '../../../domain/alert-mapping.ts';
import type { IngestResult } from '../../client/incidents.ts';
import { ApiError } from '../errors.ts';
import { basicMatches, bearerMatches, sendError, toApiError } from '../http.ts';
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

/** A body as an alert batch, or what is wrong with it (a 400 naming the field). */
export type ToAlertBatch = (body: unknown) => AlertBatch | { field: string; message: string };

/**
 * The one ingest path of every alert source (Alertmanager, Grafana, generic
 * JSON): the webhook token or basic auth, the source's own parsing, then one
 * signal-with-start on the group's workflow, so a redelivered group lands in
 * the incident it opened. Answers 202 `{incidents:[{id, workflowId, action}]}`,
 * 400 naming the bad field, 401, and never a 4xx for a valid payload (alert
 * senders drop those): overload and an unreachable Temporal are 503 with
 * Retry-After. One in-flight limit and one set of metrics for all sources.
 */
export class AlertIngest {
  private readonly deps: AppDeps;
  private readonly metrics: ApiMetrics;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private readonly seen = new SeenAlerts();

  constructor(deps: AppDeps, metrics: ApiMetrics) {
    this.deps = deps;
    this.metrics = metrics;
    this.maxInFlight = deps.maxInFlight ?? 512;
  }

  async handle(request: FastifyRequest, reply: FastifyReply, toBatch: ToAlertBatch): Promise<FastifyReply> {
    const { deps, metrics } = this;
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
    const batch = toBatch(request.body);
    if (!('alerts' in batch)) {
      metrics.rejected.inc({ reason: 'invalid' });
      finish(400);
      return sendError(reply, new ApiError('INVALID_PAYLOAD', batch.message, { field: batch.field }));
    }
    if (this.inFlight >= this.maxInFlight) {
      metrics.rejected.inc({ reason: 'overloaded' });
      finish(503);
      return sendError(
        reply,
        new ApiError('OVERLOADED', 'too many webhook requests in flight', { retryAfterSeconds: 1 }),
      );
    }
    this.inFlight += 1;
    try {
      metrics.alertsReceived.inc(batch.alerts.length);
      metrics.deduplicated.inc(this.seen.repeats(`${batch.receiver}\n${batch.groupKey}`, batch.alerts));
      const result: IngestResult = await deps.incidents.ingestAlerts(batch);
      metrics.incidents.inc({ action: result.action });
      finish(202);
      return reply.code(202).send({ incidents: [result] });
    } catch (err) {
      const apiError = toApiError(err);
      metrics.rejected.inc({
        reason: apiError.code === 'TEMPORAL_UNAVAILABLE' ? 'temporal_unavailable' : 'internal',
      });
      // Never a 4xx here: alert senders drop a 4xx, and this payload was valid.
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
      this.inFlight -= 1;
    }
  }
}
