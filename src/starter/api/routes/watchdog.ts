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
  /** Answered here: the delivery had only Watchdog alerts. */
  | { answered: FastifyReply; status: number }
  /**
   * Ingest these alerts as usual (the delivery had no Watchdog alert, or others beside it), while the
   * heartbeat, if any, is `beating`: the two at once, so a Temporal outage answers within one call's deadline.
   */
  | { rest: AlertBatch; beating?: Promise<void> };

/**
 * The webhooks' side of the alerting pipeline's dead-man's switch (src/workflows/watchdog.ts): alerts named
 * the policy's `watchdog.alertname` never open an incident; a delivery with a firing one is a heartbeat of its
 * receiver's watchdog (`deps.watchdog`). A delivery of only Watchdog alerts is answered 202
 * `{incidents: [], watchdog: {workflowId, action: "heartbeat"}}` (`"ignored"` when none fires); when the
 * heartbeat cannot be recorded, a 503 (Temporal unreachable) or 500 that Alertmanager retries — the watchdog
 * must not miss it. A delivery with other alerts beside has those ingested whatever becomes of the heartbeat,
 * sent at the same time. Heartbeats count in `incident_webhook_groups_total{action="heartbeat"}`.
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
    this.metrics.alertsReceived.inc(split.watchdogAlerts);
    if (split.rest) {
      // The other alerts are ingested whatever becomes of the heartbeat: a page matters more than a beat, and
      // the Watchdog fires again at its next repeat (the watchdog's timeout spans several).
      if (split.firing === 0) return { rest: split.rest };
      const beating = this.heartbeat(batch, split.firing, request).then((beat) => {
        if (beat instanceof ApiError)
          request.log.warn(
            { code: beat.code, error: beat.message },
            'the Watchdog heartbeat was not recorded; the delivery’s other alerts are ingested',
          );
      });
      return { rest: split.rest, beating };
    }
    const beat = split.firing > 0 ? await this.heartbeat(batch, split.firing, request) : undefined;
    if (beat instanceof ApiError) {
      this.metrics.rejected.inc({
        reason: beat.code === 'TEMPORAL_UNAVAILABLE' ? 'temporal_unavailable' : 'internal',
      });
      return { answered: sendError(reply, beat), status: beat.status };
    }
    const watchdog = beat
      ? { workflowId: beat, action: 'heartbeat' }
      : { workflowId: null, action: 'ignored' };
    return { answered: await reply.code(202).send({ incidents: [], watchdog }), status: 202 };
  }

  /** Records a heartbeat of the receiver's watchdog: its workflow id, or the error to answer (retryable). */
  private async heartbeat(
    batch: AlertBatch,
    firing: number,
    request: FastifyRequest,
  ): Promise<string | ApiError> {
    if (!this.deps.watchdog) {
      request.log.error('a Watchdog alert arrived but this API has no watchdog gateway (AppDeps.watchdog)');
      return new ApiError('INTERNAL', 'watchdog not configured', { retryAfterSeconds: 5 });
    }
    try {
      const { workflowId } = await this.deps.watchdog.heartbeat({
        receiver: batch.receiver,
        alerts: firing,
        receivedAt: new Date().toISOString(),
      });
      this.metrics.incidents.inc({ action: 'heartbeat' });
      return workflowId;
    } catch (err) {
      // A 5xx either way, retried by Alertmanager (never a 4xx it would drop): the watchdog must not miss it.
      if (isTemporalUnavailable(err))
        return new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
          retryAfterSeconds: 5,
        });
      request.log.error({ err }, 'the watchdog heartbeat failed');
      return new ApiError('INTERNAL', 'the watchdog heartbeat could not be recorded; try again', {
        retryAfterSeconds: 5,
      });
    }
  }
}
