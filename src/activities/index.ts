import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Notification } from '../domain/escalation.ts';
import type { DeliveryResult } from '../domain/notices.ts';
import type { Person } from '../domain/policy.ts';
import type { IncidentHistory } from './incident-history.ts';
import { SlackError } from './channels/slack.ts';
import type { SlackClient } from './channels/slack.ts';

/** What the activities need from the outside world; the worker builds the real ones. */
export interface ActivityDeps {
  slack: SlackClient;
  history: IncidentHistory;
}

/** One message to send: a post to a Slack channel, or a notification to a person on their channels. */
export type Delivery =
  | { kind: 'post'; channel: string; text: string }
  | {
      kind: 'notify';
      notification: Notification;
      /** The person's contacts, from the incident's policy snapshot. */
      person: Pick<Person, 'name' | 'slack' | 'email' | 'phone'> | undefined;
      text: string;
    };

export interface DeliverInput {
  incidentId: string;
  deliveries: Delivery[];
  /** The retry policy's attempt limit: on the last attempt, what still fails is reported, not retried. */
  maxAttempts: number;
}

/** A delivery that may succeed if tried again later. */
class TransientDeliveryError extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'TransientDeliveryError';
    this.retryAfterMs = retryAfterMs;
  }
}

async function deliverOne(slack: SlackClient, delivery: Delivery): Promise<string> {
  try {
    if (delivery.kind === 'post') {
      const posted = await slack.postMessage({ channel: delivery.channel, text: delivery.text });
      return `slack ${posted.channel} ts=${posted.ts}`;
    }
    // Slack is delivered (a direct message to the person's Slack id); pager, SMS, phone and email have
    // no transport in this release and are recorded as such.
    const receipts: string[] = [];
    for (const channel of delivery.notification.channels) {
      if (channel === 'slack' && delivery.person?.slack) {
        const posted = await slack.postMessage({ channel: delivery.person.slack, text: delivery.text });
        receipts.push(`slack dm ts=${posted.ts}`);
      } else {
        receipts.push(`${channel} recorded`);
      }
    }
    return receipts.join(', ');
  } catch (err) {
    if (err instanceof SlackError && err.retryable)
      throw new TransientDeliveryError(err.message, err.retryAfterMs);
    throw err;
  }
}

export function createActivities(deps: ActivityDeps) {
  return {
    /**
     * Sends every message one step of an incident produced, in one activity
     * (one task and one completion instead of one per message). Progress is
     * heartbeated, so a retry resends only what has not gone out yet; a
     * message that cannot succeed is reported at once, one that might is
     * retried with the activity until its last attempt.
     */
    async deliver(input: DeliverInput): Promise<DeliveryResult[]> {
      const context = Context.current();
      const done: Record<number, DeliveryResult> = {
        ...((context.info.heartbeatDetails as Record<number, DeliveryResult> | undefined) ?? {}),
      };
      const lastAttempt = context.info.attempt >= input.maxAttempts;
      let transient: TransientDeliveryError | undefined;
      for (const [i, delivery] of input.deliveries.entries()) {
        if (done[i]) continue;
        try {
          done[i] = { ok: true, detail: await deliverOne(deps.slack, delivery) };
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          if (err instanceof TransientDeliveryError && !lastAttempt) {
            transient = err;
            continue;
          }
          log.warn('delivery failed', { incidentId: input.incidentId, error: message });
          done[i] = { ok: false, error: message };
        }
        context.heartbeat(done);
      }
      if (transient) {
        throw ApplicationFailure.create({
          message: transient.message,
          type: 'TransientDeliveryError',
          nextRetryDelay: transient.retryAfterMs,
          details: [done],
        });
      }
      return input.deliveries.map((_, i) => done[i] ?? { ok: false, error: 'not delivered' });
    },

    /** The incident this alert group had before (a group that fires again after its incident was resolved). */
    async findPreviousIncident(input: { workflowId: string; runId: string }): Promise<string | null> {
      return (await deps.history.previousIncidentId(input.workflowId, input.runId)) ?? null;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
