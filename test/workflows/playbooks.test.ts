/**
 * The playbooks' decisions on the time-skipping server: every branch of the procedures' three "Resolution
 * Playbooks" and the safety rules (dry run, kill switch, approvals, 403, retries, cooldown, cancel), run as
 * child workflows of real incidents over an in-memory cluster model (test/support/fake-cluster.ts). What
 * the activities do to a real cluster and a real Prometheus is test/e2e/playbooks.test.ts's.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { OPERATIONS, stateQuery } from '../../src/contract/messages.ts';
import { playbookRunId } from '../../src/contract/playbooks.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { eventually } from '../support/eventually.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import type { FakeClusterOptions } from '../support/fake-cluster.ts';
import { policyWith } from '../support/policy.ts';
import type { PolicyPatch } from '../support/policy.ts';
import { createHarness, startAlertIncident, timeSkippingPerTest } from '../support/workflow-env.ts';
import type { Harness } from '../support/workflow-env.ts';
import type { TestAlert } from '../support/alerts.ts';

const currentEnv = timeSkippingPerTest();
let env: TestWorkflowEnvironment;
beforeEach(() => {
  env = currentEnv();
});

const HEALTH_URL = 'http://127.0.0.1:9/health';
const SERVICE_DOWN: TestAlert = { labels: { alertname: 'ServiceDown', severity: 'page', priority: 'P1' } };
const HIGH_ERROR_RATE: TestAlert = { labels: { alertname: 'HighErrorRate', severity: 'warning' } };
const HIGH_LATENCY: TestAlert = { labels: { alertname: 'HighLatency', severity: 'warning' } };
const POD_CRASH: TestAlert = { labels: { alertname: 'PodCrash', severity: 'warning' } };

function policyFor(playbooks: PolicyPatch = {}) {
  return policyWith({ service: { healthUrl: HEALTH_URL }, playbooks });
}

interface Started {
  handle: WorkflowHandle;
  incidentId: string;
  cluster: FakeCluster;
  h: Harness;
}

/** Runs `body` with an incident opened by `alert` over `cluster`, the policy's playbooks patched. */
async function withIncident(
  alert: TestAlert,
  cluster: FakeCluster,
  playbooks: PolicyPatch,
  body: (s: Started) => Promise<void>,
): Promise<void> {
  const h = await createHarness(env);
  h.recorder.playbooks = cluster.activities();
  await h.run(async () => {
    const { handle, incidentId } = await startAlertIncident(env, h, policyFor(playbooks), [alert]);
    // Children are abandoned by their incident; the harness terminates them with it.
    for (let n = 1; n <= 3; n++) h.started.push(playbookRunId(incidentId, n));
    h.started.push(`${incidentId}-investigation`);
    await body({ handle, incidentId, cluster, h });
  });
}

/** Advances time a step at a time until the incident's state satisfies `done` (at most `maxSteps`). */
async function until(
  handle: WorkflowHandle,
  done: (s: IncidentState) => boolean,
  step = '30 seconds',
  maxSteps = 200,
): Promise<IncidentState> {
  for (let i = 0; i < maxSteps; i++) {
    const state = await handle.query(stateQuery);
    if (done(state)) return state;
    // Let a running activity finish before time moves (the server does not skip while one runs).
    await new Promise((r) => setTimeout(r, 20));
    await env.sleep(step);
  }
  throw new Error(`condition not met; state: ${JSON.stringify((await handle.query(stateQuery)).playbook)}`);
}

const finished = (s: IncidentState) =>
  s.playbook?.status === 'completed' || s.playbook?.status === 'cancelled';
const stepIds = (s: IncidentState) => (s.playbook?.steps ?? []).map((st) => `${st.id}:${st.status}`);

function cluster(options: FakeClusterOptions = {}): FakeCluster {
  return new FakeCluster(options);
}

describe('service outage playbook', () => {
  it('healthy: a false alarm, nothing touched, posted, the incident stays open for a person', async () => {
    const c = cluster({ stuckPods: 1 });
    c.health = [true];
    await withIncident(SERVICE_DOWN, c, {}, async ({ handle, incidentId, h }) => {
      const state = await until(handle, finished);
      expect(state.playbook).toMatchObject({
        name: 'serviceOutage',
        status: 'completed',
        outcome: 'false_alarm',
      });
      expect(stepIds(state)).toEqual(['start:done', 'verify_outage:done']);
      expect(c.count('deletePods') + c.count('scaleTo') + c.count('inspectWorkload')).toBe(0);
      expect(state.status).toBe('triggered');
      expect(
        h.recorder.posts.some((p) => p.text.includes(`${incidentId}`) && p.text.includes('false alarm')),
      ).toBe(true);
    });
  });

  it('down: restarts exactly the pods not Running, waits for Ready, settles, recovers → mitigated', async () => {
    const c = cluster({ replicas: 2, stuckPods: 2 });
    c.health = [false, true];
    const stuck = c.pods.filter((p) => p.phase !== 'Running').map((p) => p.name);
    await withIncident(SERVICE_DOWN, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '10 seconds');
      expect(state.playbook?.outcome).toBe('recovered');
      expect(stepIds(state)).toEqual([
        'start:done',
        'verify_outage:done',
        'check_infrastructure:done',
        'recent_deployments:done',
        'cooldown:done',
        'restart_unhealthy_pods:done',
        'wait_for_ready:done',
        'settle:done',
        'verify_recovery:done',
      ]);
      expect(c.calls.filter((x) => x.method === 'deletePods').map((x) => x.arg)).toEqual([
        { namespace: 'production', names: stuck },
      ]);
      expect(c.pods.every((p) => p.phase === 'Running')).toBe(true);
      expect(state.status).toBe('mitigated');
      const settle = state.playbook?.steps.find((s) => s.id === 'settle');
      const recovery = state.playbook?.steps.find((s) => s.id === 'verify_recovery');
      // The procedures' `sleep 30` is a durable timer of 30 s before the second health check.
      expect(Date.parse(recovery?.at ?? '') - Date.parse(settle?.at ?? '')).toBeGreaterThanOrEqual(30_000);
      expect(state.timeline.filter((t) => t.kind === 'playbook_step').length).toBeGreaterThanOrEqual(9);
    });
  });

  it('still down: escalates P1 → P0 with "Service restart failed" (playbook_failed)', async () => {
    const c = cluster({ stuckPods: 1 });
    c.health = [false];
    await withIncident(SERVICE_DOWN, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '10 seconds');
      expect(state.playbook).toMatchObject({ outcome: 'escalated', reason: 'Service restart failed' });
      expect(state.severity).toBe('P0');
      expect(
        state.timeline.some(
          (t) => t.kind === 'escalated' && t.message === 'playbook_failed: Service restart failed',
        ),
      ).toBe(true);
      expect(state.notified.some((n) => n.reason === 'playbook_failed')).toBe(true);
    });
  });

  it('pods that never become Ready: the wait is bounded (300 s) and the run escalates', async () => {
    const c = cluster({ replicas: 1, stuckPods: 1 });
    // Running but never Ready (a failing readiness probe): not deleted, never ready.
    if (c.pods[0]) c.pods[0].ready = false;
    c.health = [false];
    await withIncident(SERVICE_DOWN, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '30 seconds');
      const wait = state.playbook?.steps.find((s) => s.id === 'wait_for_ready');
      expect(wait?.status).toBe('failed');
      expect(wait?.summary).toContain('within 5 min: 0/1');
      expect(state.playbook?.outcome).toBe('escalated');
    });
  });
});

describe('high error rate playbook', () => {
  it('below 1 %: a false alarm, nothing scaled', async () => {
    const c = cluster();
    c.errorRates = [0.005];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished);
      expect(state.playbook).toMatchObject({ outcome: 'false_alarm' });
      expect(state.playbook?.reason).toContain('0.50%');
      expect(c.count('scaleTo')).toBe(0);
      expect(state.severity).toBe('P2');
    });
  });

  it('between 1 % and 5 %: gradual scale-up, 5 min, improving, monitored to < 0.1 % → recovered', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.03, 0.015, 0.004, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished);
      expect(state.playbook?.outcome).toBe('recovered');
      expect(
        c.calls.filter((x) => x.method === 'scaleTo').map((x) => (x.arg as { replicas: number }).replicas),
      ).toEqual([4]);
      expect(c.count('rollbackTo') + c.count('setCircuitBreaker')).toBe(0);
      expect(c.replicas).toBe(4);
      expect(state.status).toBe('mitigated');
    });
  });

  it('still above 2 % after 5 min: emergency — scale, roll back the rollout younger than 2 h, circuit breaker', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
    c.errorRates = [0.03, 0.03, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished);
      expect(state.playbook?.outcome).toBe('recovered');
      expect(
        c.calls.filter((x) => x.method === 'scaleTo').map((x) => (x.arg as { replicas: number }).replicas),
      ).toEqual([4, 6]);
      expect(c.calls.filter((x) => x.method === 'rollbackTo').map((x) => x.arg)).toEqual([
        { namespace: 'production', deployment: 'pno-physics-bench', revision: 1 },
      ]);
      expect(c.breaker).toBe('open');
      expect(c.revisions.find((r) => r.revision === c.currentTemplate)?.images).toEqual([
        'registry.example/pno-physics-bench:1.0.0',
      ]);
      const rollback = state.playbook?.steps.find((s) => s.id === 'rollback');
      expect(rollback?.changed).toMatchObject({ object: 'deployment/pno-physics-bench' });
    });
  });

  it('above 5 % with an old rollout: no rollback; not recovering in 30 min → escalated P2 → P1', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 5 * 60] });
    c.errorRates = [0.08];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '1 minute');
      expect(state.playbook).toMatchObject({
        outcome: 'escalated',
        reason: 'Failed to recover from high error rate',
      });
      expect(
        c.calls.filter((x) => x.method === 'scaleTo').map((x) => (x.arg as { replicas: number }).replicas),
      ).toEqual([5]);
      expect(c.count('rollbackTo')).toBe(0);
      expect(state.playbook?.steps.find((s) => s.id === 'rollback')?.status).toBe('skipped');
      expect(c.breaker).toBe('open');
      expect(state.severity).toBe('P1');
      // Every minute for 30 minutes: the first check and one after each of 29 waits.
      expect(state.playbook?.steps.filter((s) => s.id.startsWith('monitor_recovery')).length).toBe(30);
    });
  });

  it('CPU above 90 % of requests: scales up by the policy step before mitigating; never above maxReplicas', async () => {
    const c = cluster({ replicas: 3, cpuRequestMillicores: 1000, memoryRequestMi: 1000 });
    c.usageShare = { cpu: 0.95, memory: 0.2 };
    c.errorRates = [0.08, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, { maxReplicas: 6 }, async ({ handle }) => {
      const state = await until(handle, finished);
      expect(
        c.calls.filter((x) => x.method === 'scaleTo').map((x) => (x.arg as { replicas: number }).replicas),
      ).toEqual([5, 6]);
      expect(state.playbook?.steps.find((s) => s.id === 'resource_pressure')?.summary).toContain(
        'cpu pressure',
      );
    });
  });

  it('dry run: records the plan, touches nothing, posts it for a person; the incident does not escalate', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
    c.errorRates = [0.08];
    await withIncident(HIGH_ERROR_RATE, c, { dryRun: true }, async ({ handle, h }) => {
      const state = await until(handle, finished);
      expect(state.playbook).toMatchObject({ outcome: 'escalated', dryRun: true });
      expect(state.playbook?.reason).toContain('dry run: 3 change(s) planned');
      const planned = state.playbook?.steps.filter((s) => s.status === 'planned').map((s) => s.id);
      expect(planned).toEqual(['emergency_scale_up', 'rollback', 'circuit_breaker']);
      expect(
        c.count('scaleTo') +
          c.count('rollbackTo') +
          c.count('setCircuitBreaker') +
          c.count('claimPlaybookRun'),
      ).toBe(0);
      expect(c.replicas).toBe(3);
      expect(state.severity).toBe('P2');
      expect(state.notified.some((n) => n.reason === 'playbook_failed')).toBe(false);
      expect(h.recorder.posts.some((p) => p.text.includes('Dry run: nothing was applied'))).toBe(true);
    });
  });

  it('no cluster configured: a dry run that says what it could not read', async () => {
    const c = cluster({ cluster: false });
    c.errorRates = [0.08];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished);
      expect(state.playbook?.dryRun).toBe(true);
      expect(state.playbook?.steps[0]?.summary).toContain('no cluster configured');
      expect(state.playbook?.steps.find((s) => s.id === 'check_pods')).toMatchObject({ status: 'planned' });
      expect(c.count('inspectWorkload')).toBe(0);
    });
  });

  it('kill switch: no playbook starts, and engineers cannot run one', async () => {
    const c = cluster();
    await withIncident(HIGH_ERROR_RATE, c, { enabled: false }, async ({ handle }) => {
      await env.sleep('1 minute');
      const state = await handle.query(stateQuery);
      expect(state.playbook).toMatchObject({ status: 'selected', notStarted: 'playbooks.enabled is false' });
      expect(state.investigation).toBeUndefined();
      expect(c.calls).toEqual([]);
      const refused = handle.executeUpdate(OPERATIONS.runPlaybook.update, {
        args: [{ by: 'alice', name: 'highErrorRate' }],
      });
      await expect(refused).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      await expect(refused).rejects.toMatchObject({
        cause: { message: expect.stringContaining('playbooks.enabled: false') },
      });
    });
  });

  it('approval given: the rollback waits for `approve`, then runs', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
    c.errorRates = [0.08, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, { requireApproval: ['rollback'] }, async ({ handle, h }) => {
      const waiting = await until(handle, (s) => s.playbook?.pendingApproval !== undefined, '5 seconds');
      expect(waiting.playbook?.pendingApproval?.stepId).toBe('rollback');
      expect(c.count('rollbackTo')).toBe(0);
      expect(h.recorder.posts.some((p) => p.text.includes('approve') && p.text.includes('rollback'))).toBe(
        true,
      );
      const wrong = handle.executeUpdate(OPERATIONS.approveAction.update, {
        args: [{ by: 'alice', stepId: 'scale_up' }],
      });
      await expect(wrong).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      await handle.executeUpdate(OPERATIONS.approveAction.update, {
        args: [{ by: 'alice', stepId: 'rollback' }],
      });
      const state = await until(handle, finished, '10 seconds');
      expect(c.count('rollbackTo')).toBe(1);
      expect(state.playbook?.outcome).toBe('recovered');
      expect(state.playbook?.steps.find((s) => s.id === 'approval_rollback_2')?.summary).toContain(
        'approved by alice',
      );
    });
  });

  it('approval refused: the rollback is skipped, the rest goes on', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
    c.errorRates = [0.08, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, { requireApproval: ['rollback'] }, async ({ handle }) => {
      await until(handle, (s) => s.playbook?.pendingApproval !== undefined, '5 seconds');
      await handle.executeUpdate(OPERATIONS.approveAction.update, {
        args: [{ by: 'bob', stepId: 'rollback', approve: false }],
      });
      const state = await until(handle, finished, '10 seconds');
      expect(c.count('rollbackTo')).toBe(0);
      expect(c.breaker).toBe('open');
      expect(state.playbook?.outcome).toBe('recovered');
    });
  });

  it('approval timed out: nobody answered within approvalTimeout → failed, escalated', async () => {
    const c = cluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
    c.errorRates = [0.08];
    await withIncident(
      HIGH_ERROR_RATE,
      c,
      { requireApproval: ['rollback'], approvalTimeout: '10m' },
      async ({ handle }) => {
        const state = await until(handle, finished, '1 minute');
        expect(state.playbook?.outcome).toBe('failed');
        expect(state.playbook?.reason).toContain('nobody approved step rollback');
        expect(c.count('rollbackTo')).toBe(0);
        expect(state.severity).toBe('P1');
      },
    );
  });

  it('403 from the API: not retried; the run stops and escalates with the reason', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.08];
    c.refuse('scaleTo');
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '10 seconds');
      expect(state.playbook?.outcome).toBe('failed');
      expect(state.playbook?.reason).toMatch(/403 forbidden: User "playbook" cannot scaleTo/);
      expect(c.count('scaleTo')).toBe(1);
      expect(c.count('rollbackTo') + c.count('setCircuitBreaker')).toBe(0);
      expect(state.severity).toBe('P1');
    });
  });

  it('5xx: retried with backoff, the run goes on; retries exhausted → failed', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.005];
    c.failTransiently('queryPrometheus', 2);
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '5 seconds');
      expect(state.playbook?.outcome).toBe('false_alarm');
      expect(c.count('queryPrometheus')).toBe(3);
    });
    const d = cluster({ replicas: 3 });
    d.failTransiently('queryPrometheus', 99);
    await withIncident(HIGH_ERROR_RATE, d, { attempts: 3 }, async ({ handle }) => {
      const state = await until(handle, finished, '5 seconds');
      expect(state.playbook?.outcome).toBe('failed');
      expect(state.playbook?.reason, JSON.stringify(state.playbook)).toContain('gave up after 3 attempts');
      expect(d.count('queryPrometheus')).toBe(3);
    });
  });

  it('cancelled by an engineer during the 5-minute wait; the incident goes on unchanged', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.03];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      await until(
        handle,
        (s) => (s.playbook?.steps ?? []).some((st) => st.id === 'standard_wait'),
        '5 seconds',
      );
      await handle.executeUpdate(OPERATIONS.cancelPlaybook.update, {
        args: [{ by: 'alice', reason: 'doing it by hand' }],
      });
      const state = await until(handle, finished, '5 seconds');
      expect(state.playbook).toMatchObject({ status: 'cancelled', outcome: 'cancelled' });
      expect(state.severity).toBe('P2');
      expect(state.status).toBe('triggered');
      expect(c.count('rollbackTo')).toBe(0);
    });
  });

  it('cooldown: a second run on the same deployment within 15 min is refused (failed), after it runs', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.03, 0.015, 0.0005, 0.03, 0.015, 0.0005];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle }) => {
      await until(handle, finished);
      await handle.executeUpdate(OPERATIONS.runPlaybook.update, {
        args: [{ by: 'alice', name: 'highErrorRate' }],
      });
      const second = await until(handle, (s) => finished(s) && s.playbook?.runs === 2, '10 seconds');
      expect(second.playbook?.outcome).toBe('failed');
      expect(second.playbook?.reason).toContain('cooldown');
      expect(c.count('scaleTo')).toBe(1);
    });
  });
});

describe('performance degradation playbook', () => {
  it('fewer than 5 replicas: scales to 5, waits for the rollout and 2 min; under 500 ms → recovered', async () => {
    const c = cluster({ replicas: 2 });
    c.latencies = [800, 400];
    await withIncident(HIGH_LATENCY, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '20 seconds');
      expect(state.playbook?.outcome).toBe('recovered');
      expect(
        c.calls.filter((x) => x.method === 'scaleTo').map((x) => (x.arg as { replicas: number }).replicas),
      ).toEqual([5]);
      expect(stepIds(state)).toContain('rollout_status:done');
      expect(state.status).toBe('mitigated');
    });
  });

  it('improved by more than 20 %: monitoring, measured on the interval until within SLA', async () => {
    const c = cluster({ replicas: 5 });
    c.latencies = [800, 600, 550, 450];
    await withIncident(HIGH_LATENCY, c, {}, async ({ handle }) => {
      const monitoring = await until(handle, (s) => s.playbook?.outcome === 'monitoring', '20 seconds');
      expect(monitoring.playbook?.status).toBe('running');
      expect(c.count('scaleTo')).toBe(0);
      const state = await until(handle, finished, '1 minute');
      expect(state.playbook?.outcome).toBe('recovered');
    });
  });

  it('no significant improvement: escalates P2 → P1 "Performance degradation not resolved"', async () => {
    const c = cluster({ replicas: 5 });
    c.latencies = [800, 780];
    await withIncident(HIGH_LATENCY, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '20 seconds');
      expect(state.playbook).toMatchObject({
        outcome: 'escalated',
        reason: 'Performance degradation not resolved',
      });
      expect(state.severity).toBe('P1');
    });
  });

  it('no Prometheus data: measures with a probe of the health URL', async () => {
    const c = cluster({ replicas: 5 });
    c.latencies = [undefined];
    c.health = [true];
    await withIncident(HIGH_LATENCY, c, {}, async ({ handle }) => {
      const state = await until(handle, finished, '20 seconds');
      expect(stepIds(state)).toContain('measure_performance_probe:done');
      // The probe answers in 12 ms: within the SLA.
      expect(state.playbook?.outcome).toBe('recovered');
    });
  });
});

describe('investigation and the incident', () => {
  it('an incident with no playbook gets the initial investigation posted in its thread', async () => {
    const c = cluster({ stuckPods: 1, revisionAgesMinutes: [60] });
    c.firing = [{ alertname: 'PodCrash', severity: 'warning', labels: { service: 'pno-physics-bench' } }];
    await withIncident(POD_CRASH, c, {}, async ({ handle, incidentId, h }) => {
      const state = await until(handle, (s) => s.investigation?.status === 'completed', '5 seconds');
      expect(state.playbook).toBeUndefined();
      expect(state.investigation?.summary).toContain('rollout history: rev 1');
      expect(state.investigation?.summary).toContain('PodCrash');
      expect(state.investigation?.summary).toContain('not Running');
      // Posted by a delivery that follows the findings (it may still be on its way).
      const post = await eventually('the findings posted', () =>
        h.recorder.posts.find((p) => p.text.includes('initial investigation')),
      );
      expect(post.text).toContain(incidentId);
    });
  });

  it('resolving the incident cancels its running playbook', async () => {
    const c = cluster({ replicas: 3 });
    c.errorRates = [0.03];
    await withIncident(HIGH_ERROR_RATE, c, {}, async ({ handle, incidentId }) => {
      await until(
        handle,
        (s) => (s.playbook?.steps ?? []).some((st) => st.id === 'standard_wait'),
        '5 seconds',
      );
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'fixed by hand' }],
      });
      const child = env.client.workflow.getHandle(playbookRunId(incidentId, 1));
      const result = (await child.result()) as { outcome: string };
      expect(result.outcome).toBe('cancelled');
    });
  });
});
