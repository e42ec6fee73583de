import type { FastifyBaseLogger, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { alertBatchWorkflowId } from '../../../contract/workflow-ids.ts';
import type { AlertBatch } from '../../../domain/alert-mapping.ts';
import { cutText, toAlertBatch } from '../../../domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../../domain/alertmanager.ts';
import { genericToAlertBatch } from '../../../domain/generic-source.ts';
import { grafanaPayloadSchema, grafanaToAlertBatch } from '../../../domain/grafana.ts';
import type { Policy } from '../../../domain/policy.ts';
import { appendDeadLetter, newDeadLetterId } from '../../../deadletter-file.ts';
import type { DeadLetter, DeadLetterSource } from '../../../deadletter-file.ts';
import { isTemporalUnavailable } from '../../client/errors.ts';
import type { IngestResult } from '../../client/incidents.ts';
import { ApiError } from '../errors.ts';
import { basicMatches, bearerMatches, firstIssue, sendError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { ApiMetrics } from '../metrics.ts';
import { WebhookBackpressure, backpressureOptions } from '../backpressure.ts';
import { WatchdogIntake } from './watchdog.ts';

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
 * A body as an alert batch, or what is wrong with it (a 400 naming the field). `receivedAt` dates alerts
 * whose body has no time (the generic source), so that a replayed dead letter keeps its own.
 */
export type ToAlertBatch = (
  body: unknown,
  receivedAt: string,
) => AlertBatch | { field: string; message: string };

/**
 * Each alert webhook's mapping of a body to a batch, through the policy's `alerts` rules: what the routes use
 * and what `incident deadletter replay` submits a kept body through again.
 */
export function alertSources(policy: Policy): Record<DeadLetterSource, ToAlertBatch> {
  const maxAlerts = policy.webhook.maxAlertsPerGroup;
  return {
    alertmanager: (body) => {
      if ((body as { version?: unknown } | null)?.version === '1')
        return {
          field: 'version',
          message: 'version: "1" is a Grafana Alerting payload; point the contact point at /webhooks/grafana',
        };
      const parsed = webhookPayloadSchema.safeParse(body);
      return parsed.success ? toAlertBatch(policy, parsed.data, maxAlerts) : firstIssue(parsed.error);
    },
    grafana: (body) => {
      const parsed = grafanaPayloadSchema.safeParse(body);
      return parsed.success ? grafanaToAlertBatch(policy, parsed.data, maxAlerts) : firstIssue(parsed.error);
    },
    generic: (body, receivedAt) => genericToAlertBatch(policy, body, receivedAt),
  };
}

/**
 * The alert webhooks' authentication, as an `onRequest` hook: it runs before the body is read, so an
 * unauthenticated request is a 401 whatever its body (never parsed, however large or malformed).
 */
export function webhookAuth(deps: AppDeps, metrics: ApiMetrics): onRequestAsyncHookHandler {
  // Not `async`: answering from an onRequest hook means returning the reply (Fastify then skips the rest).
  return (request, reply) => {
    const auth = request.headers.authorization;
    const basic = deps.webhookBasicAuth;
    if (bearerMatches(auth, deps.webhookToken) || (basic && basicMatches(auth, basic)))
      return Promise.resolve();
    metrics.rejected.inc({ reason: 'unauthorized' });
    metrics.latency.observe({ status: '401' }, 0);
    return Promise.resolve(
      sendError(reply, new ApiError('UNAUTHORIZED', 'a valid bearer token is required')),
    );
  };
}

/** What the webhook answers for one delivery: `IngestResult`, or where the delivery was kept. */
type IngestAnswer =
  IngestResult | { id: null; workflowId: string | null; action: 'deadlettered'; deadLetter: string };

/**
 * The one ingest path of every alert source (Alertmanager, Grafana, generic
 * JSON), behind {@link webhookAuth}: the source's own parsing, then one
 * signal-with-start on the group's workflow, so a redelivered group lands in
 * the incident it opened. Answers 202 `{incidents:[{id, workflowId, action}]}`,
 * 400 naming the bad field, and never a 4xx for a valid payload (alert senders
 * drop those): overload and an unreachable Temporal are 503 with Retry-After,
 * and a valid delivery that fails otherwise (an internal error, a payload
 * Temporal refuses) is kept in the dead-letter file and answered 202 with
 * `action: "deadlettered"`, so it is neither retried for ever nor lost. One
 * in-flight limit and one set of metrics for all sources.
 */
export class AlertIngest {
  private readonly deps: AppDeps;
  private readonly metrics: ApiMetrics;
  /** The backlog bounds past which a delivery is a 503 (policy `webhook.backpressure`, ../backpressure.ts). */
  readonly backpressure: WebhookBackpressure;
  private readonly seen = new SeenAlerts();
  private readonly watchdog: WatchdogIntake;

  constructor(deps: AppDeps, metrics: ApiMetrics, log: Pick<FastifyBaseLogger, 'warn'>) {
    this.deps = deps;
    this.metrics = metrics;
    // A backlog Temporal will not tell (no permission, an old server) switches that bound off: said, once a minute.
    let warnedAt = -Infinity;
    const onProbeError = (err: unknown) => {
      if (Date.now() - warnedAt < 60_000) return;
      warnedAt = Date.now();
      log.warn({ err }, 'the task queue backlog is unknown: the webhook refuses only past maxInFlight');
    };
    this.backpressure = new WebhookBackpressure({
      ...backpressureOptions(deps.policy, deps.incidents.taskQueueBacklog?.bind(deps.incidents)),
      onProbeError,
    });
    const backpressure = this.backpressure;
    metrics.backlog.inFlight = () => backpressure.inFlight;
    metrics.backlog.queue = async () => {
      await backpressure.poll();
      return backpressure.queueBacklog?.count;
    };
    this.watchdog = new WatchdogIntake(deps, metrics);
  }

  async handle(
    request: FastifyRequest,
    reply: FastifyReply,
    source: DeadLetterSource,
    toBatch: ToAlertBatch,
  ): Promise<FastifyReply> {
    const { metrics } = this;
    const started = performance.now();
    const finish = (status: number) =>
      metrics.latency.observe({ status: String(status) }, (performance.now() - started) / 1000);
    const receivedAt = new Date().toISOString();
    let batch: ReturnType<ToAlertBatch>;
    try {
      batch = toBatch(request.body, receivedAt);
    } catch (err) {
      return this.deadLetter(request, reply, finish, { source, stage: 'mapping', err, receivedAt });
    }
    if (!('alerts' in batch)) {
      metrics.rejected.inc({ reason: 'invalid' });
      finish(400);
      return sendError(reply, new ApiError('INVALID_PAYLOAD', batch.message, { field: batch.field }));
    }
    // The alerting pipeline's dead-man's switch (./watchdog.ts): Watchdog alerts beat the receiver's watchdog
    // and open no incident; the delivery’s other alerts, if any, are ingested as usual, at the same time.
    const watchdog = await this.watchdog.take(batch, request, reply);
    if ('answered' in watchdog) {
      finish(watchdog.status);
      return watchdog.answered;
    }
    try {
      return await this.ingest(request, reply, finish, { source, batch: watchdog.rest, receivedAt });
    } finally {
      // The delivery's heartbeat, sent at the same time (never fails: what went wrong is logged).
      await watchdog.beating;
    }
  }

  /** A delivery's alerts, past the Watchdog: backpressure, then one signal-with-start. */
  private async ingest(
    request: FastifyRequest,
    reply: FastifyReply,
    finish: (status: number) => void,
    what: { source: DeadLetterSource; batch: AlertBatch; receivedAt: string },
  ): Promise<FastifyReply> {
    const { deps, metrics } = this;
    const { source, batch, receivedAt } = what;
    // Backpressure: past a backlog bound, 503 with Retry-After before any incident's Temporal call, so a
    // refused delivery has started nothing (Alertmanager retries a 5xx). ../backpressure.ts says what is counted.
    const bound = this.backpressure.refusal();
    if (bound !== undefined) {
      metrics.backpressure.inc({ bound });
      metrics.rejected.inc({ reason: 'overloaded' });
      finish(503);
      return sendError(
        reply,
        new ApiError(
          'OVERLOADED',
          bound === 'in_flight'
            ? 'too many alert deliveries waiting for Temporal; try again'
            : 'too many incidents waiting for a worker; try again',
          { retryAfterSeconds: this.backpressure.options.retryAfterSeconds },
        ),
      );
    }
    try {
      metrics.alertsReceived.inc(batch.alerts.length);
      metrics.deduplicated.inc(this.seen.repeats(alertBatchWorkflowId(batch), batch.alerts));
      const result: IngestResult = await this.backpressure.track(() => deps.incidents.ingestAlerts(batch));
      metrics.incidents.inc({ action: result.action });
      finish(202);
      return await reply.code(202).send({ incidents: [result] satisfies IngestAnswer[] });
    } catch (err) {
      if (isTemporalUnavailable(err)) {
        // Retryable, never dead-lettered: Alertmanager retries a 5xx, and the alerts are not lost.
        metrics.rejected.inc({ reason: 'temporal_unavailable' });
        finish(503);
        return sendError(
          reply,
          new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
            retryAfterSeconds: 5,
          }),
        );
      }
      return this.deadLetter(request, reply, finish, { source, stage: 'ingest', err, receivedAt, batch });
    }
  }

  /**
   * Keeps a valid delivery that could not be ingested in the dead-letter file and answers 202
   * `deadlettered`; when even that fails (no file configured, a full disk), a 500 that the sender retries.
   */
  private async deadLetter(
    request: FastifyRequest,
    reply: FastifyReply,
    finish: (status: number) => void,
    what: {
      source: DeadLetterSource;
      stage: DeadLetter['stage'];
      err: unknown;
      receivedAt: string;
      batch?: AlertBatch;
    },
  ): Promise<FastifyReply> {
    const { deps, metrics } = this;
    const { source, stage, err, receivedAt, batch } = what;
    const error = cutText(err instanceof Error ? `${err.name}: ${err.message}` : String(err), 2_000);
    const retry = (message: string) => {
      metrics.rejected.inc({ reason: 'internal' });
      finish(500);
      return sendError(reply, new ApiError('INTERNAL', message, { retryAfterSeconds: 5 }));
    };
    if (!deps.deadLetterFile) {
      request.log.error({ err }, `webhook failed (${stage}); no dead-letter file to keep it in`);
      return retry('internal error');
    }
    const workflowId = batch ? alertBatchWorkflowId(batch) : undefined;
    const letter: DeadLetter = {
      id: newDeadLetterId(),
      at: receivedAt,
      source,
      stage,
      error,
      ...(batch
        ? {
            receiver: cutText(batch.receiver, 256),
            groupKey: cutText(batch.groupKey, 256),
            workflowId,
            alerts: batch.alerts.length,
          }
        : {}),
      body: request.body,
    };
    try {
      await appendDeadLetter(deps.deadLetterFile, letter);
    } catch (writeErr) {
      request.log.error({ err, writeErr }, `webhook failed (${stage}) and could not be dead-lettered`);
      return retry('internal error, and the dead-letter file could not be written');
    }
    request.log.error(
      { err, deadLetter: letter.id },
      `webhook failed (${stage}); kept as dead letter ${letter.id}`,
    );
    metrics.deadLettered.inc({ source, stage });
    metrics.incidents.inc({ action: 'deadlettered' });
    finish(202);
    const answer: IngestAnswer = {
      id: null,
      workflowId: workflowId ?? null,
      action: 'deadlettered',
      deadLetter: letter.id,
    };
    return reply.code(202).send({ incidents: [answer] });
  }
}
