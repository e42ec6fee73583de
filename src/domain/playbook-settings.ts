import { parseDuration } from './duration.ts';
import type { PlaybooksPolicy, Policy } from './policy.ts';

/**
 * The playbooks' settings as workflow code reads them, without zod: the Temporal SDK evaluates every module
 * of the workflow bundle again for each new workflow run, and building the policy's schema (policy.ts) costs
 * far more than a workflow's own code, for a schema no workflow ever parses with. Workflow code imports these
 * from here; policy.ts re-exports them and builds its `playbooks` schema's defaults from
 * {@link playbookDefaults}, so the values live only here.
 */

/** A playbook step kind that waits for an engineer's approval when listed in `requireApproval`. */
export const APPROVABLE_STEPS = ['delete', 'rollback', 'scale_down'] as const;

type ApprovableStep = (typeof APPROVABLE_STEPS)[number];

/** What "enable the circuit breaker" patches: a ConfigMap key, or an annotation on the Deployment. */
type CircuitBreaker =
  { configMap: string; key: string; value: string } | { annotation: string; value: string };

const ms = (text: string) => parseDuration(text) as number;

/**
 * The procedures' values of the playbooks' parameters ("Resolution Playbooks"): the policy schema's
 * defaults (policy.ts documents each field), in the schema's key order. A new object on every call.
 */
export function playbookDefaults() {
  const requireApproval: ApprovableStep[] = [];
  const circuitBreaker: CircuitBreaker = { configMap: 'pno-flags', key: 'circuit-breaker', value: 'open' };
  return {
    enabled: true,
    dryRun: false,
    maxReplicas: 20,
    cooldown: ms('15m'),
    approvalTimeout: ms('10m'),
    requireApproval,
    circuitBreaker,
    attempts: 5,
    pollEvery: ms('5s'),
    serviceOutage: { readyTimeout: ms('300s'), settle: ms('30s') },
    highErrorRate: {
      errorRateQuery:
        'sum(rate(http_requests_total{job="pno-physics-bench",status=~"5.."}[5m])) / sum(rate(http_requests_total{job="pno-physics-bench"}[5m]))',
      errorPatternsQuery:
        'sum by (status) (rate(http_requests_total{job="pno-physics-bench",status=~"5.."}[5m]))',
      falseAlarmBelow: 0.01,
      emergencyAbove: 0.05,
      stillHighAbove: 0.02,
      recoveredBelow: 0.001,
      pressureAbove: 0.9,
      usageWindow: '5m',
      scaleStep: 2,
      gradualStep: 1,
      standardWait: ms('5m'),
      rollbackIfYoungerThan: ms('2h'),
      monitorEvery: ms('1m'),
      monitorFor: ms('30m'),
    },
    performanceDegradation: {
      latencyQuery:
        'histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{job="pno-physics-bench"}[5m])) by (le)) * 1000',
      slaMs: 500,
      cpuMillicores: 1500,
      memoryMi: 3200,
      usageWindow: '5m',
      minReplicas: 5,
      rolloutTimeout: ms('300s'),
      remeasureAfter: ms('2m'),
      improvedBy: 0.2,
      monitorEvery: ms('5m'),
      monitorFor: ms('30m'),
    },
  };
}

/**
 * The policy's playbook parameters; the procedures' values for a snapshot taken before playbooks ran (an
 * incident that continued as new keeps the policy it started with).
 */
export function playbookSettings(policy: Policy): PlaybooksPolicy {
  return (policy as Partial<Policy>).playbooks ?? playbookDefaults();
}
