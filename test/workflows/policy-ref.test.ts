/**
 * Issue 11: the policy is passed once per run, by content hash, and people's phone numbers and e-mail
 * addresses stay out of workflow input. On the time-skipping server: a run started by hash obtains its
 * policy once (a local activity), pages with addresses the activity looks up by handle, carries the policy
 * through continue-as-new, and says on its timeline when the worker did not know the hash. Its history
 * (every payload, decoded) holds no one's e-mail address or phone number.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { OPERATIONS, alertsReceivedSignal, stateQuery } from '../../src/contract/messages.ts';
import type { IncidentInput } from '../../src/contract/messages.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { withoutContacts } from '../../src/domain/workflow-policy.ts';
import { policyRefOf } from '../../src/policy-snapshots.ts';
import { eventually } from '../support/eventually.ts';
import { policyWith } from '../support/policy.ts';
import {
  alertBatch,
  createHarness,
  settled,
  startAlertIncident,
  timeSkippingPerTest,
} from '../support/workflow-env.ts';

const policy = policyWith({ playbooks: { enabled: false } });
const currentEnv = timeSkippingPerTest();
let env: TestWorkflowEnvironment;
beforeEach(() => {
  env = currentEnv();
});

const P1_ALERT = { labels: { severity: 'critical' } };

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Every payload of the history as text (JSON), one per line: what Temporal stores, read back. */
function payloadTexts(history: History): string {
  const texts: string[] = [];
  const walk = (value: unknown): void => {
    if (value instanceof Uint8Array || typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) return value.forEach(walk);
    const object = value as Record<string, unknown>;
    if (object['data'] instanceof Uint8Array && typeof object['metadata'] === 'object') {
      texts.push(Buffer.from(object['data']).toString('utf8'));
      return;
    }
    Object.values(object).forEach(walk);
  };
  walk(history.events);
  return texts.join('\n');
}

/** The people's e-mail addresses and phone numbers found in `text`. */
function contactsIn(text: string, of: Policy = policy): string[] {
  return Object.values(of.people)
    .flatMap((p) => [p.email, p.phone])
    .filter((c): c is string => Boolean(c) && text.includes(c as string));
}

const localActivityMarkers = (history: History) =>
  (history.events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');

function startInput(history: History): IncidentInput {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return JSON.parse(Buffer.from(payload?.data ?? new Uint8Array()).toString('utf8')) as IncidentInput;
}

describe('incident workflow: the policy by hash, contacts by handle', () => {
  it('a run started by hash obtains its policy once, and pages by addresses looked up when sending', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await env.sleep('1 second');
      await settled(handle);
      const state = await handle.query(stateQuery);
      // SMS and the call reached alice's number, which the deliver activity read from the worker's policy.
      expect(h.recorder.messages.map((m) => [m.channel, m.target]).slice(1)).toEqual([
        ['sms', '+15550100001'],
        ['phone', '+15550100001'],
      ]);
      const sms = state.timeline.find((t) => t.message.includes('sms → '));
      expect(sms).toMatchObject({ kind: 'notified' });
      expect(sms?.message).toContain('sms → alice: delivered (twilio message SM');
      expect(state.timeline.some((t) => t.kind === 'policy_not_found')).toBe(false);

      const history = await handle.fetchHistory();
      const input = startInput(history);
      expect(input.policy).toBeUndefined();
      expect(input.policyRef).toEqual(policyRefOf(policy));
      // Once per run: one local activity, whose result (the policy without contacts) is recorded.
      expect(localActivityMarkers(history)).toHaveLength(1);
      const text = payloadTexts(history);
      expect(text).toContain('"escalation"');
      expect(contactsIn(text)).toEqual([]);
      expect(contactsIn(JSON.stringify(state))).toEqual([]);
    });
  });

  it('a hash the worker does not know: the worker’s current policy, and the timeline says which', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const unknown = 'b'.repeat(64);
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT], {
        policyRef: { hash: unknown },
      });
      await env.sleep('1 second');
      await settled(handle);
      const state = await handle.query(stateQuery);
      const notFound = state.timeline.filter((t) => t.kind === 'policy_not_found');
      expect(notFound).toEqual([
        expect.objectContaining({
          actor: 'system',
          message:
            `policy ${unknown} was not found (not this worker’s policy, and no snapshot directory): ` +
            `this incident runs on the worker’s current policy ${h.recorder.policies.current.hash}`,
        }),
      ]);
      // And it runs: the on-call engineer is paged as the worker's policy says.
      expect(state.notified[0]).toMatchObject({ who: 'alice', channels: ['pager', 'sms', 'phone'] });
      expect(h.recorder.messages.map((m) => m.channel)).toEqual(['pager', 'sms', 'phone']);
    });
  });

  it.each([
    ['started by hash', {}],
    ['started the old way, contacts and all', { policy }],
  ])(
    'continue-as-new carries the policy, without contacts: the next run obtains nothing (%s)',
    async (_how, extra) => {
      const h = await createHarness(env);
      await h.run(async () => {
        const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT], {
          continueAsNewAfterEvents: 30,
          ...extra,
        });
        const firstRunId = h.firstRunIds[0];
        await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
        for (let i = 0; (await handle.describe()).runId === firstRunId; i += 1) {
          if (i > 20) throw new Error('the run did not continue as new');
          await handle.signal(
            alertsReceivedSignal,
            alertBatch(policy, {
              alerts: [{ labels: { severity: 'critical' }, fingerprint: `cafe00000000000${i % 10}` }],
            }),
          );
          await env.sleep('10 minutes');
        }
        const next = await eventually('the next run to start', async () => {
          const history = await handle.fetchHistory();
          return (history.events?.length ?? 0) > 3 ? history : undefined;
        });
        const input = startInput(next);
        expect(input.policy).toEqual(JSON.parse(JSON.stringify(withoutContacts(policy))));
        expect(input.carried?.state.acknowledgedBy).toBe('alice');
        expect(localActivityMarkers(next)).toEqual([]);
        expect(contactsIn(payloadTexts(next))).toEqual([]);
        const state = await handle.query(stateQuery);
        expect(state.status).toBe('acknowledged');
      });
    },
  );

  it('a run started the old way, the policy with its contacts in its input, still pages; its deliveries name people by handle', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT], { policy });
      await env.sleep('1 second');
      await settled(handle);
      expect(h.recorder.messages.map((m) => [m.channel, m.target]).slice(1)).toEqual([
        ['sms', '+15550100001'],
        ['phone', '+15550100001'],
      ]);
      const history = await handle.fetchHistory();
      expect(localActivityMarkers(history)).toEqual([]);
      // Its input has them (it predates the fix); nothing it scheduled or recorded since does.
      const scheduled = (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => payloadTexts({ events: [e] }))
        .join('\n');
      expect(scheduled).toContain('"kind":"notify"');
      expect(contactsIn(scheduled)).toEqual([]);
      expect(contactsIn(JSON.stringify(await handle.query(stateQuery)))).toEqual([]);
    });
  });
});
