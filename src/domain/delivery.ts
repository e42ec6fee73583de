import type { Notification } from './escalation.ts';
import type { IncidentState } from './incident.ts';
import type { Policy } from './policy.ts';
import type { Channel, Role, Severity } from './severity.ts';

/**
 * What the workflow hands the `deliver` activity, and what comes back. The
 * lifecycle decides (its outbox of {@link Outgoing} items); {@link deliveriesFor}
 * turns them into self-contained deliveries with everything the transports need
 * from the incident's policy snapshot (channel names, routing, who is notified);
 * the activity sends and reports, one {@link Receipt} per channel tried. People
 * are named by handle: the activity looks up their e-mail address and phone
 * number in the worker's policy when it sends, so neither is ever workflow data.
 */

/** The steps of an incident a generic webhook hears of. */
export type IncidentEventType =
  | 'incident.opened'
  | 'incident.acknowledged'
  | 'incident.updated'
  | 'incident.escalated'
  | 'incident.mitigated'
  | 'incident.resolved';

/** A side effect the lifecycle decided; the workflow carries it out. */
export type Outgoing =
  | {
      kind: 'post';
      /** A key of `channels.slack.channels`, or `room` for the incident's own channel. */
      channelKey: string;
      text: string;
      purpose: string;
    }
  | {
      kind: 'notify';
      notification: Notification;
      text: string;
      /** Channels not used because the service is in a maintenance window. */
      suppressed?: Channel[];
    }
  | { kind: 'pager'; action: 'acknowledge' | 'resolve'; roles: Role[] }
  | { kind: 'event'; type: IncidentEventType }
  | { kind: 'room'; action: 'create' | 'archive' }
  | { kind: 'room'; action: 'invite'; slackUsers: string[] };

/** The incident as a generic webhook event carries it: no people's contacts, no alerts. */
export interface IncidentEventSummary {
  id: string;
  title: string;
  service: string;
  severity: Severity;
  status: IncidentState['status'];
  escalationLevel: number;
  createdAt: string;
  acknowledgedBy?: string;
  resolvedAt?: string;
  link: string;
}

/**
 * Who a notification is for: the person's handle, name and Slack user from the incident's policy, and the
 * role's mailing list. Their e-mail address and phone number are looked up by handle by the `deliver`
 * activity; `email` and `phone` are only in deliveries scheduled before that (which are still sent to them).
 */
export interface Contacts {
  handle: string;
  name: string;
  slack?: string;
  /** Only in deliveries scheduled before addresses were looked up by the activity; never set now. */
  email?: string;
  /** Only in deliveries scheduled before addresses were looked up by the activity; never set now. */
  phone?: string;
  /** Mailing list of the notified role (`channels.email.lists`). */
  list?: string;
}

export type Delivery =
  | {
      kind: 'post';
      /** Slack channel name (`#pno-incidents`) or id. */
      channel: string;
      text: string;
      /** The incident's thread in that channel, when its first report is known. */
      threadTs?: string;
      /** Buttons to act on the incident (Acknowledge, Post update, Resolve) under the message. */
      actions: boolean;
    }
  | {
      kind: 'notify';
      severity: Severity;
      role: Role | null;
      contacts: Contacts;
      /** Channels to use, in order; each one that fails for good is replaced by its fallback once. */
      channels: Channel[];
      fallback: Partial<Record<Channel, Channel>>;
      subject: string;
      text: string;
    }
  | { kind: 'pager'; action: 'acknowledge' | 'resolve'; dedupKeys: { role: Role; key: string }[] }
  | { kind: 'event'; type: IncidentEventType; incident: IncidentEventSummary }
  | { kind: 'room'; action: 'create'; name: string }
  | { kind: 'room'; action: 'invite'; channel: string; slackUsers: string[] }
  | { kind: 'room'; action: 'archive'; channel: string };

/** One channel's outcome for one delivery. */
export interface Receipt {
  channel: Channel | 'room';
  /**
   * Who or what it went to: a Slack channel or user, a dedup key, a person's handle for SMS, phone and
   * e-mail (never their number or address; a role's mailing list beside it).
   */
  target: string;
  ok: boolean;
  /** Provider reference (Slack ts, message id, SID, dedup key) or the provider's error. */
  detail: string;
  /** Why it failed: `not_configured`, `refused` or `transient` (retries exhausted). */
  reason?: string;
  /** The outbox took it instead of the provider (laptop mode). */
  outbox?: boolean;
}

/** What finally happened to one delivery (after the activity's retries). */
export type DeliveryResult =
  | {
      ok: true;
      detail: string;
      receipts?: Receipt[];
      /** Slack message ts of a post (a first report opens the incident's thread). */
      ts?: string;
      /** Channel id of a created room. */
      roomId?: string;
    }
  | { ok: false; error: string; receipts?: Receipt[] };

/** PagerDuty's dedup key for one paged role of an incident: each role is its own alert. */
export function pagerDedupKey(incidentId: string, role: Role): string {
  return `${incidentId}:${role}`;
}

/**
 * The incident's own Slack channel name, `inc-<id>-<slug of title>`: lower-case letters, digits and
 * hyphens, at most 80 characters (`INC-1A2B3C4D`, "High error rate!" → `inc-1a2b3c4d-high-error-rate`).
 */
export function roomName(state: Pick<IncidentState, 'id' | 'title'>): string {
  const slug = (s: string) =>
    s
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '');
  const id = slug(state.id).replace(/^inc-/, '');
  return `inc-${id}-${slug(state.title)}`.slice(0, 80).replace(/-+$/, '');
}

/** The subject line of an e-mail about the incident. */
export function subjectOf(state: Pick<IncidentState, 'id' | 'severity' | 'title'>, what: string): string {
  return `[${state.severity}] ${state.id} ${state.title} — ${what}`;
}

/**
 * Turns the lifecycle's outbox into deliveries, reading the policy snapshot and
 * the state for channel names, people, threads and the incident's room.
 */
export function deliveriesFor(
  policy: Policy,
  state: IncidentState,
  outgoing: readonly Outgoing[],
  link: string,
): Delivery[] {
  return outgoing.map((out): Delivery => {
    switch (out.kind) {
      case 'post': {
        const channel =
          out.channelKey === 'room'
            ? (state.slack?.room?.id ?? state.slack?.room?.name ?? roomName(state))
            : (policy.channels.slack.channels[out.channelKey] ?? out.channelKey);
        const threadTs = out.channelKey === 'room' ? undefined : state.slack?.threads[channel];
        return {
          kind: 'post',
          channel,
          text: out.text,
          ...(threadTs ? { threadTs } : {}),
          actions: state.status !== 'resolved',
        };
      }
      case 'notify': {
        const n = out.notification;
        const handle = n.person ?? '';
        const person = Object.hasOwn(policy.people, handle) ? policy.people[handle] : undefined;
        const list = n.role ? policy.channels.email?.lists?.[n.role] : undefined;
        // Never the person's e-mail or phone, even from a policy snapshot that has them (runs started
        // before snapshots were stripped): the activity looks them up when it sends.
        const contacts: Contacts = {
          handle,
          name: person?.name ?? handle,
          ...(person?.slack ? { slack: person.slack } : {}),
          ...(list ? { list } : {}),
        };
        const suppressed = new Set(out.suppressed ?? []);
        return {
          kind: 'notify',
          severity: state.severity,
          role: n.role,
          contacts,
          channels: n.channels.filter((c) => !suppressed.has(c)),
          fallback: policy.channels.fallback ?? {},
          subject: subjectOf(state, n.reason === 'initial' ? 'new incident' : `escalation level ${n.level}`),
          text: out.text,
        };
      }
      case 'pager':
        return {
          kind: 'pager',
          action: out.action,
          dedupKeys: out.roles.map((role) => ({ role, key: pagerDedupKey(state.id, role) })),
        };
      case 'event':
        return { kind: 'event', type: out.type, incident: eventSummary(state, link) };
      case 'room': {
        const room = state.slack?.room;
        if (out.action === 'create') return { kind: 'room', action: 'create', name: roomName(state) };
        const channel = room?.id ?? roomName(state);
        return out.action === 'invite'
          ? { kind: 'room', action: 'invite', channel, slackUsers: out.slackUsers }
          : { kind: 'room', action: 'archive', channel };
      }
    }
  });
}

function eventSummary(state: IncidentState, link: string): IncidentEventSummary {
  return {
    id: state.id,
    title: state.title,
    service: state.service,
    severity: state.severity,
    status: state.status,
    escalationLevel: state.escalationLevel,
    createdAt: state.createdAt,
    ...(state.acknowledgedBy ? { acknowledgedBy: state.acknowledgedBy } : {}),
    ...(state.resolvedAt ? { resolvedAt: state.resolvedAt } : {}),
    link,
  };
}

/** One line for the timeline: what went where, and how it ended. */
function describeReceipt(r: Receipt): string {
  const via = r.outbox ? `${r.channel} (outbox)` : r.channel;
  return r.ok
    ? `${via} → ${r.target}: delivered (${r.detail})`
    : `${via} → ${r.target}: ${r.reason ?? 'failed'} (${r.detail})`;
}

/** What an outgoing item is, for the timeline ("initial report → #pno-incidents via slack"). */
function describeOutgoing(policy: Policy, out: Outgoing): string {
  switch (out.kind) {
    case 'post':
      return `${out.purpose} → ${out.channelKey === 'room' ? 'the incident channel' : (policy.channels.slack.channels[out.channelKey] ?? out.channelKey)} via slack`;
    case 'notify':
      return `notification → ${out.notification.person ?? 'nobody'} via ${out.notification.channels.join('+')}`;
    case 'pager':
      return `pager ${out.action} → ${out.roles.join(', ')}`;
    case 'event':
      return `webhook event ${out.type}`;
    case 'room':
      return `incident channel ${out.action}`;
  }
}

/** The timeline's record of one delivery: an entry per channel tried (older results: one entry). */
export function deliveryTimeline(
  policy: Policy,
  out: Outgoing,
  result: DeliveryResult,
): { kind: 'notified' | 'notification_failed'; message: string }[] {
  const what = describeOutgoing(policy, out);
  if (result.receipts && result.receipts.length > 0) {
    return result.receipts.map((r) => ({
      kind: r.ok ? 'notified' : 'notification_failed',
      message: `${what}: ${describeReceipt(r)}`,
    }));
  }
  return result.ok
    ? [{ kind: 'notified', message: `${what} (${result.detail})` }]
    : [{ kind: 'notification_failed', message: `${what} failed: ${result.error}` }];
}

/**
 * What later messages need from a delivery: the thread a first report opened in its channel, the id of the
 * incident channel just created.
 */
export function learnFromDelivery(
  state: IncidentState,
  out: Outgoing,
  delivery: Delivery | undefined,
  result: DeliveryResult,
): void {
  if (!result.ok) return;
  if (
    delivery?.kind === 'post' &&
    out.kind === 'post' &&
    out.channelKey !== 'room' &&
    result.ts &&
    !delivery.threadTs
  ) {
    state.slack ??= { threads: {} };
    state.slack.threads[delivery.channel] ??= result.ts;
  }
  if (delivery?.kind === 'room' && delivery.action === 'create' && result.roomId) {
    state.slack ??= { threads: {} };
    state.slack.room = { ...state.slack.room, name: delivery.name, id: result.roomId };
  }
}
