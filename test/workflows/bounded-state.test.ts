/**
 * Issue 11: an incident stays within Temporal's limits however long it runs. A group keyed by namespace
 * with pod churn (5,000 distinct alerts) and a flapping alert (firing/resolved 500 times) leave the
 * incident running, its state (the query answer, the continue-as-new input) bounded, the whole record in
 * the incident's record store, and Slack not spammed (flap damping).
 */
import { describe, expect, it } from 'vitest';
import { alertsReceivedSignal, stateQuery } from '../../src/contract/messages.ts';
import { OPERATIONS } from '../../src/contract/operations.ts';
import {
  CARRY_BUDGET_BYTES,
  STATE_BOUNDS,
  fullIncident,
  isAnswer,
  serialisedBytes,
} from '../../src/domain/incident-record.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import type { WorkflowHandle } from '@temporalio/client';
import type { Policy } from '../../src/domain/policy.ts';
import { policyWith } from '../support/policy.ts';
import { eventually } from '../support/eventually.ts';
import { podAlert } from '../support/alerts.ts';
import type { TestAlert } from '../support/alerts.ts';
import {
  alertBatch,
  createHarness,
  startAlertIncident,
  timeSkippingPerTest,
} from '../support/workflow-env.ts';

const testEnv = timeSkippingPerTest();

/** An alert that flaps: the same fingerprint, firing and resolved in turn. */
const FLAP: TestAlert = {
  labels: { alertname: 'PodCrash', severity: 'warning' },
  fingerprint: 'f1a9f1a9f1a9f1a9',
};

/** Sends {@link FLAP} with a status, as Alertmanager's next notification of its group. */
function flapSender(handle: WorkflowHandle, policy: Policy, groupKey: string) {
  return (status: 'firing' | 'resolved') =>
    handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [{ ...FLAP, status }], groupKey }));
}

describe('bounded incident state', () => {
  it('5,000 distinct pod alerts in one group: the incident keeps running, its state bounded, the whole record kept', async () => {
    const env = testEnv();
    const h = await createHarness(env);
    const policy = policyWith({});
    await h.run(async () => {
      const { handle, workflowId } = await startAlertIncident(env, h, policy, [podAlert(0)], {
        continueAsNewAfterEvents: 60,
      });
      // Alertmanager sends the group's alerts as they come: 50 notifications of 100 new pods each.
      for (let batch = 0; batch < 50; batch++) {
        const alerts = Array.from({ length: 100 }, (_, j) => podAlert(batch * 100 + j));
        await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts, groupKey: workflowId }));
      }
      const state = await eventually(
        'all 5,000 alerts counted',
        async () => {
          const s = await handle.query(stateQuery);
          return s.record?.counts.alerts === 5_000 ? s : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(state.status).toBe('triggered');
      expect(state.record?.counts.firing).toBe(5_000);
      // Bounded: the latest entries only, well under what Temporal allows in one payload.
      expect(state.alerts.length).toBeLessThanOrEqual(STATE_BOUNDS.alerts + STATE_BOUNDS.slack);
      expect(state.timeline.length).toBeLessThanOrEqual(STATE_BOUNDS.timeline + STATE_BOUNDS.slack);
      const bytes = serialisedBytes(state);
      expect(bytes).toBeLessThan(CARRY_BUDGET_BYTES);
      console.log(`5,000 alerts: state ${Math.round(bytes / 1024)} KiB, ${state.alerts.length} alerts kept`);
      // The run continued as new (60 events) with its bounded state, and still runs.
      const description = await eventually(
        'the run to continue as new',
        async () => {
          const d = await handle.describe();
          return d.runId !== h.firstRunIds[0] ? d : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      expect(description.status.name).toBe('RUNNING');
      expect((await handle.query(stateQuery)).record?.counts.alerts).toBe(5_000);

      // The whole record: every alert once, every timeline entry in order.
      const full = await eventually(
        'the record store to hold what the runs let go',
        async () => {
          const s = await handle.query(stateQuery);
          const f = fullIncident(s, await h.recorder.records.read(s.id));
          return f.alerts.length === 5_000 && f.timeline.length === s.record?.counts.timeline ? f : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      expect(new Set(full.alerts.map((a) => a.fingerprint)).size).toBe(5_000);
      const alertEntries = full.timeline.filter(
        (t) => t.kind === 'alert' && t.message.startsWith('KubePodCrashLooping firing'),
      );
      expect(alertEntries).toHaveLength(5_000);
      expect(full.timeline[0]?.kind).toBe('opened');
      const times = full.timeline.map((t) => Date.parse(t.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      // Slack heard of the incident, not of each pod.
      expect(h.recorder.posts.length).toBeLessThanOrEqual(3);

      // An engineer's update answers a summary (it is in history), not the state.
      const answer = await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      expect(isAnswer(answer)).toBe(true);
      expect(serialisedBytes(answer)).toBeLessThan(2_048);
      expect(answer).toMatchObject({ status: 'acknowledged', severity: state.severity });
    });
  }, 180_000);

  it('a flapping alert (firing/resolved 500 times) posts one mitigated notice per flapDamping interval', async () => {
    const env = testEnv();
    const h = await createHarness(env);
    const policy = policyWith({ alerts: { flapDamping: '10m' } });
    await h.run(async () => {
      const { handle, workflowId } = await startAlertIncident(env, h, policy, [FLAP], {
        continueAsNewAfterEvents: 400,
      });
      const send = flapSender(handle, policy, workflowId);
      const started = await env.currentTimeMs();
      for (let i = 0; i < 500; i++) {
        await send('resolved');
        await env.sleep('15 seconds');
        await send('firing');
        await env.sleep('15 seconds');
      }
      const minutes = ((await env.currentTimeMs()) - started) / 60_000;
      const state = await eventually(
        'the 1,000 changes counted',
        async () => {
          const s = await handle.query(stateQuery);
          return (s.record?.counts.timeline ?? 0) >= 2_000 ? s : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      // Still open (it keeps firing again), bounded, and every flap on the record.
      expect(state.status).toBe('triggered');
      expect(serialisedBytes(state)).toBeLessThan(256 * 1024);
      const mitigatedPosts = h.recorder.posts.filter((p) => /mitigated/i.test(p.text));
      // 250 minutes of flapping, one notice per 10 minutes: 25 or 26, not 500.
      expect(mitigatedPosts.length).toBeGreaterThanOrEqual(Math.floor(minutes / 10));
      expect(mitigatedPosts.length).toBeLessThanOrEqual(Math.ceil(minutes / 10) + 1);
      const gaps = mitigatedPosts.slice(1).map((p, i) => p.at - (mitigatedPosts[i] as { at: number }).at);
      // Decided on workflow time; `at` is when the Slack stand-in got it (a delivery takes a moment).
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(10 * 60_000 - 5_000);
      expect(state.record?.counts.damped).toBe(500 - mitigatedPosts.length);
      const full = fullIncident(state, await h.recorder.records.read(state.id));
      expect(full.timeline.filter((t) => t.kind === 'mitigated')).toHaveLength(500);
      expect(full.timeline.filter((t) => t.kind === 'reopened')).toHaveLength(500);
    });
  }, 180_000);

  it('without damping (flapDamping 0s) every flap is posted', async () => {
    const env = testEnv();
    const h = await createHarness(env);
    const policy = policyWith({ alerts: { flapDamping: '0s' } });
    await h.run(async () => {
      const { handle, workflowId } = await startAlertIncident(env, h, policy, [FLAP]);
      const send = flapSender(handle, policy, workflowId);
      for (let i = 0; i < 5; i++) {
        await send('resolved');
        await env.sleep('15 seconds');
        await send('firing');
        await env.sleep('15 seconds');
      }
      await eventually(
        'five mitigated notices',
        () =>
          Promise.resolve(
            h.recorder.posts.filter((p) => /mitigated/i.test(p.text)).length === 5 ? true : undefined,
          ),
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const state: IncidentState = await handle.query(stateQuery);
      expect(state.record?.counts.damped ?? 0).toBe(0);
    });
  });
});
