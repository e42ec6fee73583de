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
import type { Policy } from '../../src/domain/policy.ts';
import { PolicySnapshots } from '../../src/policy-snapshots.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

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

/** The worker's loaded policy: the real one (alice +15550100001, alice@pno.example; bob, carol, …). */
const workerPolicy = loadDefaultPolicy();

function activitiesWith(
  t: ReturnType<typeof transports>,
  overrides: Partial<Record<PersonChannel, Notifier>> = {},
  policy: Policy = workerPolicy,
) {
  return createActivities({
    policies: new PolicySnapshots({ current: policy }),
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

/** A page as the workflow schedules it: the person by handle, no e-mail address or phone number. */
const page = (
  channels: Extract<Delivery, { kind: 'notify' }>['channels'],
  handle = 'alice',
): Extract<Delivery, { kind: 'notify' }> => ({
  kind: 'notify',
  severity: 'P1',
  role: 'on-call-engineer',
  contacts: { handle, name: handle, ...(handle === 'alice' ? { slack: 'U0ALICE' } : {}) },
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
    // The receipts (the activity's result: workflow history, the timeline) name alice, never her number.
    expect(result?.receipts?.map((r) => [r.channel, r.target, r.ok])).toEqual([
      ['pager', 'INC-0000beef:on-call-engineer', true],
      ['sms', 'alice', true],
      ['phone', 'alice', true],
    ]);
    expect(JSON.stringify(result)).not.toMatch(/5550100001|pno\.example/);
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
      policies: new PolicySnapshots({ current: workerPolicy }),
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
    const bobHasNoPhone = policyWith({ people: { bob: { phone: undefined } } });
    const [result] = await run(activitiesWith(t, {}, bobHasNoPhone), [page(['sms'], 'bob')]);
    expect(result?.ok).toBe(false);
    expect(result?.receipts?.map((r) => `${r.channel}:${r.reason ?? 'ok'}`)).toEqual([
      'sms:no_address',
      'phone:no_address',
    ]);
    expect(result?.receipts?.[0]?.detail).toBe('no sms address for bob in the worker’s policy');
  });

  it('addresses are the worker’s policy’s when the message is sent, looked up by handle', async () => {
    const t = transports();
    const moved = policyWith({ people: { alice: { phone: '+15550177777', email: 'alice@new.example' } } });
    const [result] = await run(activitiesWith(t, {}, moved), [page(['sms', 'email'])]);
    expect(t.sent).toEqual(['sms +15550177777', 'email alice@new.example']);
    expect(result?.receipts?.map((r) => [r.channel, r.target, r.ok])).toEqual([
      ['sms', 'alice', true],
      ['email', 'alice', true],
    ]);
    expect(JSON.stringify(result)).not.toMatch(/5550177777|new\.example/);
  });

  it('the role’s mailing list is named beside the person, whose address is not', async () => {
    const t = transports();
    const [result] = await run(activitiesWith(t), [
      { ...page(['email']), contacts: { handle: 'alice', name: 'Alice', list: 'oncall@lists.example' } },
    ]);
    expect(t.sent).toEqual(['email alice@pno.example, oncall@lists.example']);
    expect(result?.receipts?.[0]).toMatchObject({ target: 'alice + oncall@lists.example', ok: true });
  });

  it('a handle the worker’s policy does not know fails every channel that needs an address, loudly', async () => {
    const t = transports();
    const [result] = await run(activitiesWith(t), [page(['pager', 'sms', 'email'], 'zoe')]);
    // The pager reaches the role's PagerDuty service, not an address: it still goes.
    expect(t.sent).toEqual(['pager INC-0000beef:on-call-engineer']);
    expect(result?.receipts?.map((r) => `${r.channel}:${r.target}:${r.reason ?? 'ok'}`)).toEqual([
      'pager:INC-0000beef:on-call-engineer:ok',
      'sms:zoe:unknown_person',
      'email:zoe:unknown_person',
      'phone:zoe:unknown_person',
      'slack:zoe:unknown_person',
    ]);
    expect(result?.receipts?.[1]?.detail).toBe('zoe is not a person in the worker’s policy');
    // Nothing reached zoe: without the pager, the delivery fails (the timeline records notification_failed).
    const [alone] = await run(activitiesWith(t), [page(['sms'], 'zoe')]);
    expect(alone?.ok).toBe(false);
  });

  it('a delivery scheduled before addresses were looked up here still goes to the addresses it carries', async () => {
    const t = transports();
    const old: Delivery = {
      ...page(['sms', 'email']),
      contacts: { handle: 'alice', name: 'Alice', phone: '+15550100099', email: 'old@pno.example' },
    };
    const [result] = await run(activitiesWith(t), [old]);
    expect(t.sent).toEqual(['sms +15550100099', 'email old@pno.example']);
    expect(result?.receipts?.map((r) => [r.channel, r.target, r.ok])).toEqual([
      ['sms', 'alice', true],
      ['email', 'alice', true],
    ]);
  });

  it('a provider’s error that quotes the number or address is reported without it', async () => {
    const t = transports((c, target) =>
      c === 'sms'
        ? DeliveryError.refused(
            'twilio',
            `Twilio refused (400): 21211 The 'To' number ${target} is not valid`,
          )
        : c === 'email'
          ? DeliveryError.transient(
              'email',
              `SMTP deferred the message: 451 <${target.toUpperCase()}> try later`,
            )
          : undefined,
    );
    const acts = activitiesWith(t);
    // A retryable failure is the activity's failure (visible in the web UI): cleaned too.
    await expect(run(acts, [page(['email'])], new MockActivityEnvironment({ attempt: 1 }))).rejects.toThrow(
      'SMTP deferred the message: 451 <alice’s e-mail> try later',
    );
    const [result] = await run(acts, [page(['sms'])]);
    expect(result?.receipts?.[0]).toMatchObject({
      channel: 'sms',
      target: 'alice',
      ok: false,
      detail: "Twilio refused (400): 21211 The 'To' number alice’s phone is not valid",
    });
    expect(JSON.stringify(result)).not.toMatch(/5550100001/);
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
