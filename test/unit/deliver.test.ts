import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import {
  notConfiguredNotifier,
  notConfiguredSink,
  outboxNotifier,
} from '../../src/activities/channels/notifier.ts';
import type {
  ChannelPoster,
  Notifier,
  PagerFollowUp,
  PersonChannel,
  PersonMessage,
} from '../../src/activities/channels/notifier.ts';
import type { Outbox } from '../../src/activities/channels/outbox.ts';
import type { DeliveryProgress } from '../../src/activities/deliver.ts';
import { createActivities } from '../../src/activities/index.ts';
import type { Delivery } from '../../src/activities/index.ts';
import type { DeliveryResult } from '../../src/domain/delivery.ts';

/** Recording transports; `fail(channel, target)` makes a send throw. */
function transports(fail: (channel: string, target: string) => Error | undefined = () => undefined) {
  const sent: string[] = [];
  const send = (channel: string, target: string): Promise<string> => {
    const err = fail(channel, target);
    if (err) return Promise.reject(err);
    sent.push(`${channel} ${target}`);
    return Promise.resolve(`${channel}-ref-${sent.length}`);
  };
  const notifier = (channel: PersonChannel): Notifier => ({
    channel,
    send: (_m: PersonMessage, target: string) => send(channel, target),
  });
  const posts: ChannelPoster = {
    post: async ({ channel }) => ({ channel, ts: await send('post', channel) }),
    createChannel: async (name) => {
      await send('create', name);
      return { channel: 'C0ROOM', name, created: true };
    },
    invite: async (channel, users) => void (await send('invite', `${channel} ${users.join(',')}`)),
    archive: async (channel) => void (await send('archive', channel)),
  };
  const pager: PagerFollowUp = { send: (action, _role, key) => send(`pager-${action}`, key) };
  const notifiers = {
    pager: notifier('pager'),
    sms: notifier('sms'),
    phone: notifier('phone'),
    slack: notifier('slack'),
    email: notifier('email'),
  };
  return { sent, notifiers, posts, pager };
}

function activitiesWith(
  t: ReturnType<typeof transports>,
  overrides: Partial<Record<PersonChannel, Notifier>> = {},
) {
  return createActivities({
    channels: {
      notifiers: { ...t.notifiers, ...overrides },
      posts: t.posts,
      pager: t.pager,
      events: notConfiguredSink('none'),
      outbox: new Set(Object.keys(overrides) as PersonChannel[]),
    },
    history: { previousIncidentId: () => Promise.resolve(undefined) },
  });
}

const run = (
  acts: ReturnType<typeof createActivities>,
  deliveries: Delivery[],
  env = new MockActivityEnvironment(),
): Promise<DeliveryResult[]> =>
  env.run((input: Parameters<typeof acts.deliver>[0]) => acts.deliver(input), {
    incidentId: 'INC-0000beef',
    deliveries,
    maxAttempts: 8,
  });

const posts: Delivery[] = ['#a', '#b', '#c'].map((channel) => ({
  kind: 'post',
  channel,
  text: 'x',
  actions: true,
}));

const page = (channels: Extract<Delivery, { kind: 'notify' }>['channels']): Delivery => ({
  kind: 'notify',
  severity: 'P1',
  role: 'on-call-engineer',
  contacts: {
    handle: 'alice',
    name: 'Alice',
    phone: '+15550100001',
    email: 'alice@pno.example',
    slack: 'U0ALICE',
  },
  channels,
  fallback: { pager: 'sms', sms: 'phone', phone: 'sms', slack: 'email', email: 'slack' },
  subject: '[P1] INC-0000beef HighErrorRate — new incident',
  text: 'P1 INC-0000beef HighErrorRate — new incident',
});

describe('deliver activity', () => {
  it('a permanent failure is reported for its message and does not hold back the others', async () => {
    const t = transports((c, target) =>
      target === '#b'
        ? DeliveryError.refused('slack', 'Slack refused the message: channel_not_found')
        : undefined,
    );
    const results = await run(activitiesWith(t), posts);
    expect(t.sent).toEqual(['post #a', 'post #c']);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({
      ok: false,
      receipts: [{ channel: 'slack', target: '#b', reason: 'refused' }],
    });
  });

  it('a transient failure retries the activity, which then resends only what did not go out', async () => {
    const t = transports((c, target) =>
      target === '#b' ? DeliveryError.transient('slack', 'Slack answered HTTP 503') : undefined,
    );
    const acts = activitiesWith(t);
    const first = new MockActivityEnvironment({ attempt: 1 });
    let progress: DeliveryProgress | undefined;
    first.on('heartbeat', (details: DeliveryProgress) => {
      progress = details;
    });
    await expect(run(acts, posts, first)).rejects.toThrow(/HTTP 503/);
    expect(t.sent).toEqual(['post #a', 'post #c']);
    // The retry, on its last attempt, with the heartbeated progress: only #b is tried again, and reported.
    const results = await run(
      acts,
      posts,
      new MockActivityEnvironment({ attempt: 8, heartbeatDetails: progress }),
    );
    expect(t.sent).toEqual(['post #a', 'post #c']);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({
      receipts: [{ target: '#b', reason: 'transient', detail: 'Slack answered HTTP 503' }],
    });
  });

  it('pages on every channel of the notification, each with its receipt', async () => {
    const t = transports();
    const [result] = await run(activitiesWith(t), [page(['pager', 'sms', 'phone'])]);
    expect(t.sent).toEqual(['pager INC-0000beef:on-call-engineer', 'sms +15550100001', 'phone +15550100001']);
    expect(result?.ok).toBe(true);
    expect(result?.receipts?.map((r) => [r.channel, r.target, r.ok])).toEqual([
      ['pager', 'INC-0000beef:on-call-engineer', true],
      ['sms', '+15550100001', true],
      ['phone', '+15550100001', true],
    ]);
  });

  it('a channel refused for good falls back to the policy’s next channel, once', async () => {
    // PagerDuty answers 400: the page goes by SMS instead (the fallback of pager), and SMS is not sent twice.
    const t = transports((c) =>
      c === 'pager' ? DeliveryError.refused('pagerduty', 'PagerDuty refused the event (400)') : undefined,
    );
    const [result] = await run(activitiesWith(t), [page(['pager', 'phone'])]);
    expect(t.sent).toEqual(['phone +15550100001', 'sms +15550100001']);
    expect(result?.receipts?.map((r) => `${r.channel}:${r.ok ? 'ok' : r.reason}`)).toEqual([
      'pager:refused',
      'phone:ok',
      'sms:ok',
    ]);
  });

  it('a channel without a transport is never delivered: not_configured, and the fallback is tried', async () => {
    const t = transports();
    const acts = createActivities({
      channels: {
        notifiers: { ...t.notifiers, email: notConfiguredNotifier('email', 'set SMTP_URL') },
        posts: t.posts,
        pager: t.pager,
        events: notConfiguredSink('none'),
        outbox: new Set(),
      },
      history: { previousIncidentId: () => Promise.resolve(undefined) },
    });
    const [result] = await run(acts, [page(['email'])]);
    expect(result?.receipts).toEqual([
      expect.objectContaining({
        channel: 'email',
        ok: false,
        reason: 'not_configured',
        detail: 'set SMTP_URL',
      }),
      expect.objectContaining({ channel: 'slack', target: 'U0ALICE', ok: true }),
    ]);
    expect(t.sent).toEqual(['slack U0ALICE']);
  });

  it('a person with no address on a channel is a failure with reason no_address, then the fallback', async () => {
    const t = transports();
    const noPhone: Delivery = {
      ...(page(['sms']) as Extract<Delivery, { kind: 'notify' }>),
      contacts: { handle: 'bob', name: 'Bob', email: 'bob@pno.example' },
    };
    const [result] = await run(activitiesWith(t), [noPhone]);
    expect(result?.ok).toBe(false);
    expect(result?.receipts?.map((r) => `${r.channel}:${r.reason ?? 'ok'}`)).toEqual([
      'sms:no_address',
      'phone:no_address',
    ]);
  });

  it('a retry of a page resends only the channels that did not go out', async () => {
    let smsDown = true;
    const t = transports((c) =>
      c === 'sms' && smsDown ? DeliveryError.transient('twilio', 'Twilio answered HTTP 503') : undefined,
    );
    const acts = activitiesWith(t);
    const first = new MockActivityEnvironment({ attempt: 1 });
    let progress: DeliveryProgress | undefined;
    first.on('heartbeat', (details: DeliveryProgress) => {
      progress = details;
    });
    await expect(run(acts, [page(['pager', 'sms', 'phone'])], first)).rejects.toThrow(/503/);
    expect(t.sent).toEqual(['pager INC-0000beef:on-call-engineer']);
    smsDown = false;
    const [result] = await run(
      acts,
      [page(['pager', 'sms', 'phone'])],
      new MockActivityEnvironment({ attempt: 2, heartbeatDetails: progress }),
    );
    expect(t.sent).toEqual(['pager INC-0000beef:on-call-engineer', 'sms +15550100001', 'phone +15550100001']);
    expect(result?.receipts).toHaveLength(3);
  });

  it('the laptop outbox takes what has no provider, and the receipt says so', async () => {
    const t = transports();
    const written: string[] = [];
    const outbox = {
      append: (e: { channel: string; target: string }) =>
        Promise.resolve(written.push(`${e.channel} ${e.target}`)),
    } as unknown as Outbox;
    const [result] = await run(activitiesWith(t, { pager: outboxNotifier('pager', outbox) }), [
      page(['pager']),
    ]);
    expect(written).toEqual(['pager INC-0000beef:on-call-engineer']);
    expect(result?.receipts).toEqual([expect.objectContaining({ channel: 'pager', ok: true, outbox: true })]);
  });

  it('PagerDuty follow-ups go to each paged role’s alert; a room created in a step is used by the next deliveries', async () => {
    const t = transports();
    const results = await run(activitiesWith(t), [
      { kind: 'room', action: 'create', name: 'inc-0000beef-higherrorrate' },
      { kind: 'room', action: 'invite', channel: 'inc-0000beef-higherrorrate', slackUsers: ['U0ALICE'] },
      { kind: 'post', channel: 'inc-0000beef-higherrorrate', text: 'report', actions: true },
      {
        kind: 'pager',
        action: 'acknowledge',
        dedupKeys: [{ role: 'on-call-engineer', key: 'INC-0000beef:on-call-engineer' }],
      },
    ]);
    expect(t.sent).toEqual([
      'create inc-0000beef-higherrorrate',
      'invite C0ROOM U0ALICE',
      'post C0ROOM',
      'pager-acknowledge INC-0000beef:on-call-engineer',
    ]);
    expect(results[0]).toMatchObject({ ok: true, roomId: 'C0ROOM' });
  });
});
