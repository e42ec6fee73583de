import type { PlaybookName } from './alert-mapping.ts';
import type { WorkloadRef } from './cluster.ts';
import type { Policy, PlaybooksPolicy } from './policy.ts';
import type { Severity } from './severity.ts';

/**
 * The remediation playbooks' vocabulary and their pure decisions: what a run is started with, what each
 * step records, how it ends, and the procedures' thresholds as functions the workflows and tests share.
 */

export type { PlaybookName };
export const PLAYBOOK_NAMES = ['serviceOutage', 'highErrorRate', 'performanceDegradation'] as const;

/**
 * How a run ends. `recovered`: the service is healthy again (the incident is mitigated); `monitoring`:
 * improving, still measured; `false_alarm`: the first check found nothing wrong, nothing was touched;
 * `escalated`: the remedy did not work (the procedures' "escalating" branches); `failed`: the steps could
 * not run (403, retries exhausted, a bound reached, no approval); `cancelled` by an engineer.
 */
export const PLAYBOOK_OUTCOMES = [
  'false_alarm',
  'recovered',
  'monitoring',
  'escalated',
  'failed',
  'cancelled',
] as const;
export type PlaybookOutcome = (typeof PLAYBOOK_OUTCOMES)[number];

/**
 * What a step is: a read (health probe, query, inspection), a wait, an action on the cluster, an
 * approval, or a decision between branches. Actions listed in `playbooks.requireApproval` wait for one.
 */
export type StepKind =
  | 'read'
  | 'wait'
  | 'decision'
  | 'approval'
  | 'delete'
  | 'rollback'
  | 'scale_up'
  | 'scale_down'
  | 'circuit_breaker'
  | 'claim';

/**
 * `done`: it ran; `planned`: dry run, or it could not be read (no cluster) — nothing was done;
 * `skipped`: not needed, or refused by an engineer; `failed`: it could not run.
 */
export type StepStatus = 'done' | 'planned' | 'skipped' | 'failed' | 'awaiting_approval';

/** One step of a run as the timeline and `incident show` record it: what it read and what it changed. */
export interface PlaybookStep {
  /** Unique within the run (`delete_pods`, `scale_up_2`): what `incident approve <id> <step>` names. */
  id: string;
  kind: StepKind;
  status: StepStatus;
  at: string;
  /** One line: what happened. */
  summary: string;
  read?: { source: string; query?: string; value: string | number | null; threshold?: string };
  changed?: { object: string; before: string; after: string };
}

/** What a playbook run is started with (the incident passes only what the run needs, never the policy). */
export interface PlaybookInput {
  incidentId: string;
  /** The incident's workflow: steps and the outcome are signalled to it. */
  incidentWorkflowId: string;
  name: PlaybookName;
  trigger: 'automatic' | 'manual';
  requestedBy: string;
  target: PlaybookTarget;
  settings: PlaybooksPolicy;
}

/** The service a run works on, from the policy's `service`. */
export interface PlaybookTarget extends WorkloadRef {
  serviceId: string;
  healthUrl: string;
  dependencies: string[];
  prometheusJob: string;
}

/** A run's step, with the approval it now waits for (null: none any more). */
export interface PlaybookStepReport {
  runId: string;
  step: PlaybookStep;
  pendingApproval?: PendingApproval | null;
}

/** How a run ended, as the incident applies it. */
export interface PlaybookResult {
  runId: string;
  name: PlaybookName;
  outcome: PlaybookOutcome;
  /** The procedures' text for an escalation ("Service restart failed"), or why it failed / was a false alarm. */
  reason: string;
  /** For `escalated` and `failed`: the severity the procedures raise the incident to (never lowered). */
  escalateTo?: Severity;
  dryRun: boolean;
  /** True while the run goes on (`monitoring`): the incident records it; another result follows. */
  interim?: boolean;
  /** Steps not reported yet, applied before the outcome (runs that report in batches). */
  reports?: PlaybookStepReport[];
}

/** The initial investigation of an incident with no playbook: what it found, to post in the thread. */
export interface InvestigationResult {
  runId: string;
  summary: string;
  steps: number;
  /** A read failed (or the investigation itself did): what it found is partial. */
  incomplete?: boolean;
  /** Cancelled by the incident's resolution. */
  cancelled?: boolean;
}

export interface InvestigationInput {
  incidentId: string;
  incidentWorkflowId: string;
  target: PlaybookTarget;
  settings: PlaybooksPolicy;
}

/** A step waiting for an engineer's decision, as the incident shows it. */
export interface PendingApproval {
  stepId: string;
  kind: StepKind;
  summary: string;
  requestedAt: string;
  /** When nobody answering escalates. */
  until: string;
}

/** An engineer's answer to a pending approval, forwarded by the incident to the run. */
export interface ApprovalDecision {
  stepId: string;
  approve: boolean;
  by: string;
}

/** The incident's record of its playbook (`show --json`'s `playbook`). `selected`: chosen, not started. */
export interface PlaybookRecord {
  name: PlaybookName;
  status: 'selected' | 'running' | 'completed' | 'cancelled';
  outcome?: PlaybookOutcome;
  reason?: string;
  runId?: string;
  trigger?: 'automatic' | 'manual';
  requestedBy?: string;
  startedAt?: string;
  finishedAt?: string;
  dryRun?: boolean;
  /** How many runs this incident has had (the next run's id counts from it). */
  runs?: number;
  pendingApproval?: PendingApproval;
  /** Why it was not started (kill switch). */
  notStarted?: string;
  steps: PlaybookStep[];
}

/** The procedures' escalation of each playbook: severity and reason (escalate_incident.py's arguments). */
export const PLAYBOOK_ESCALATION: Readonly<Record<PlaybookName, { severity: Severity; reason: string }>> = {
  serviceOutage: { severity: 'P0', reason: 'Service restart failed' },
  highErrorRate: { severity: 'P1', reason: 'Failed to recover from high error rate' },
  performanceDegradation: { severity: 'P1', reason: 'Performance degradation not resolved' },
};

/** The workflow id of an incident's `n`-th playbook run (1-based): a child of the incident's workflow. */
export function playbookRunId(incidentId: string, n: number): string {
  return `${incidentId}-playbook-${n}`;
}

/** The workflow id of an incident's initial investigation. */
export function investigationRunId(incidentId: string): string {
  return `${incidentId}-investigation`;
}

/** What the incident asks its workflow to do with playbook runs (child workflows). */
export type PlaybookCommand =
  | { kind: 'start'; runId: string; input: PlaybookInput }
  | { kind: 'investigate'; runId: string; input: InvestigationInput }
  | { kind: 'cancel'; runId: string }
  | { kind: 'approve'; runId: string; decision: ApprovalDecision };

/** The service a playbook works on, from the policy (the procedures' names for a snapshot that lacks them). */
export function playbookTarget(policy: Policy): PlaybookTarget {
  const s: Partial<Policy['service']> & Pick<Policy['service'], 'id'> = policy.service;
  const deployment = s.deployment ?? 'pno-physics-bench';
  const target: PlaybookTarget = {
    namespace: s.namespace ?? 'production',
    deployment,
    selector: s.selector || `app=${deployment}`,
    serviceId: s.id,
    healthUrl: s.healthUrl ?? '',
    dependencies: [...(s.dependencies ?? [])],
    prometheusJob: s.prometheusJob ?? '',
  };
  if (s.serviceName) target.serviceName = s.serviceName;
  if (s.ingress) target.ingress = s.ingress;
  if (s.hpa) target.hpa = s.hpa;
  return target;
}

/** The replica count to scale to: `current + step`, never above the ceiling; undefined when already there. */
export function scaleUpTarget(current: number, step: number, ceiling: number): number | undefined {
  const target = Math.min(current + step, ceiling);
  return target > current ? target : undefined;
}

/** The high-error-rate playbook's first decision (procedures: < 1 % false alarm, > 5 % emergency). */
export function errorRateVerdict(
  rate: number,
  p: PlaybooksPolicy['highErrorRate'],
): 'false_alarm' | 'emergency' | 'standard' {
  if (rate < p.falseAlarmBelow) return 'false_alarm';
  return rate > p.emergencyAbove ? 'emergency' : 'standard';
}

/** The performance playbook's verdict after scaling: within SLA, improving (> 20 %), or not. */
export function latencyVerdict(
  beforeMs: number,
  afterMs: number,
  p: PlaybooksPolicy['performanceDegradation'],
): { verdict: 'recovered' | 'monitoring' | 'escalated'; improvement: number } {
  const improvement = beforeMs > 0 ? (beforeMs - afterMs) / beforeMs : 0;
  if (afterMs < p.slaMs) return { verdict: 'recovered', improvement };
  if (improvement > p.improvedBy) return { verdict: 'monitoring', improvement };
  return { verdict: 'escalated', improvement };
}

/** Whether the newest rollout is recent enough to roll back (procedures: younger than 2 h). */
export function rollbackWorthy(createdAt: string, now: number, youngerThanMs: number): boolean {
  const at = Date.parse(createdAt);
  return Number.isFinite(at) && now - at < youngerThanMs;
}

/** A percentage with two decimals, as the procedures log rates (`2.50%`). */
export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(2)}%`;
}

/**
 * `ratio` as a percentage beside the `threshold` it is compared with: two decimals, or as many more as it takes
 * not to print a value below or above the threshold as equal to it (0.0996 % is not "0.10% back below 0.10%").
 */
export function percentBeside(ratio: number, threshold: number): string {
  // 12 decimals tell apart any two rates that differ by more than float noise.
  for (let digits = 2; digits < 12; digits++) {
    const shown = (ratio * 100).toFixed(digits);
    if (ratio === threshold || shown !== (threshold * 100).toFixed(digits)) return `${shown}%`;
  }
  return `${(ratio * 100).toFixed(12)}%`;
}
