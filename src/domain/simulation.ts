import { ackDueAt, dueEscalations, matrixDeadlines, openEscalation, timeBasedDueAt } from './escalation.ts';
import type { EscalationReason, IncidentFacts, Notification } from './escalation.ts';
import { impactOrDefault } from './people.ts';
import type { Policy } from './policy.ts';
import type { Channel, Impact, Role, Severity } from './severity.ts';

/**
 * `incident simulate`: what an incident would notify if nobody acted, computed
 * with the same pure engine the workflow runs ({@link dueEscalations}), so the
 * table an engineer reads is the table the incident follows.
 */

export interface SimulateOptions {
  severity: Severity;
  impact?: Impact;
  securityRelated?: boolean;
  /** Acknowledge this long after opening; never when absent (`--no-ack`). */
  acknowledgeAfterMs?: number;
  /** When the simulated incident opens (epoch ms). */
  at: number;
}

/**
 * The simulation's end: the last one-shot deadline (matrix rows, acknowledgment,
 * time-based), so every role and once-only trigger has had its chance;
 * repeating `no_progress` is shown up to there. `at` when there is none.
 */
export function simulationHorizon(policy: Policy, facts: IncidentFacts): number {
  const deadlines = [
    facts.createdAt,
    ...matrixDeadlines(policy, facts).map((m) => m.at),
    ackDueAt(policy, facts) ?? facts.createdAt,
    timeBasedDueAt(policy, facts) ?? facts.createdAt,
  ];
  return Math.max(...deadlines);
}

/**
 * What an unresolved incident would notify, in time order: opens it at
 * `opts.at`, then runs {@link dueEscalations} at each wake-up until the
 * {@link simulationHorizon} (included).
 */
export function simulate(policy: Policy, opts: SimulateOptions): Notification[] {
  const facts: IncidentFacts = {
    severity: opts.severity,
    impact: impactOrDefault(opts.impact),
    securityRelated: opts.securityRelated ?? false,
    createdAt: opts.at,
  };
  if (opts.acknowledgeAfterMs !== undefined) facts.acknowledgedAt = opts.at + opts.acknowledgeAfterMs;
  const horizon = simulationHorizon(policy, facts);
  const opened = openEscalation(policy, facts);
  const out = [...opened.notifications];
  let { state, nextWakeAt } = opened;
  while (nextWakeAt !== undefined && nextWakeAt <= horizon) {
    const due = dueEscalations(policy, facts, state, nextWakeAt);
    out.push(...due.notifications);
    state = due.state;
    nextWakeAt = due.nextWakeAt;
  }
  return out;
}

/** One row of `incident simulate --json`'s `steps`. */
export interface SimulationStep {
  afterSeconds: number;
  level: number;
  role: Role | null;
  person: string | null;
  channels: Channel[];
  reason: EscalationReason;
}

/** Notifications as `simulate --json` steps, relative to the simulated opening `at`. */
export function simulationSteps(notifications: readonly Notification[], at: number): SimulationStep[] {
  return notifications.map((n) => ({
    afterSeconds: Math.round((n.at - at) / 1000),
    level: n.level,
    role: n.role,
    person: n.person,
    channels: [...n.channels],
    reason: n.reason,
  }));
}
