import type { Contacts, IncidentEventType, IncidentEventSummary } from '../../domain/delivery.ts';
import { pagerDedupKey } from '../../domain/delivery.ts';
import type { Role, Severity } from '../../domain/severity.ts';
import type { EmailClient } from './email.ts';
import { DeliveryError } from './errors.ts';
import type { Outbox } from './outbox.ts';
import type { PagerClient } from './pagerduty.ts';
import { pagerSeverity } from './pagerduty.ts';
import { firstLine, slackMessage, toEmailHtml, toPlainText } from './render.ts';
import type { SlackChannel, SlackMessage, SlackPosted } from './slack.ts';
import type { PhoneClient } from './twilio.ts';
import type { WebhookClient } from './webhook.ts';

/**
 * Every channel behind one interface per kind of message. A {@link Notifier}
 * reaches a person on one channel (pager, SMS, phone, Slack DM, e-mail); the
 * {@link ChannelPoster} posts to Slack channels and keeps the incident's own
 * channel; {@link PagerFollowUp} acknowledges and resolves PagerDuty alerts;
 * {@link EventSink} is the generic webhook. Each has three kinds of
 * implementation, chosen once by the worker per channel: the provider's, the
 * local outbox's (a laptop with no provider), and "not configured", which
 * fails every message with `not_configured` so nothing is ever recorded as
 * sent that was not.
 */

export type PersonChannel = 'pager' | 'sms' | 'phone' | 'slack' | 'email';

/** One message to one person. */
export interface PersonMessage {
  incidentId: string;
  severity: Severity;
  role: Role | null;
  contacts: Contacts;
  subject: string;
  /** Markdown-ish text from the domain; each channel renders it. */
  text: string;
}

export interface Notifier {
  readonly channel: PersonChannel;
  /** Sends to `target` (from {@link addressOf}); answers the provider's reference. Throws DeliveryError. */
  send(message: PersonMessage, target: string): Promise<string>;
}

/** Where a channel reaches a person, or undefined when the policy has no address for them there. */
export function addressOf(channel: PersonChannel, message: PersonMessage): string | undefined {
  const c = message.contacts;
  switch (channel) {
    case 'pager':
      return pagerDedupKey(message.incidentId, message.role ?? (c.handle as Role));
    case 'sms':
    case 'phone':
      return c.phone;
    case 'slack':
      return c.slack;
    case 'email': {
      const to = [c.email, c.list].filter((a): a is string => Boolean(a));
      return to.length > 0 ? to.join(', ') : undefined;
    }
  }
}

/** PagerDuty Events v2: one alert per paged role (`dedup_key` = `<incident id>:<role>`). */
export function pagerNotifier(pagerFor: (role: Role | null) => PagerClient): Notifier {
  return {
    channel: 'pager',
    async send(message, target) {
      const accepted = await pagerFor(message.role).trigger({
        dedupKey: target,
        summary: firstLine(message.text),
        source: message.incidentId,
        severity: pagerSeverity(message.severity),
        ...(message.role ? { component: message.role } : {}),
        customDetails: {
          incident: message.incidentId,
          paged: message.contacts.name,
          text: toPlainText(message.text),
        },
      });
      return `pagerduty dedup_key=${accepted.dedupKey}`;
    },
  };
}

export function smsNotifier(phone: PhoneClient): Notifier {
  return {
    channel: 'sms',
    async send(message, target) {
      const sent = await phone.sendSms({ to: target, body: toPlainText(message.text) });
      return `twilio message ${sent.sid}`;
    },
  };
}

export function phoneNotifier(phone: PhoneClient): Notifier {
  return {
    channel: 'phone',
    async send(message, target) {
      const call = await phone.call({ to: target, say: `${message.subject}. ${toPlainText(message.text)}` });
      return `twilio call ${call.sid}`;
    },
  };
}

export function slackNotifier(slack: Pick<ChannelPoster, 'post'>): Notifier {
  return {
    channel: 'slack',
    async send(message, target) {
      const posted = await slack.post({
        channel: target,
        text: message.text,
        incidentId: message.incidentId,
        actions: true,
      });
      return `slack dm ts=${posted.ts}`;
    },
  };
}

export function emailNotifier(email: EmailClient): Notifier {
  return {
    channel: 'email',
    async send(message, target) {
      const sent = await email.send({
        to: target.split(', '),
        subject: message.subject,
        text: toPlainText(message.text),
        html: toEmailHtml(message.text),
        headers: { 'X-Incident-Id': message.incidentId },
      });
      return `smtp ${sent.messageId}`;
    },
  };
}

/** A channel with no provider on a laptop: the message is written to the local outbox. */
export function outboxNotifier(channel: PersonChannel, outbox: Outbox): Notifier {
  return {
    channel,
    async send(message, target) {
      await outbox.append({
        channel,
        target,
        subject: message.subject,
        text: message.text,
        incidentId: message.incidentId,
      });
      return 'outbox';
    },
  };
}

/** A channel with no provider in production: every message fails, loudly, and the fallback is tried. */
export function notConfiguredNotifier(channel: PersonChannel, why: string): Notifier {
  return {
    channel,
    send() {
      return Promise.reject(DeliveryError.notConfigured(providerOf(channel), why));
    },
  };
}

function providerOf(channel: PersonChannel | 'webhook') {
  return (
    {
      pager: 'pagerduty',
      sms: 'twilio',
      phone: 'twilio',
      slack: 'slack',
      email: 'email',
      webhook: 'webhook',
    } as const
  )[channel];
}

/** Slack channel posts and the incident's own channel. */
export interface ChannelPoster {
  post(message: {
    channel: string;
    text: string;
    threadTs?: string;
    incidentId: string;
    actions: boolean;
  }): Promise<SlackPosted>;
  createChannel(name: string): Promise<SlackChannel>;
  invite(channel: string, users: string[]): Promise<void>;
  archive(channel: string): Promise<void>;
}

/** What {@link slackPoster} needs from the Slack Web API (SlackApi). */
export interface SlackWebApi {
  postMessage(message: SlackMessage): Promise<SlackPosted>;
  createChannel(input: { name: string }): Promise<SlackChannel>;
  invite(input: { channel: string; users: string[] }): Promise<unknown>;
  archive(channel: string): Promise<unknown>;
}

export function slackPoster(slack: SlackWebApi): ChannelPoster {
  return {
    post: ({ channel, text, threadTs, incidentId, actions }) =>
      slack.postMessage({
        channel,
        ...slackMessage(text, incidentId, actions),
        ...(threadTs ? { threadTs } : {}),
      }),
    createChannel: (name) => slack.createChannel({ name }),
    invite: async (channel, users) => {
      await slack.invite({ channel, users });
    },
    archive: async (channel) => {
      await slack.archive(channel);
    },
  };
}

/**
 * Incoming-webhook mode: every post goes to the webhook's one channel (no threads: a webhook returns no ts),
 * and what needs the Web API (direct messages, incident channels) is not configured.
 */
export function webhookPoster(webhook: {
  post(message: SlackMessage & { channel?: string }): Promise<void>;
}): ChannelPoster {
  const noApi = () =>
    Promise.reject(
      DeliveryError.notConfigured(
        'slack',
        'Slack incoming-webhook mode has no Web API (set SLACK_BOT_TOKEN)',
      ),
    );
  return {
    async post({ channel, text, incidentId }) {
      // Buttons need interactivity, which a webhook-only app has not: the text says how to act instead.
      await webhook.post({ channel, ...slackMessage(text, incidentId, false) });
      return { channel, ts: '' };
    },
    createChannel: noApi,
    invite: noApi,
    archive: noApi,
  };
}

export function outboxPoster(outbox: Outbox): ChannelPoster {
  let ts = 0;
  return {
    async post({ channel, text, threadTs, incidentId }) {
      await outbox.append({
        channel: 'slack',
        target: threadTs ? `${channel} (thread)` : channel,
        text,
        incidentId,
      });
      ts += 1;
      return { channel, ts: `outbox.${Date.now()}.${ts}` };
    },
    async createChannel(name) {
      await outbox.append({
        channel: 'slack',
        target: `#${name}`,
        text: `channel #${name} created`,
        incidentId: name,
      });
      return { channel: `#${name}`, name, created: true };
    },
    async invite(channel, users) {
      await outbox.append({
        channel: 'slack',
        target: channel,
        text: `invited ${users.join(', ')}`,
        incidentId: channel,
      });
    },
    async archive(channel) {
      await outbox.append({
        channel: 'slack',
        target: channel,
        text: 'channel archived',
        incidentId: channel,
      });
    },
  };
}

export function notConfiguredPoster(why: string): ChannelPoster {
  const fail = () => Promise.reject(DeliveryError.notConfigured('slack', why));
  return { post: fail, createChannel: fail, invite: fail, archive: fail };
}

/** PagerDuty's acknowledge and resolve of one paged role's alert. */
export interface PagerFollowUp {
  send(action: 'acknowledge' | 'resolve', role: Role, dedupKey: string): Promise<string>;
}

export function pagerFollowUp(pagerFor: (role: Role | null) => PagerClient): PagerFollowUp {
  return {
    async send(action, role, dedupKey) {
      const pager = pagerFor(role);
      const accepted =
        action === 'acknowledge' ? await pager.acknowledge(dedupKey) : await pager.resolve(dedupKey);
      return `pagerduty ${action} dedup_key=${accepted.dedupKey}`;
    },
  };
}

export function outboxPagerFollowUp(outbox: Outbox): PagerFollowUp {
  return {
    async send(action, _role, dedupKey) {
      await outbox.append({
        channel: 'pager',
        target: dedupKey,
        text: action,
        incidentId: dedupKey.split(':')[0] ?? dedupKey,
      });
      return 'outbox';
    },
  };
}

export function notConfiguredPagerFollowUp(why: string): PagerFollowUp {
  return { send: () => Promise.reject(DeliveryError.notConfigured('pagerduty', why)) };
}

/** The generic webhook. */
export interface EventSink {
  send(type: IncidentEventType, incident: IncidentEventSummary, at: string): Promise<string>;
}

export function webhookSink(webhook: WebhookClient): EventSink {
  return {
    async send(type, incident, at) {
      const answer = await webhook.send({ type, incident, at });
      return `webhook HTTP ${answer.status}`;
    },
  };
}

export function outboxSink(outbox: Outbox): EventSink {
  return {
    async send(type, incident, at) {
      await outbox.append({
        channel: 'webhook',
        target: type,
        text: JSON.stringify({ type, incident, at }),
        incidentId: incident.id,
      });
      return 'outbox';
    },
  };
}

export function notConfiguredSink(why: string): EventSink {
  return { send: () => Promise.reject(DeliveryError.notConfigured(providerOf('webhook'), why)) };
}
