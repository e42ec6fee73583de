import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Delivery, DeliveryResult } from '../domain/delivery.ts';
import { Deliverer, RetryLater } from './deliver.ts';
import type { DeliveryChannels, DeliveryProgress } from './deliver.ts';
import type { IncidentHistory } from './incident-history.ts';
import { playbookActivities } from './playbooks/index.ts';
import type { PlaybookActivities } from './playbooks/index.ts';

/** What the activities need from the outside world; the worker builds the real ones. */
export interface ActivityDeps {
  /** Every channel's transport: the provider's, the laptop's outbox, or "not configured". */
  channels: DeliveryChannels;
  history: IncidentHistory;
  /** The playbooks' Kubernetes, Prometheus and HTTP activities; default: no cluster, no Prometheus. */
  playbooks?: PlaybookActivities;
}

export type { Delivery };

export interface DeliverInput {
  incidentId: string;
  deliveries: Delivery[];
  /** The retry policy's attempt limit: on the last attempt, what still fails is reported, not retried. */
  maxAttempts: number;
}

/** Heartbeat details of an attempt; older workers heartbeated only the finished results. */
function resumeFrom(details: unknown): DeliveryProgress | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  if ('done' in details && 'partial' in details) return details as DeliveryProgress;
  return { done: details as Record<number, DeliveryResult>, partial: {}, rooms: {} };
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...(deps.playbooks ?? playbookActivities({ prometheus: false, describe: [] })),
    /**
     * Sends every message one step of an incident produced, in one activity
     * (one task and one completion instead of one per message). Progress is
     * heartbeated, so a retry resends only what has not gone out yet; a
     * message that cannot succeed is reported at once, one that might is
     * retried with the activity until its last attempt.
     */
    async deliver(input: DeliverInput): Promise<DeliveryResult[]> {
      const context = Context.current();
      const progress = resumeFrom(context.info.heartbeatDetails);
      const deliverer = new Deliverer({
        channels: deps.channels,
        ...(progress ? { progress } : {}),
        lastAttempt: context.info.attempt >= input.maxAttempts,
        onProgress: (p) => context.heartbeat(p),
      });
      try {
        const results = await deliverer.deliverAll(input.incidentId, input.deliveries);
        for (const r of results) {
          if (!r.ok) log.warn('delivery failed', { incidentId: input.incidentId, error: r.error });
        }
        return results;
      } catch (err) {
        if (!(err instanceof RetryLater)) throw err;
        throw ApplicationFailure.create({
          message: err.message,
          type: 'TransientDeliveryError',
          nextRetryDelay: err.retryAfterMs,
        });
      }
    },

    /** The incident this alert group had before (a group that fires again after its incident was resolved). */
    async findPreviousIncident(input: { workflowId: string; runId: string }): Promise<string | null> {
      return (await deps.history.previousIncidentId(input.workflowId, input.runId)) ?? null;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
