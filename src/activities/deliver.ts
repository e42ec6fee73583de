import type { Contacts, Delivery, DeliveryResult, Receipt } from '../domain/delivery.ts';
import { normalisePhone } from '../domain/people.ts';
import type { Person } from '../domain/policy.ts';
import type { Channel } from '../domain/severity.ts';
import { DeliveryError } from './channels/errors.ts';
import type {
  ChannelPoster,
  EventSink,
  Notifier,
  PagerFollowUp,
  PersonChannel,
  PersonMessage,
} from './channels/notifier.ts';
import { addressOf } from './channels/notifier.ts';

/**
 * Sends the deliveries of one incident step through the channels, one
 * {@link Receipt} per channel tried. The retry table lives in each transport
 * (it throws a retryable DeliveryError only for what may succeed later); here:
 * - a retryable failure is retried with the activity (until its last attempt),
 *   and only what has not gone out is tried again (progress is heartbeated);
 * - a failure that is not retried (refused, not configured, no address, or the
 *   last attempt) is recorded with the provider's error, and the channel's
 *   fallback from the policy is tried once for that person;
 * - nothing is recorded as delivered that the provider (or the laptop's
 *   outbox) did not take.
 *
 * A person is named by handle: their e-mail address and phone number are
 * looked up here, in the worker's policy, when the message is sent, and
 * never go back to the workflow (a receipt names the person by handle, and
 * a provider's error that quotes an address has it replaced). A handle the
 * worker's policy does not know fails every channel that needs an address
 * (`unknown_person`), a person without an address on a channel fails that
 * channel (`no_address`), each recorded as `notification_failed`.
 * Deliveries scheduled before this carried the addresses themselves: they
 * are sent to those.
 */

export interface DeliveryChannels {
  notifiers: Readonly<Record<PersonChannel, Notifier>>;
  posts: ChannelPoster;
  pager: PagerFollowUp;
  events: EventSink;
  /** Channels that write to the local outbox instead of a provider (receipts say so). */
  outbox: ReadonlySet<Channel | 'room'>;
}

/** What a retry resumes from: finished deliveries, and the receipts of one still in progress. */
export interface DeliveryProgress {
  done: Record<number, DeliveryResult>;
  partial: Record<number, Receipt[]>;
  /** Rooms created in this step: name → channel id, for the invites and posts that follow. */
  rooms: Record<string, string>;
}

/** A retryable failure that stopped one delivery for this attempt. */
export class RetryLater extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs: number | undefined) {
    super(message);
    this.name = 'RetryLater';
    this.retryAfterMs = retryAfterMs;
  }
}

const PERSON_CHANNELS: readonly Channel[] = ['pager', 'sms', 'phone', 'slack', 'email'];

function isPersonChannel(c: Channel): c is PersonChannel {
  return PERSON_CHANNELS.includes(c);
}

function failureOf(err: unknown): {
  reason: string;
  detail: string;
  retryable: boolean;
  retryAfterMs?: number;
} {
  if (err instanceof DeliveryError) {
    return {
      reason: err.reason,
      detail: err.message,
      retryable: err.retryable,
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    };
  }
  // Anything else is a bug or an unexpected answer: not retried blindly, reported with its message.
  return { reason: 'error', detail: err instanceof Error ? err.message : String(err), retryable: false };
}

/** Contacts with the addresses to send to, or why the person cannot be reached. */
type Reachable = { contacts: Contacts } | { unknown: string };

/** Every way the text may quote the person's addresses, longest first, with what replaces each. */
function redactions(c: Contacts): [RegExp, string][] {
  const out: [string, string][] = [];
  if (c.phone) {
    const normalised = normalisePhone(c.phone);
    for (const form of new Set([c.phone, normalised, normalised.replace(/^\+/, '')]))
      if (form.replace(/\D/g, '').length >= 5) out.push([form, `${c.handle}’s phone`]);
  }
  if (c.email) out.push([c.email, `${c.handle}’s e-mail`]);
  return out
    .sort((a, b) => b[0].length - a[0].length)
    .map(([text, by]) => [new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), by]);
}

export class Deliverer {
  private readonly channels: DeliveryChannels;
  private readonly people: (handle: string) => Person | undefined;
  private readonly progress: DeliveryProgress;
  private readonly lastAttempt: boolean;
  private readonly onProgress: (progress: DeliveryProgress) => void;
  private readonly now: () => Date;

  constructor(options: {
    channels: DeliveryChannels;
    /** A person of the worker's policy by handle (own properties only), with their contacts. */
    people: (handle: string) => Person | undefined;
    progress?: DeliveryProgress;
    lastAttempt: boolean;
    onProgress: (progress: DeliveryProgress) => void;
    now?: () => Date;
  }) {
    this.channels = options.channels;
    this.people = options.people;
    this.progress = options.progress ?? { done: {}, partial: {}, rooms: {} };
    this.lastAttempt = options.lastAttempt;
    this.onProgress = options.onProgress;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Delivers everything it can; throws {@link RetryLater} (after trying every
   * delivery) when something may succeed on the activity's next attempt.
   */
  async deliverAll(incidentId: string, deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    let retry: RetryLater | undefined;
    for (const [i, delivery] of deliveries.entries()) {
      if (this.progress.done[i]) continue;
      try {
        this.progress.done[i] = await this.deliverOne(incidentId, i, delivery);
        delete this.progress.partial[i];
      } catch (err) {
        if (!(err instanceof RetryLater)) throw err;
        retry ??= err;
      }
      this.onProgress(this.progress);
    }
    if (retry) throw retry;
    return deliveries.map((_, i) => this.progress.done[i] ?? { ok: false, error: 'not delivered' });
  }

  private receipt(
    channel: Channel | 'room',
    target: string,
    ok: boolean,
    detail: string,
    reason?: string,
  ): Receipt {
    return {
      channel,
      target,
      ok,
      detail,
      ...(reason ? { reason } : {}),
      ...(this.channels.outbox.has(channel) ? { outbox: true } : {}),
    };
  }

  /**
   * Runs one send; a retryable failure becomes RetryLater unless this is the last attempt. `redact` cleans
   * what the provider answered (a person's address) before it is reported, retried or logged.
   */
  private async attempt(
    channel: Channel | 'room',
    target: string,
    send: () => Promise<string>,
    redact: (text: string) => string = (text) => text,
  ): Promise<Receipt> {
    try {
      return this.receipt(channel, target, true, redact(await send()));
    } catch (err) {
      const failure = failureOf(err);
      const detail = redact(failure.detail);
      if (failure.retryable && !this.lastAttempt) throw new RetryLater(detail, failure.retryAfterMs);
      return this.receipt(channel, target, false, detail, failure.retryable ? 'transient' : failure.reason);
    }
  }

  /**
   * The person's addresses: those the delivery carries (scheduled before addresses were looked up here),
   * else the worker's policy's, by handle.
   */
  private reach(contacts: Contacts): Reachable {
    if (contacts.email !== undefined || contacts.phone !== undefined) return { contacts };
    const person = this.people(contacts.handle);
    if (!person) return { unknown: `${contacts.handle} is not a person in the worker’s policy` };
    const slack = person.slack ?? contacts.slack;
    return {
      contacts: {
        ...contacts,
        ...(slack ? { slack } : {}),
        ...(person.email ? { email: person.email } : {}),
        ...(person.phone ? { phone: person.phone } : {}),
      },
    };
  }

  private roomId(channel: string): string {
    return this.progress.rooms[channel] ?? channel;
  }

  private async deliverOne(incidentId: string, i: number, delivery: Delivery): Promise<DeliveryResult> {
    switch (delivery.kind) {
      case 'post': {
        let ts: string | undefined;
        const channel = this.roomId(delivery.channel);
        const r = await this.attempt('slack', delivery.channel, async () => {
          const posted = await this.channels.posts.post({
            channel,
            text: delivery.text,
            incidentId,
            actions: delivery.actions,
            ...(delivery.threadTs ? { threadTs: delivery.threadTs } : {}),
          });
          ts = posted.ts;
          return `ts=${posted.ts}${delivery.threadTs ? ' in thread' : ''}`;
        });
        return r.ok
          ? { ok: true, detail: r.detail, receipts: [r], ...(ts ? { ts } : {}) }
          : { ok: false, error: r.detail, receipts: [r] };
      }
      case 'notify':
        return this.notify(incidentId, i, delivery);
      case 'pager': {
        const receipts = this.progress.partial[i] ?? [];
        this.progress.partial[i] = receipts;
        for (const { role, key } of delivery.dedupKeys) {
          if (receipts.some((r) => r.target === key)) continue;
          receipts.push(
            await this.attempt('pager', key, () => this.channels.pager.send(delivery.action, role, key)),
          );
          this.onProgress(this.progress);
        }
        return summarise(receipts);
      }
      case 'event': {
        const r = await this.attempt('webhook', delivery.type, () =>
          this.channels.events.send(delivery.type, delivery.incident, this.now().toISOString()),
        );
        return summarise([r]);
      }
      case 'room': {
        if (delivery.action === 'create') {
          let id: string | undefined;
          const r = await this.attempt('room', `#${delivery.name}`, async () => {
            const created = await this.channels.posts.createChannel(delivery.name);
            id = created.channel;
            this.progress.rooms[delivery.name] = created.channel;
            return `${created.created ? 'created' : 'exists'} ${created.channel}`;
          });
          return r.ok && id ? { ok: true, detail: r.detail, receipts: [r], roomId: id } : summarise([r]);
        }
        const channel = this.roomId(delivery.channel);
        const r =
          delivery.action === 'invite'
            ? await this.attempt('room', delivery.channel, async () => {
                await this.channels.posts.invite(channel, delivery.slackUsers);
                return `invited ${delivery.slackUsers.join(', ')}`;
              })
            : await this.attempt('room', delivery.channel, async () => {
                await this.channels.posts.archive(channel);
                return 'archived';
              });
        return summarise([r]);
      }
    }
  }

  /** A person on each of the notification's channels, with fallbacks for what fails for good. */
  private async notify(
    incidentId: string,
    i: number,
    delivery: Extract<Delivery, { kind: 'notify' }>,
  ): Promise<DeliveryResult> {
    const receipts = this.progress.partial[i] ?? [];
    this.progress.partial[i] = receipts;
    const reachable = this.reach(delivery.contacts);
    const contacts = 'contacts' in reachable ? reachable.contacts : delivery.contacts;
    const message: PersonMessage = {
      incidentId,
      severity: delivery.severity,
      role: delivery.role,
      contacts,
      subject: delivery.subject,
      text: delivery.text,
    };
    const patterns = redactions(contacts);
    const redact = (text: string) =>
      patterns.reduce((t, [pattern, by]) => t.replace(pattern, () => by), text);
    const queue: Channel[] = [...delivery.channels];
    const tried = new Set<Channel>();
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const channel = next;
      if (tried.has(channel)) continue;
      tried.add(channel);
      let receipt = receipts.find((r) => r.channel === channel);
      if (!receipt) {
        const handle = delivery.contacts.handle;
        const address = isPersonChannel(channel) ? addressOf(channel, message) : undefined;
        if (!isPersonChannel(channel)) {
          receipt = this.receipt(channel, handle, false, `${channel} does not reach a person`, 'refused');
        } else if ('unknown' in reachable && channel !== 'pager') {
          receipt = this.receipt(channel, handle, false, reachable.unknown, 'unknown_person');
        } else if (address === undefined) {
          receipt = this.receipt(
            channel,
            handle,
            false,
            `no ${channel} address for ${handle} in the worker’s policy`,
            'no_address',
          );
        } else {
          const notifier = this.channels.notifiers[channel];
          receipt = await this.attempt(
            channel,
            shownTarget(channel, message, address),
            () => notifier.send(message, address),
            redact,
          );
        }
        receipts.push(receipt);
        this.onProgress(this.progress);
      }
      const fallback = delivery.fallback[channel];
      if (!receipt.ok && fallback && !tried.has(fallback) && !queue.includes(fallback)) queue.push(fallback);
    }
    return summarise(receipts);
  }
}

/**
 * Who a receipt says a message went to: the PagerDuty dedup key, the Slack user, and for SMS, phone and
 * e-mail the person's handle (the role's mailing list beside it), never their number or address.
 */
function shownTarget(channel: PersonChannel, message: PersonMessage, address: string): string {
  const c = message.contacts;
  switch (channel) {
    case 'pager':
    case 'slack':
      return address;
    case 'sms':
    case 'phone':
      return c.handle;
    case 'email':
      return [c.email ? c.handle : undefined, c.list].filter((t): t is string => Boolean(t)).join(' + ');
  }
}

function summarise(receipts: Receipt[]): DeliveryResult {
  const delivered = receipts.filter((r) => r.ok);
  const line = (r: Receipt) =>
    `${r.channel}${r.outbox ? ' (outbox)' : ''} ${r.ok ? r.detail : `failed: ${r.detail}`}`;
  if (delivered.length > 0) return { ok: true, detail: receipts.map(line).join('; '), receipts };
  return { ok: false, error: receipts.map(line).join('; ') || 'nothing to deliver', receipts };
}
