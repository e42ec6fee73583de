import type { Policy } from './policy.ts';
import type { Severity } from './severity.ts';

/**
 * What a severity decides about an incident's course, besides its escalation:
 * whether it needs a post-mortem, whether it resolves itself once quiet, what
 * must be on record before it is resolved, how often a status update is due,
 * and which channels hear of its resolution. The policy states each as a field
 * of the severity (`severities.P0.postmortemRequired`, …).
 *
 * A running incident carries the policy snapshot it started with, and a
 * snapshot taken before a rule became a field lacks it: a missing field means
 * the procedures' value ({@link PROCEDURES_SEVERITY_RULES}), which is what the
 * code did before the rule was configurable. So old incidents keep their course.
 */
export interface SeverityRules {
  postmortemRequired: boolean;
  autoResolve: boolean;
  resolveRequires: { commander: boolean; securityEvaluation: boolean };
  /** Milliseconds between due status updates; null: none (the next update is due at the response target). */
  updateReminderEvery: number | null;
  /** Channel keys that get the resolution notice besides the severity's `posts`. */
  resolutionPosts: string[];
}

const M = 60_000;
const H = 60 * M;

/**
 * The procedures' values: P0/P1 need a post-mortem ("Post-Incident Procedures"),
 * P2/P3 resolve themselves once their alerts stay clear, a P0 needs an incident
 * commander and a security evaluation (the decision script's
 * `commander_required`, `security_eval_required`), and updates are due as often
 * as the progress-update deadlines (30 min P0, 2 h P1) or the response target
 * (4 h P2). Resolution posts: none, as before `resolutionPosts` existed.
 */
export const PROCEDURES_SEVERITY_RULES: Readonly<Record<Severity, Readonly<SeverityRules>>> = {
  P0: {
    postmortemRequired: true,
    autoResolve: false,
    resolveRequires: { commander: true, securityEvaluation: true },
    updateReminderEvery: 30 * M,
    resolutionPosts: [],
  },
  P1: {
    postmortemRequired: true,
    autoResolve: false,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: 2 * H,
    resolutionPosts: [],
  },
  P2: {
    postmortemRequired: false,
    autoResolve: true,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: 4 * H,
    resolutionPosts: [],
  },
  P3: {
    postmortemRequired: false,
    autoResolve: true,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: null,
    resolutionPosts: [],
  },
};

/** The severity's rules from the policy, each missing field taken from {@link PROCEDURES_SEVERITY_RULES}. */
export function severityRules(policy: Policy, severity: Severity): SeverityRules {
  const stated = policy.severities[severity];
  const procedures = PROCEDURES_SEVERITY_RULES[severity];
  return {
    postmortemRequired: stated.postmortemRequired ?? procedures.postmortemRequired,
    autoResolve: stated.autoResolve ?? procedures.autoResolve,
    resolveRequires: { ...(stated.resolveRequires ?? procedures.resolveRequires) },
    updateReminderEvery:
      stated.updateReminderEvery === undefined ? procedures.updateReminderEvery : stated.updateReminderEvery,
    resolutionPosts: [...(stated.resolutionPosts ?? procedures.resolutionPosts)],
  };
}

/** Channel keys that get the incident's resolution notice: its posts, then its resolution posts, once each. */
export function resolutionChannels(policy: Policy, severity: Severity): string[] {
  return [
    ...new Set([...policy.severities[severity].posts, ...severityRules(policy, severity).resolutionPosts]),
  ];
}
