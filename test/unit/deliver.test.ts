import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import type { Delivery } from '../../src/activities/index.ts';
import type { DeliveryResult } from '../../src/domain/notices.ts';
import { SlackError } from '../../src/activities/channels/slack.ts';
import type { Notification } from '../../src/domain/escalation.ts';

function activities(fail: (channel: string) => Error | undefined) {
  const sent: string[] = [];
  const acts = createActivities({
    slack: {
      postMessage: (m) => {
        const err = fail(m.channel);
        if (err) return Promise.reject(err);
        sent.push(m.channel);
        return Promise.resolve({ channel: m.channel, ts: '1.0' });
      },
    },
    history: { previousIncidentId: () => Promise.resolve(undefined) },
  });
  const deliver = (input: Parameters<typeof acts.deliver>[0]) => acts.deliver(input);
  return { deliver, sent };
}

const posts: Delivery[] = ['#a', '#b', '#c'].map((channel) => ({ kind: 'post', channel, text: 'x' }));

describe('deliver activity', () => {
  it('a permanent failure is reported for its message and does not hold back the others', async () => {
    const { deliver, sent } = activities((c) =>
      c === '#b' ? new SlackError('channel_not_found', false) : undefined,
    );
    const results: DeliveryResult[] = await new MockActivityEnvironment().run(deliver, {
      incidentId: 'INC-1',
      deliveries: posts,
      maxAttempts: 8,
    });
    expect(sent).toEqual(['#a', '#c']);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
  });

  it('a transient failure retries the activity, which then resends only what did not go out', async () => {
    const { deliver, sent } = activities((c) =>
      c === '#b' ? new SlackError('Slack answered HTTP 503', true) : undefined,
    );
    const first = new MockActivityEnvironment({ attempt: 1 });
    let progress: Record<number, DeliveryResult> = {};
    first.on('heartbeat', (details: Record<number, DeliveryResult>) => {
      progress = details;
    });
    await expect(
      first.run(deliver, { incidentId: 'INC-1', deliveries: posts, maxAttempts: 8 }),
    ).rejects.toThrow(/HTTP 503/);
    expect(sent).toEqual(['#a', '#c']);
    // The retry, on its last attempt, with the heartbeated progress: only #b is tried again, and reported.
    const last = new MockActivityEnvironment({ attempt: 8, heartbeatDetails: progress });
    const results = await last.run(deliver, { incidentId: 'INC-1', deliveries: posts, maxAttempts: 8 });
    expect(sent).toEqual(['#a', '#c']);
    expect(results).toEqual([
      expect.objectContaining({ ok: true }),
      { ok: false, error: 'Slack answered HTTP 503' },
      expect.objectContaining({ ok: true }),
    ]);
  });

  it('pager, SMS, phone and email are recorded; Slack is a direct message', async () => {
    const { deliver, sent } = activities(() => undefined);
    const notification: Notification = {
      at: 0,
      level: 0,
      role: 'on-call-engineer',
      person: 'alice',
      channels: ['slack', 'email'],
      reason: 'initial',
    };
    const deliveries: Delivery[] = [
      { kind: 'notify', notification, person: { name: 'Alice', slack: 'U0ALICE' }, text: 'x' },
    ];
    const [result]: DeliveryResult[] = await new MockActivityEnvironment().run(deliver, {
      incidentId: 'INC-1',
      maxAttempts: 8,
      deliveries,
    });
    expect(sent).toEqual(['U0ALICE']);
    expect(result).toEqual({ ok: true, detail: 'slack dm ts=1.0, email recorded' });
  });
});
