/**
 * Issue 11's capacity: a new incident's price in tasks, events and visibility writes. On the time-skipping
 * server: a new run decides its fixes with one patch marker (one `TemporalChangeVersion` upsert instead of
 * nine), runs the initial investigation as one activity (no child workflow, no signals back), and looks up
 * the incident before it in the local activity that obtains its policy (no activity of its own). What the
 * investigation finds and fails to read is recorded exactly as the child run recorded it.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { stateQuery } from '../../src/contract/messages.ts';
import type { IncidentInput } from '../../src/contract/messages.ts';
import { OPERATIONS } from '../../src/contract/operations.ts';
import { investigationRunId } from '../../src/contract/playbooks.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { INVESTIGATION_CANCELLED } from '../../src/domain/investigation-plan.ts';
import { eventually } from '../support/eventually.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { policyWith } from '../support/policy.ts';
import { createHarness, startAlertIncident, timeSkippingPerTest } from '../support/workflow-env.ts';

const currentEnv = timeSkippingPerTest();
let env: TestWorkflowEnvironment;
beforeEach(() => {
  env = currentEnv();
});

const policy = policyWith({ service: { healthUrl: 'http://127.0.0.1:9/health' } });
/** No mapping rule gives it a playbook: the incident investigates. */
const POD_CRASH = { labels: { alertname: 'PodCrash', severity: 'warning' } };

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
const events = (history: History) => history.events ?? [];

async function investigated(handle: WorkflowHandle): Promise<IncidentState> {
  return eventually(
    'the investigation',
    async () => {
      const state = await handle.query(stateQuery);
      return state.investigation?.status === 'completed' ? state : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
}

describe('a new incident, lean', () => {
  it('one patch marker and one TemporalChangeVersion upsert; the investigation is an activity, not a child', async () => {
    const h = await createHarness(env);
    const cluster = new FakeCluster({ stuckPods: 1, revisionAgesMinutes: [60] });
    h.recorder.playbooks = cluster.activities();
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      const state = await investigated(handle);
      expect(state.investigation?.summary).toContain('rollout history: rev 1');
      expect(state.investigation?.summary).toContain('not Running');
      // Its steps, as the child run reported them: the read-only start, then each read.
      const steps = state.timeline.filter((t) => t.kind === 'playbook_step').map((t) => t.message);
      expect(steps.some((m) => m.includes('initialInvestigation on') && m.includes('read-only'))).toBe(true);
      expect(steps.some((m) => m.includes('initial investigation done (4 steps)'))).toBe(true);
      await eventually('the findings posted', () =>
        h.recorder.posts.find((p) => p.text.includes('initial investigation')),
      );

      const history = await handle.fetchHistory();
      const markers = events(history).flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
      expect(markers.filter((m) => m === 'core_patch')).toHaveLength(1);
      const changeVersionUpserts = events(history).filter((e) =>
        Object.keys(
          e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {},
        ).includes('TemporalChangeVersion'),
      );
      expect(changeVersionUpserts).toHaveLength(1);
      expect(events(history).some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(false);
      const activities = events(history).flatMap(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
      );
      expect(activities).toContain('investigate');
      expect(activities).not.toContain('findPreviousIncident');
      await expect(env.client.workflow.getHandle(investigationRunId(incidentId)).describe()).rejects.toThrow(
        /not found/i,
      );
    });
  });

  it('a worker that can read nothing: the findings at once, posted with the initial report, no activity', async () => {
    const h = await createHarness(env);
    // No cluster, no Prometheus (the harness's default), and the policy names no dependencies.
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      const state = await investigated(handle);
      expect(state.investigation?.summary).toBe(
        [
          'rollout history: not read (no cluster configured)',
          'related alerts: not read (PROMETHEUS_URL not set)',
          'pods: not read (no cluster configured)',
        ].join('\n'),
      );
      const steps = state.timeline.filter((t) => t.kind === 'playbook_step').map((t) => t.message);
      expect(steps.some((m) => m.includes('nothing to read from'))).toBe(true);
      expect(steps.filter((m) => m.includes('not read: no cluster configured (KUBECONFIG)'))).toHaveLength(2);
      await eventually('the findings posted', () =>
        h.recorder.posts.find((p) => p.text.includes('initial investigation') && p.text.includes(incidentId)),
      );
      const history = await handle.fetchHistory();
      const activities = events(history).flatMap(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
      );
      // One delivery carries the initial report and the findings; nothing else runs as an activity.
      expect(activities).toEqual(['deliver']);
    });
  });

  it('a read the cluster refuses (403) ends the investigation incomplete, the failed step recorded', async () => {
    const h = await createHarness(env);
    const cluster = new FakeCluster({});
    cluster.refuse('rolloutHistory');
    h.recorder.playbooks = cluster.activities();
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      const state = await investigated(handle);
      expect(state.investigation?.summary).toMatch(
        /^investigation incomplete: step recent_deployments could not run: 403 forbidden: User "playbook" cannot rolloutHistory/,
      );
      // Recorded as incomplete, never as done.
      expect(
        state.timeline.some((t) => t.message.includes('initial investigation incomplete (2 steps)')),
      ).toBe(true);
      const failed = state.timeline.find(
        (t) => t.kind === 'playbook_step' && t.message.includes('could not run'),
      );
      expect(failed?.message).toContain('recent_deployments');
      // Not retried (403), and nothing read after it.
      expect(cluster.count('rolloutHistory')).toBe(1);
      expect(cluster.count('inspectWorkload')).toBe(0);
    });
  });

  it('an investigation whose activity itself fails ends incomplete, saying why, never as done', async () => {
    const h = await createHarness(env);
    const cluster = new FakeCluster({ revisionAgesMinutes: [60] });
    const reads = cluster.activities();
    let asked = 0;
    h.recorder.playbooks = {
      ...reads,
      // The policy's local activity asks first (what can be read); the investigation's own ask fails for good.
      playbookEnvironment: () => {
        asked += 1;
        return asked === 1
          ? reads.playbookEnvironment()
          : Promise.reject(ApplicationFailure.nonRetryable('kubeconfig unreadable', 'ConfigError'));
      },
    };
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      const state = await investigated(handle);
      expect(state.investigation?.summary).toMatch(/^investigation incomplete: .*kubeconfig unreadable/);
      expect(
        state.timeline.some((t) => t.message.includes('initial investigation incomplete (0 steps)')),
      ).toBe(true);
      expect(state.timeline.some((t) => t.message.includes('initial investigation done'))).toBe(false);
      expect(cluster.count('rolloutHistory')).toBe(0);
    });
  });

  it('a transient failure is retried within the activity, and the investigation completes', async () => {
    const h = await createHarness(env);
    const cluster = new FakeCluster({ revisionAgesMinutes: [60] });
    cluster.failTransiently('rolloutHistory', 1);
    h.recorder.playbooks = cluster.activities();
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      const state = await investigated(handle);
      expect(cluster.count('rolloutHistory')).toBe(2);
      expect(state.investigation?.summary).toContain('rollout history: rev 1');
    });
  });

  it('an investigation still reading when the incident is resolved is cancelled, and said so', async () => {
    const h = await createHarness(env);
    const cluster = new FakeCluster({ revisionAgesMinutes: [60] });
    // Every rollout-history read fails (503): the activity retries with 1, 2, 4, 8 s backoffs, still reading.
    cluster.failTransiently('rolloutHistory', 100);
    h.recorder.playbooks = cluster.activities();
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [POD_CRASH]);
      await eventually('the first read', () => (cluster.count('rolloutHistory') > 0 ? true : undefined));
      expect((await handle.query(stateQuery)).investigation?.status).toBe('running');
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'pod evicted by a node drain' }],
      });
      const state = await eventually('the investigation cancelled', async () => {
        const s = await handle.query(stateQuery);
        return s.investigation?.status === 'completed' ? s : undefined;
      });
      expect(state.status).toBe('resolved');
      expect(state.investigation?.summary).toBe(INVESTIGATION_CANCELLED);
      const resolvedAt = state.timeline.findIndex((t) => t.kind === 'resolved');
      const cancelled = state.timeline.findIndex((t) =>
        t.message.includes('initial investigation cancelled (0 steps)'),
      );
      expect(cancelled).toBeGreaterThan(resolvedAt);
      // Nothing of it is posted after the resolution (the run's last deliveries are done once it has ended).
      await handle.result();
      expect(
        h.recorder.posts.some((p) => p.text.includes('initial investigation') && p.text.includes(incidentId)),
      ).toBe(false);
      const history = await handle.fetchHistory();
      expect(
        events(history).some(
          (e) =>
            e.activityTaskCancelRequestedEventAttributes !== undefined &&
            e.activityTaskCancelRequestedEventAttributes !== null,
        ),
      ).toBe(true);
    });
  });

  it('a declared incident follows no earlier run: no previous-incident lookup holds its first page', async () => {
    const h = await createHarness(env);
    h.recorder.previousIncident = 'INC-0000beef';
    const quiet = policyWith({ playbooks: { enabled: false } });
    await h.run(async () => {
      const incidentId = `INC-${randomUUID().slice(0, 8)}`;
      const workflowId = `declared-${incidentId}`;
      h.started.push(workflowId);
      const handle = await env.client.workflow.start('incidentWorkflow', {
        workflowId,
        taskQueue: h.taskQueue,
        args: [
          {
            incidentId,
            policyRef: h.recorder.policies.add(quiet),
            declared: { by: 'alice', title: 'Checkout down', severity: 'P2', service: quiet.service.id },
          } satisfies IncidentInput,
        ],
      });
      const state = await eventually('the declared incident open', async () => {
        const s = await handle.query(stateQuery).catch(() => undefined);
        return s?.status === 'triggered' ? s : undefined;
      });
      expect(state.source).toMatchObject({ kind: 'declared', by: 'alice' });
      expect(h.recorder.previousLookups).toBe(0);
      // An alert group's incident does look (the test below links it).
      await startAlertIncident(env, h, quiet, [POD_CRASH]);
      await eventually('the alert incident’s lookup', () =>
        h.recorder.previousLookups === 1 ? true : undefined,
      );
    });
  });

  it('the incident before it is looked up with the policy, and linked', async () => {
    const h = await createHarness(env);
    h.recorder.previousIncident = 'INC-0000beef';
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policyWith({ playbooks: { enabled: false } }), [
        POD_CRASH,
      ]);
      const state = await eventually('the link', async () => {
        const s = await handle.query(stateQuery);
        return s.previousIncidentId ? s : undefined;
      });
      expect(state.previousIncidentId).toBe('INC-0000beef');
      expect(state.timeline.some((t) => t.message.includes('previous incident INC-0000beef'))).toBe(true);
      const history = await handle.fetchHistory();
      expect(events(history).some((e) => e.activityTaskScheduledEventAttributes)).toBe(true);
      expect(
        events(history).some(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'findPreviousIncident',
        ),
      ).toBe(false);
    });
  });
});
