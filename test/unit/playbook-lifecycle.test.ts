/*
 * How an incident treats its playbook runs, driven directly (no Temporal): which run starts, what each
 * outcome does to the incident (the procedures' severities, never lowered; `playbook_failed`), the
 * engineers' run/cancel/approve rules, stale reports, and the playbooks' pure thresholds.
 */
import { describe, expect, it } from 'vitest';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import type { LifecycleBehaviour } from '../../src/domain/lifecycle.ts';
import {
  errorRateVerdict,
  latencyVerdict,
  rollbackWorthy,
  scaleUpTarget,
} from '../../src/domain/playbook.ts';
import type { PlaybookResult } from '../../src/domain/playbook.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { playbookSettings } from '../../src/domain/playbook-settings.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import type { TestAlert } from '../support/alerts.ts';
import { policyWith } from '../support/policy.ts';

const T0 = Date.parse('2025-03-03T10:00:00Z');
const M = 60_000;
const policy = policyWith({ service: { healthUrl: 'http://127.0.0.1:9/health' } });

function open(alert: TestAlert, options: { policy?: Policy; behaviour?: Partial<LifecycleBehaviour> } = {}) {
  const p = options.policy ?? policy;
  const run = new IncidentLifecycle({ incidentId: 'INC-0000cafe' }, p, {
    workflowId: 'alertgroup-1',
    namespace: 'default',
    ...(options.behaviour ? { behaviour: options.behaviour } : {}),
  });
  run.receiveAlerts(
    toAlertBatch(
      p,
      webhookPayloadSchema.parse(alertmanagerPayload({ alerts: [alert], groupKey: 'g' })),
      1000,
    ),
    T0,
  );
  run.outbox.splice(0);
  return { run, state: run.state as IncidentState };
}

const HIGH_ERROR_RATE: TestAlert = { labels: { alertname: 'HighErrorRate', severity: 'warning' } };
const SERVICE_DOWN: TestAlert = { labels: { alertname: 'ServiceDown', severity: 'page' } };
const LATENCY_P0: TestAlert = { labels: { alertname: 'HighLatency', priority: 'P0' } };

function result(over: Partial<PlaybookResult> & Pick<PlaybookResult, 'outcome'>): PlaybookResult {
  return { runId: 'INC-0000cafe-playbook-1', name: 'highErrorRate', reason: 'why', dryRun: false, ...over };
}

describe('an incident and its playbook', () => {
  it('opening starts the mapping rule’s playbook as run 1 with the policy’s target and settings', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    expect(state.playbook).toMatchObject({
      name: 'highErrorRate',
      status: 'running',
      runs: 1,
      trigger: 'automatic',
    });
    expect(run.playbookCommands).toEqual([
      {
        kind: 'start',
        runId: 'INC-0000cafe-playbook-1',
        input: expect.objectContaining({
          name: 'highErrorRate',
          incidentWorkflowId: 'alertgroup-1',
          target: expect.objectContaining({
            namespace: 'production',
            deployment: 'pno-physics-bench',
            selector: 'app=pno-physics-bench',
            hpa: 'pno-hpa',
            healthUrl: 'http://127.0.0.1:9/health',
          }),
          settings: playbookSettings(policy),
        }),
      },
    ]);
  });

  it('before the playbooks patch the playbook is only selected and the operations are refused', () => {
    const { run, state } = open(HIGH_ERROR_RATE, { behaviour: { playbooks: false } });
    expect(state.playbook).toEqual({ name: 'highErrorRate', status: 'selected', steps: [] });
    expect(run.playbookCommands).toEqual([]);
    expect(run.refusal('runPlaybook', { by: 'alice', name: 'serviceOutage' })).toMatch(
      /began before playbooks/,
    );
  });

  it('recovered: posted, and the incident is mitigated by the playbook', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    run.playbookFinished(result({ outcome: 'recovered', reason: 'System recovered' }), T0 + 10 * M);
    expect(state.status).toBe('mitigated');
    expect(state.playbook).toMatchObject({ status: 'completed', outcome: 'recovered' });
    expect(state.timeline.at(-1)).toMatchObject({ kind: 'mitigated', actor: 'playbook:highErrorRate' });
  });

  it('escalated: raised to the procedures’ severity (P2 → P1) and one level up with playbook_failed', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    const level = state.escalationLevel;
    run.playbookFinished(
      result({ outcome: 'escalated', reason: 'Failed to recover from high error rate', escalateTo: 'P1' }),
      T0 + 40 * M,
    );
    expect(state.severity).toBe('P1');
    expect(state.escalationLevel).toBe(level + 1);
    expect(state.notified.filter((n) => n.reason === 'playbook_failed').length).toBeGreaterThan(0);
    expect(state.timeline.map((t) => t.message)).toContain(
      'playbook_failed: Failed to recover from high error rate',
    );
  });

  it('never lowers: a P0 whose performance playbook escalates (P1) stays P0 and still escalates', () => {
    const { run, state } = open(LATENCY_P0);
    expect(state.severity).toBe('P0');
    const level = state.escalationLevel;
    run.playbookFinished(
      result({
        runId: 'INC-0000cafe-playbook-1',
        name: 'performanceDegradation',
        outcome: 'escalated',
        reason: 'Performance degradation not resolved',
        escalateTo: 'P1',
      }),
      T0 + 10 * M,
    );
    expect(state.severity).toBe('P0');
    expect(state.escalationLevel).toBe(level + 1);
  });

  it('failed service outage on a P0: stays P0, escalates with the reason', () => {
    const { run, state } = open(SERVICE_DOWN);
    run.playbookFinished(
      result({
        name: 'serviceOutage',
        outcome: 'failed',
        reason: 'step x could not run: 403 forbidden',
        escalateTo: 'P0',
      }),
      T0 + M,
    );
    expect(state.severity).toBe('P0');
    expect(state.timeline.some((t) => t.kind === 'escalated' && t.message.includes('403 forbidden'))).toBe(
      true,
    );
  });

  it('false alarm: said in the thread, the incident stays open for a person', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    run.playbookFinished(
      result({ outcome: 'false_alarm', reason: 'False alarm - error rate 0.40%' }),
      T0 + M,
    );
    expect(state.status).toBe('triggered');
    const posts = run.outbox.filter((o) => o.kind === 'post');
    expect(posts.length).toBeGreaterThan(0);
    expect(posts.every((o) => o.kind === 'post' && o.text.includes('stays open for a person to close'))).toBe(
      true,
    );
  });

  it('monitoring is interim: the run stays running until its final outcome', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    run.playbookFinished(result({ outcome: 'monitoring', interim: true }), T0 + M);
    expect(state.playbook).toMatchObject({ status: 'running', outcome: 'monitoring' });
    run.playbookFinished(result({ outcome: 'recovered' }), T0 + 5 * M);
    expect(state.playbook).toMatchObject({ status: 'completed', outcome: 'recovered' });
  });

  it('a report from a run that is not the current one changes nothing but the timeline', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    run.playbookFinished(
      result({ runId: 'INC-0000cafe-playbook-9', outcome: 'escalated', escalateTo: 'P0' }),
      T0 + M,
    );
    expect(state.severity).toBe('P2');
    expect(state.playbook?.status).toBe('running');
  });

  it('approvals: only the step that waits, then forwarded to the run; cancel only a running one', () => {
    const { run, state } = open(HIGH_ERROR_RATE);
    run.playbookCommands.splice(0);
    expect(run.refusal('approveAction', { by: 'alice', stepId: 'rollback' })).toMatch(/no playbook step/);
    run.playbookStep(
      {
        runId: 'INC-0000cafe-playbook-1',
        step: {
          id: 'approval_rollback',
          kind: 'approval',
          status: 'awaiting_approval',
          at: '',
          summary: 'wait',
        },
        pendingApproval: {
          stepId: 'rollback',
          kind: 'rollback',
          summary: 'roll back',
          requestedAt: '',
          until: '',
        },
      },
      T0 + M,
    );
    expect(
      run.outbox.some((o) => o.kind === 'post' && o.text.includes('incident approve INC-0000cafe rollback')),
    ).toBe(true);
    expect(run.refusal('approveAction', { by: 'alice', stepId: 'scale_up' })).toMatch(/"rollback" does/);
    expect(run.refusal('approveAction', { by: 'mallory', stepId: 'rollback' })).toMatch(/unknown engineer/);
    run.apply('approveAction', { by: 'alice', stepId: 'rollback', approve: false }, T0 + 2 * M);
    expect(run.playbookCommands).toEqual([
      {
        kind: 'approve',
        runId: 'INC-0000cafe-playbook-1',
        decision: { stepId: 'rollback', approve: false, by: 'alice' },
      },
    ]);
    expect(state.playbook?.pendingApproval).toBeUndefined();
    expect(run.refusal('runPlaybook', { by: 'alice', name: 'serviceOutage' })).toMatch(/already running/);
    run.playbookFinished(result({ outcome: 'cancelled' }), T0 + 3 * M);
    expect(run.refusal('cancelPlaybook', { by: 'alice' })).toMatch(/no running playbook/);
  });

  it('resolving cancels a running playbook', () => {
    const { run } = open(HIGH_ERROR_RATE);
    run.playbookCommands.splice(0);
    run.apply('resolve', { by: 'alice', rootCause: 'fixed' }, T0 + M);
    expect(run.playbookCommands).toEqual([{ kind: 'cancel', runId: 'INC-0000cafe-playbook-1' }]);
  });

  it('no playbook: the initial investigation runs, and its findings go to the thread', () => {
    const { run, state } = open({ labels: { alertname: 'PodCrash', severity: 'warning' } });
    expect(run.playbookCommands.map((c) => c.kind)).toEqual(['investigate']);
    run.investigationFinished(
      { runId: 'INC-0000cafe-investigation', summary: 'rollout history: rev 3', steps: 4 },
      T0 + M,
    );
    expect(state.investigation).toMatchObject({ status: 'completed', summary: 'rollout history: rev 3' });
    expect(run.outbox.some((o) => o.kind === 'post' && o.text.includes('• rollout history: rev 3'))).toBe(
      true,
    );
  });
});

describe('the procedures’ thresholds', () => {
  const p = playbookSettings(policy);
  it('error rate: < 1 % false alarm, > 5 % emergency, else standard', () => {
    expect(errorRateVerdict(0.0099, p.highErrorRate)).toBe('false_alarm');
    expect(errorRateVerdict(0.01, p.highErrorRate)).toBe('standard');
    expect(errorRateVerdict(0.05, p.highErrorRate)).toBe('standard');
    expect(errorRateVerdict(0.0501, p.highErrorRate)).toBe('emergency');
  });
  it('latency: < 500 ms recovered, > 20 % better monitoring, else escalated', () => {
    expect(latencyVerdict(800, 499, p.performanceDegradation).verdict).toBe('recovered');
    expect(latencyVerdict(800, 500, p.performanceDegradation).verdict).toBe('monitoring');
    expect(latencyVerdict(800, 640, p.performanceDegradation).verdict).toBe('escalated');
    expect(latencyVerdict(800, 639, p.performanceDegradation).verdict).toBe('monitoring');
  });
  it('scale targets are absolute and bounded by the ceiling', () => {
    expect(scaleUpTarget(3, 2, 20)).toBe(5);
    expect(scaleUpTarget(19, 2, 20)).toBe(20);
    expect(scaleUpTarget(20, 2, 20)).toBeUndefined();
  });
  it('rollback only for a rollout younger than 2 h', () => {
    const now = T0;
    expect(
      rollbackWorthy(new Date(now - 119 * M).toISOString(), now, p.highErrorRate.rollbackIfYoungerThan),
    ).toBe(true);
    expect(
      rollbackWorthy(new Date(now - 120 * M).toISOString(), now, p.highErrorRate.rollbackIfYoungerThan),
    ).toBe(false);
  });
  it('the defaults are the procedures’ values', () => {
    expect(p).toMatchObject({
      enabled: true,
      maxReplicas: 20,
      cooldown: 15 * M,
      approvalTimeout: 10 * M,
      serviceOutage: { readyTimeout: 300_000, settle: 30_000 },
      highErrorRate: {
        falseAlarmBelow: 0.01,
        emergencyAbove: 0.05,
        stillHighAbove: 0.02,
        recoveredBelow: 0.001,
        scaleStep: 2,
        standardWait: 5 * M,
        rollbackIfYoungerThan: 120 * M,
        monitorEvery: M,
        monitorFor: 30 * M,
      },
      performanceDegradation: {
        slaMs: 500,
        cpuMillicores: 1500,
        memoryMi: 3200,
        minReplicas: 5,
        remeasureAfter: 2 * M,
        improvedBy: 0.2,
        monitorEvery: 5 * M,
      },
    });
    expect(p.highErrorRate.errorRateQuery).toBe(
      'sum(rate(http_requests_total{job="pno-physics-bench",status=~"5.."}[5m])) / sum(rate(http_requests_total{job="pno-physics-bench"}[5m]))',
    );
  });
});
