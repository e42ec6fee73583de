/**
 * The alerting pipeline's dead-man's switch (src/workflows/watchdog.ts) on the time-skipping server, fed the
 * way the webhook feeds it (TemporalWatchdog's signal-with-start): no incident while the Watchdog arrives
 * within the timeout, however long; an incident exactly when the last one is `timeout` old; the Watchdog's
 * return told to that incident (never resolved by itself); bounded history.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { stateQuery } from '../../src/contract/messages.ts';
import {
  WATCHDOG_WORKFLOW_TYPE,
  watchdogHeartbeatSignal,
  watchdogStateQuery,
} from '../../src/contract/watchdog.ts';
import type { WatchdogInput, WatchdogState } from '../../src/contract/watchdog.ts';
import { watchdogWorkflowId } from '../../src/contract/workflow-ids.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { watchdogSettings } from '../../src/domain/watchdog.ts';
import { TemporalWatchdog } from '../../src/starter/client/watchdog.ts';
import { eventually } from '../support/eventually.ts';
import { policyWith } from '../support/policy.ts';
import { createHarness, settled, timeSkippingPerTest } from '../support/workflow-env.ts';
import type { Harness } from '../support/workflow-env.ts';

const policy = policyWith({ playbooks: { enabled: false } });
const currentEnv = timeSkippingPerTest();
let env: TestWorkflowEnvironment;
beforeEach(() => {
  env = currentEnv();
});

const MINUTE = 60_000;
const TIMEOUT = 10 * MINUTE;

/** One receiver's watchdog as the webhook drives it; its workflow (and the incidents it opens) end with the test. */
function watchdogOf(h: Harness, p: Policy = policy) {
  const receiver = `alertmanager-${randomUUID().slice(0, 8)}`;
  const workflowId = watchdogWorkflowId(receiver);
  h.started.push(workflowId);
  const handle = env.client.workflow.getHandle(workflowId);
  let beats = 0;
  const gateway = (with_: Policy) => new TemporalWatchdog(env.client, h.taskQueue, with_);
  let current = gateway(p);
  const state = () => handle.query(watchdogStateQuery);
  return {
    receiver,
    workflowId,
    handle,
    state,
    /** Sends one heartbeat and waits until the watchdog has counted it. */
    async beat(): Promise<WatchdogState> {
      beats += 1;
      await current.heartbeat({ receiver, alerts: 1, receivedAt: new Date().toISOString() });
      return eventually(`heartbeat ${beats} counted`, async () => {
        const s = await state();
        return s.heartbeats >= beats ? s : undefined;
      });
    },
    /** Sends one heartbeat, without waiting for it to be counted. */
    async send(): Promise<void> {
      beats += 1;
      await current.heartbeat({ receiver, alerts: 1, receivedAt: new Date().toISOString() });
    },
    /** Heartbeats from now on come from an API process that runs `next` (a new deployment). */
    redeploy(next: Policy) {
      current = gateway(next);
    },
    /** Waits until the watchdog is silent with an incident open, and registers it for clean-up. */
    async silent(): Promise<WatchdogState> {
      const s = await eventually('the watchdog silent, with its incident', async () => {
        const now = await state();
        return now.status === 'silent' && now.incident && !now.incident.closed ? now : undefined;
      });
      if (s.incident && !h.started.includes(s.incident.workflowId)) h.started.push(s.incident.workflowId);
      return s;
    },
  };
}

const kinds = (s: WatchdogState) => s.events.map((e) => e.kind);
const count = (s: WatchdogState, kind: string) => kinds(s).filter((k) => k === kind).length;

describe('watchdog workflow: the alerting pipeline’s dead-man’s switch', () => {
  it('opens no incident while the Watchdog arrives within the timeout, for hours', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      let s = await w.beat();
      expect(s).toMatchObject({ receiver: w.receiver, status: 'alive', heartbeats: 1 });
      expect(s.settings).toEqual({ alertname: 'Watchdog', timeoutMs: TIMEOUT, severity: 'P1' });
      // 9 minutes apart, for 2 hours: each one moves the deadline (a timer from the first one would fire at 10m).
      for (let i = 0; i < 13; i++) {
        await env.sleep(9 * MINUTE);
        await w.beat();
      }
      await env.sleep(9 * MINUTE);
      s = await w.state();
      expect(s.status).toBe('alive');
      expect(s.heartbeats).toBe(14);
      expect(s.incident).toBeUndefined();
      expect(kinds(s)).toEqual(['started']);
      // Always exactly `timeout` after the last heartbeat.
      expect(Date.parse(s.silentAt ?? '') - Date.parse(s.lastHeartbeatAt ?? '')).toBe(TIMEOUT);
      expect(h.recorder.messages).toEqual([]);
      expect(h.recorder.posts).toEqual([]);
    });
  });

  it('opens one incident exactly when the last Watchdog is `timeout` old, paging as its severity says', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      const first = await w.beat();
      const last = Date.parse(first.lastHeartbeatAt ?? '');
      await env.sleep(TIMEOUT - 10_000);
      const before = await w.state();
      expect(before.status).toBe('alive');
      expect(before.incident).toBeUndefined();
      expect(h.recorder.messages).toEqual([]);

      await env.sleep(20_000);
      const silent = await w.silent();
      const silentAt = Date.parse(silent.events.find((e) => e.kind === 'silent')?.at ?? '');
      expect(silentAt - last).toBeGreaterThanOrEqual(TIMEOUT);
      expect(silentAt - last).toBeLessThan(TIMEOUT + 10_000);
      expect(silent.silentSince).toBe(first.lastHeartbeatAt);
      expect(kinds(silent)).toEqual(['started', 'silent', 'incident_opened']);

      const incident = env.client.workflow.getHandle(silent.incident?.workflowId ?? '');
      await settled(incident);
      const state = await incident.query(stateQuery);
      expect(state).toMatchObject({
        id: silent.incident?.id,
        title: `Alerting pipeline silent: no Watchdog from ${w.receiver} for 10m`,
        severity: 'P1',
        status: 'triggered',
        service: policy.service.id,
        source: { kind: 'declared', by: 'watchdog' },
      });
      expect(state.id).toMatch(/^INC-[0-9a-f]{8}$/);
      expect(Date.parse(state.createdAt) - last).toBeGreaterThanOrEqual(TIMEOUT);
      expect(Date.parse(state.createdAt) - last).toBeLessThan(TIMEOUT + 10_000);
      expect(state.alerts).toMatchObject([
        {
          status: 'firing',
          severity: 'P1',
          labels: { alertname: 'AlertingPipelineSilent', receiver: w.receiver },
        },
      ]);
      // A P1 pages the on-call engineer at once, like any P1.
      expect(h.recorder.messages.map((m) => m.channel).sort()).toEqual(['pager', 'phone', 'sms']);

      // Silence goes on: still the one incident, nothing new.
      await env.sleep(60 * MINUTE);
      const later = await w.state();
      expect(later.status).toBe('silent');
      expect(count(later, 'incident_opened')).toBe(1);
      expect(later.incident?.id).toBe(silent.incident?.id);
    });
  });

  it('records the Watchdog’s return on the incident (alert resolved: mitigated, not resolved); a new silence reopens it', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      await w.beat();
      await env.sleep(TIMEOUT + 5_000);
      const silent = await w.silent();
      const incident = env.client.workflow.getHandle(silent.incident?.workflowId ?? '');
      await settled(incident);

      await env.sleep(20 * MINUTE);
      await w.beat();
      const back = await eventually('the return recorded', async () => {
        const s = await w.state();
        return count(s, 'incident_signalled') === 1 ? s : undefined;
      });
      expect(back.status).toBe('alive');
      expect(back.silentSince).toBeUndefined();
      const resumed = back.events.find((e) => e.kind === 'resumed');
      expect(resumed?.message).toMatch(/^Watchdog arrives again after 30m\d*s? of silence$/);
      const told = await eventually('the incident told', async () => {
        const s = await incident.query(stateQuery);
        return s.status === 'mitigated' ? s : undefined;
      });
      expect(told.alerts).toMatchObject([
        { status: 'resolved', labels: { alertname: 'AlertingPipelineSilent' } },
      ]);
      expect(
        told.timeline.some(
          (t) => t.kind === 'alert_resolved' && t.message.includes('AlertingPipelineSilent'),
        ),
      ).toBe(true);
      expect(told.resolvedAt).toBeUndefined();

      // A P1 waits for a person: an hour later it is still open, and the watchdog (fed) still alive.
      for (let i = 0; i < 6; i++) {
        await env.sleep(9 * MINUTE);
        await w.beat();
      }
      expect((await incident.query(stateQuery)).status).toBe('mitigated');

      // Silent again while that incident is open: its alert fires again there, no second incident.
      await env.sleep(TIMEOUT + 5_000);
      const again = await eventually('silent again', async () => {
        const s = await w.state();
        return count(s, 'incident_signalled') === 2 ? s : undefined;
      });
      expect(again.status).toBe('silent');
      expect(count(again, 'incident_opened')).toBe(1);
      const reopened = await eventually('the incident reopened', async () => {
        const s = await incident.query(stateQuery);
        return s.status === 'triggered' ? s : undefined;
      });
      expect(reopened.alerts).toMatchObject([{ status: 'firing' }]);
    });
  });

  it('a closed incident is not reused: the next silence opens a new one', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      await w.beat();
      await env.sleep(TIMEOUT + 5_000);
      const first = await w.silent();
      await env.client.workflow.getHandle(first.incident?.workflowId ?? '').terminate('closed by the test');
      await w.beat();
      const back = await eventually('back, the incident found closed', async () => {
        const s = await w.state();
        return s.status === 'alive' && s.incident?.closed ? s : undefined;
      });
      expect(back.events.at(-1)?.message).toBe(`${first.incident?.id} is already closed`);
      await env.sleep(TIMEOUT + 5_000);
      const second = await w.silent();
      expect(second.incident?.id).not.toBe(first.incident?.id);
      expect(count(second, 'incident_opened')).toBe(2);
    });
  });

  it('takes the settings (and policy) of the API that sends the heartbeats', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      await w.beat();
      await env.sleep(5 * MINUTE);
      w.redeploy(policyWith({ playbooks: { enabled: false }, watchdog: { timeout: '20m', severity: 'P2' } }));
      const s = await w.beat();
      expect(s.settings).toEqual({ alertname: 'Watchdog', timeoutMs: 20 * MINUTE, severity: 'P2' });
      // The old timeout would have fired 10 minutes after the first heartbeat.
      await env.sleep(19 * MINUTE);
      expect((await w.state()).status).toBe('alive');
      await env.sleep(2 * MINUTE);
      const silent = await w.silent();
      const incident = env.client.workflow.getHandle(silent.incident?.workflowId ?? '');
      await settled(incident);
      const state = await incident.query(stateQuery);
      expect(state.severity).toBe('P2');
      expect(state.title).toBe(`Alerting pipeline silent: no Watchdog from ${w.receiver} for 20m`);
    });
  });

  it('a run continued as new while its incident could not be opened keeps trying to open it', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      const silentSince = new Date(Date.now() - TIMEOUT - MINUTE).toISOString();
      // What a silent run whose startChild failed carries into continue-as-new (workflowInfo suggests it
      // after a long silence): no incident yet, opening it pending.
      const carried: WatchdogState = {
        receiver: w.receiver,
        status: 'silent',
        startedAt: silentSince,
        lastHeartbeatAt: silentSince,
        heartbeats: 1,
        silentSince,
        settings: watchdogSettings(policy),
        events: [{ at: silentSince, kind: 'silent', message: 'could not open the incident; trying again' }],
        incidentPending: true,
      };
      await env.client.workflow.start(WATCHDOG_WORKFLOW_TYPE, {
        taskQueue: h.taskQueue,
        workflowId: w.workflowId,
        args: [{ receiver: w.receiver, settings: carried.settings, policy, carried } satisfies WatchdogInput],
      });
      expect((await w.state()).incident).toBeUndefined();
      // The next attempt, a minute on, opens it (before, the carried run waited for a heartbeat for ever).
      await env.sleep(MINUTE + 10_000);
      const silent = await w.silent();
      expect(silent.incidentPending).toBe(false);
      expect(kinds(silent)).toEqual(['silent', 'incident_opened']);
      const incident = env.client.workflow.getHandle(silent.incident?.workflowId ?? '');
      await settled(incident);
      expect((await incident.query(stateQuery)).source).toMatchObject({ kind: 'declared', by: 'watchdog' });
    });
  });

  it('continues as new every N heartbeats, carrying its count and its deadline; a malformed signal is dropped', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const w = watchdogOf(h);
      const started = await env.client.workflow.start(WATCHDOG_WORKFLOW_TYPE, {
        taskQueue: h.taskQueue,
        workflowId: w.workflowId,
        args: [
          {
            receiver: w.receiver,
            settings: watchdogSettings(policy),
            policy,
            continueAsNewAfterHeartbeats: 3,
          } satisfies WatchdogInput,
        ],
      });
      // Anyone with Temporal access can signal it: a bad payload is dropped, never a failed workflow task.
      await started.signal(watchdogHeartbeatSignal.name, 'not a heartbeat');
      for (let i = 0; i < 7; i++) {
        // Not queried meanwhile: the time-skipping server stalls when a query meets a run as it continues as new.
        await w.send();
        await env.sleep(MINUTE);
      }
      const description = await w.handle.describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.runId).not.toBe(started.firstExecutionRunId);
      // Two continues as new (after heartbeats 3 and 6): this run's history is short.
      expect(description.historyLength).toBeLessThan(40);
      // The chain of runs back to the first: three runs.
      const runs = [description.runId];
      for (;;) {
        const history = await env.client.workflow.getHandle(w.workflowId, runs.at(-1)).fetchHistory();
        const previous =
          history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
        if (!previous) break;
        runs.push(previous);
      }
      expect(runs).toHaveLength(3);
      expect(runs.at(-1)).toBe(started.firstExecutionRunId);
      const s = await w.state();
      expect(s.heartbeats).toBe(7);
      expect(kinds(s)).toEqual(['started']);
      const last = Date.parse(s.lastHeartbeatAt ?? '');
      await env.sleep(TIMEOUT - MINUTE - 10_000);
      expect((await w.state()).status).toBe('alive');
      await env.sleep(20_000);
      const silent = await w.silent();
      const silentAt = Date.parse(silent.events.find((e) => e.kind === 'silent')?.at ?? '');
      expect(silentAt - last).toBeGreaterThanOrEqual(TIMEOUT);
      expect(silentAt - last).toBeLessThan(TIMEOUT + 10_000);
    });
  });
});
