import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AlertBatch } from '../../../domain/alert-mapping.ts';
import { splitWatchdogAlerts } from '../../../domain/watchdog.ts';
import { isTemporalUnavailable } from '../../client/errors.ts';
import { ApiError } from '../errors.ts';
import { sendError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { ApiMetrics } from '../metrics.ts';

/** What the webhook does next with a delivery after {@link WatchdogIntake.take}. */
export type WatchdogTaken =
  /** Answered here (only Watchdog alerts, or the heartbeat failed). */
  | { answered: FastifyReply; status: number }
  /** Ingest these alerts as usual (the delivery had no Watchdog alert, or others beside it). */
  | { rest: AlertBatch };

/**
 * The webhooks' side of the alerting pipeline's dead-man's switch (src/workflows/watchdog.ts): alerts named
 * the policy's `watchdog.alertname` never open an incident; a delivery with a firing one is a heartbeat of its
 * receiver's watchdog (`deps.watchdog`). A delivery of only Watchdog alerts is answered 202
 * `{incidents: [], watchdog: {workflowId, action: "heartbeat"}}` (`"ignored"` when none fires); when the
 * heartbeat cannot be recorded, a 503 (Temporal unreachable) or 500 that Alertmanager retries — the watchdog
 * must not miss it. Heartbeats count in `incident_webhook_groups_total{action="heartbeat"}`.
 */
export class WatchdogIntake {
  private readonly deps: AppDeps;
  private readonly metrics: ApiMetrics;

  constructor(deps: AppDeps, metrics: ApiMetrics) {
    this.deps = deps;
    this.metrics = metrics;
  }

  async take(batch: AlertBatch, request: FastifyRequest, reply: FastifyReply): Promise<WatchdogTaken> {
    const split = splitWatchdogAlerts(this.deps.policy, batch);
    if (!split) return { rest: batch };
    const { metrics } = this;
    const fail = (status: number, reason: string, err: ApiError) => {
      metrics.rejected.inc({ reason });
      return { answered: sendError(reply, err), status };
    };
    let workflowId: string | null = null;
    if (split.firing > 0) {
      if (!this.deps.watchdog) {
        request.log.error('a Watchdog alert arrived but this API has no watchdog gateway (AppDeps.watchdog)');
        return fail(
          500,
          'internal',
          new ApiError('INTERNAL', 'watchdog not configured', { retryAfterSeconds: 5 }),
        );
      }
      try {
        ({ workflowId } = await this.deps.watchdog.heartbeat({
          receiver: batch.receiver,
          alerts: split.firing,
          receivedAt: new Date().toISOString(),
        }));
      } catch (err) {
        if (isTemporalUnavailable(err))
          return fail(
            503,
            'temporal_unavailable',
            new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
              retryAfterSeconds: 5,
            }),
          );
        request.log.error({ err }, 'the watchdog heartbeat failed');
        return fail(500, 'internal', new ApiError('INTERNAL', 'internal error', { retryAfterSeconds: 5 }));
      }
      metrics.incidents.inc({ action: 'heartbeat' });
    }
    metrics.alertsReceived.inc(split.watchdogAlerts);
    if (split.rest) return { rest: split.rest };
    const watchdog = workflowId
      ? { workflowId, action: 'heartbeat' }
      : { workflowId: null, action: 'ignored' };
    return { answered: await reply.code(202).send({ incidents: [], watchdog }), status: 202 };
  }
}
