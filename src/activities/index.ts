import { ApplicationFailure, log } from '@temporalio/activity';
import type { Notification } from '../domain/escalation.ts';
import type { Person } from '../domain/policy.ts';
import type { IncidentHistory } from './incident-history.ts';
import { SlackError } from './slack.ts';
import type { SlackClient } from './slack.ts';

/** What the activities need from the outside world; the worker builds the real ones. */
export interface ActivityDeps {
  slack: SlackClient;
  history: IncidentHistory;
}

export interface PostToChannelInput {
  incidentId: string;
  /** The Slack channel name, from the incident's policy snapshot. */
  channel: string;
  text: string;
}

export interface NotifyPersonInput {
  incidentId: string;
  notification: Notification;
  /** The person's contacts, from the incident's policy snapshot. */
  person: Pick<Person, 'name' | 'slack' | 'email' | 'phone'> | undefined;
  text: string;
}

/** Turns a Slack failure into a Temporal retry decision. */
function asFailure(err: unknown): unknown {
  if (!(err instanceof SlackError)) return err;
  if (!err.retryable) return ApplicationFailure.nonRetryable(err.message, 'SlackPermanentError');
  return ApplicationFailure.create({
    message: err.message,
    type: 'SlackTransientError',
    nextRetryDelay: err.retryAfterMs,
  });
}

export function createActivities(deps: ActivityDeps) {
  return {
    /** Posts a message to a Slack channel; returns a short receipt for the timeline. */
    async postToChannel(input: PostToChannelInput): Promise<string> {
      try {
        const posted = await deps.slack.postMessage({ channel: input.channel, text: input.text });
        return `slack ${posted.channel} ts=${posted.ts}`;
      } catch (err) {
        log.warn('Slack post failed', {
          incidentId: input.incidentId,
          channel: input.channel,
          error: String(err),
        });
        throw asFailure(err);
      }
    },

    /** The incident this alert group had before (a group that fires again after its incident was resolved). */
    async findPreviousIncident(input: { workflowId: string; runId: string }): Promise<string | null> {
      return (await deps.history.previousIncidentId(input.workflowId, input.runId)) ?? null;
    },

    /**
     * Reaches a person on the channels of their escalation step. Slack is
     * delivered (a direct message to their Slack id); pager, SMS, phone and
     * email have no transport in this release and are recorded as such.
     */
    async notifyPerson(input: NotifyPersonInput): Promise<string> {
      const receipts: string[] = [];
      for (const channel of input.notification.channels) {
        if (channel === 'slack' && input.person?.slack) {
          try {
            const posted = await deps.slack.postMessage({ channel: input.person.slack, text: input.text });
            receipts.push(`slack dm ts=${posted.ts}`);
          } catch (err) {
            throw asFailure(err);
          }
        } else {
          receipts.push(`${channel} recorded`);
        }
      }
      return receipts.join(', ');
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
