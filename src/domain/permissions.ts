import type { IncidentState } from './incident.ts';
import type { Policy } from './policy.ts';
import type { Role, Severity } from './severity.ts';
import { ROLES, moreSevere } from './severity.ts';
import { OPERATION_NAMES } from './operation-names.ts';
import type { ListedOperation } from './operation-names.ts';

/**
 * Who may do what to an incident: the policy's `permissions`, each a rule of
 * roles (or `anyone`: every person of the policy), optionally per severity.
 * Kept apart from the schema (policy.ts) so that the workflow's bundle holds
 * only these plain rules and their defaults.
 */

/** `anyone`: every person of the policy; else the roles that may. */
export type RoleRule = 'anyone' | readonly Role[];
/** One rule for every severity, or a rule per severity of the incident (a severity left out: anyone). */
export type PermissionRule = RoleRule | { readonly [S in Severity]?: RoleRule };

/** What a permission is about: the operations, with a change of severity split by its direction. */
export type Permission = Exclude<ListedOperation, 'changeSeverity'> | 'raiseSeverity' | 'lowerSeverity';
export const PERMISSIONS: readonly Permission[] = OPERATION_NAMES.flatMap((op): Permission[] =>
  op === 'changeSeverity' ? ['raiseSeverity', 'lowerSeverity'] : [op],
);
export type Permissions = { readonly [P in Permission]: PermissionRule };

/** The roles that run a response and its remediation (the on-call engineer and those who direct them). */
const RESPONDERS: readonly Role[] = ['on-call-engineer', 'engineering-lead', 'incident-commander'];
/** Those who run a P0 (the commander: "Response Team: Incident Commander + …") or a P1 (the lead). */
const RESPONSE_LEADS: readonly Role[] = ['incident-commander', 'engineering-lead'];

/**
 * The procedures' roles as permissions. The procedures name who responds at each severity ("Response
 * Team"), who is engaged when (the escalation matrix) and what a P0 needs before it closes (a commander
 * and a security evaluation, the decision script's `commander_required` and `security_evaluation`): the
 * gates mean something only if nobody can meet them alone.
 */
export const DEFAULT_PERMISSIONS: Permissions = {
  // "On-call Acknowledges": whoever answers the page (the primary, or the secondary who "takes over if
  // primary becomes unavailable"). Acknowledging only stops the acknowledgment deadline.
  acknowledge: 'anyone',
  // Every responder "provides status updates during incidents".
  postUpdate: 'anyone',
  // Manual escalation asks for more people ("required skills not available", "potential security
  // implications discovered"): it only ever adds to the response, so anyone may.
  escalate: 'anyone',
  // A higher severity also only adds to the response ("alert severity increases during investigation").
  raiseSeverity: 'anyone',
  // Lowering takes people off an incident: at P0/P1 only those who run the response decide it (the
  // commander, P0's response team; the engineering lead, P1's); a P2's response team is the on-call
  // engineer, who may call it a P3. (P3 cannot be lowered.)
  lowerSeverity: { P0: RESPONSE_LEADS, P1: RESPONSE_LEADS, P2: RESPONDERS },
  // The commander is engaged through the lead (the decision script pages the lead, then the commander):
  // the lead, a commander handing over, or those above them appoint one; nobody appoints themselves.
  assignCommander: ['engineering-lead', 'incident-commander', 'vp-engineering', 'cto'],
  // The evaluation P0 requires is the security team's ("Security Team (if security-related)").
  recordSecurityEvaluation: ['security-team'],
  // Mitigation closes nothing: a P0/P1 still waits for its resolution (below), a P2/P3 for a quiet period.
  mitigate: 'anyone',
  // Closing a P0/P1 is the commander's or the lead's call (the "Validate Fix" → "Close Incident" step of
  // the response they run); a P2's on-call engineer and a P3's development team close their own.
  resolve: { P0: RESPONSE_LEADS, P1: RESPONSE_LEADS },
  // The resolution playbooks act on production (scale, roll back, delete pods): those who run the
  // response, not those informed of it (security, VP, CTO, the development team).
  runPlaybook: RESPONDERS,
  cancelPlaybook: RESPONDERS,
  approveAction: RESPONDERS,
};

/** The policy's permissions; the defaults for a snapshot taken before permissions were a policy field. */
export function permissionsOf(policy: Policy): Permissions {
  const own = (policy as { permissions?: Partial<Permissions> }).permissions;
  return own === undefined ? DEFAULT_PERMISSIONS : { ...DEFAULT_PERMISSIONS, ...own };
}

/**
 * The roles `handle` holds on `state`'s incident: those the person lists, those whose `roles:` entry lists
 * them, and `incident-commander` for the incident's own commander. Own properties only.
 */
export function rolesOf(policy: Policy, handle: string, state?: IncidentState): Role[] {
  if (!Object.hasOwn(policy.people, handle)) return [];
  const own = policy.people[handle]?.roles ?? [];
  return ROLES.filter(
    (role) =>
      own.includes(role) ||
      (Object.hasOwn(policy.roles, role) && (policy.roles[role]?.includes(handle) ?? false)) ||
      (role === 'incident-commander' && state?.commander === handle),
  );
}

/** The permission an operation needs; a change of severity by its direction. */
export function permissionFor(
  op: Permission | 'changeSeverity',
  state: IncidentState,
  to?: Severity,
): Permission {
  if (op !== 'changeSeverity') return op;
  return to !== undefined && moreSevere(to, state.severity) ? 'raiseSeverity' : 'lowerSeverity';
}

/** The rule that applies to `state`'s incident at its current severity. */
export function ruleFor(permissions: Permissions, permission: Permission, severity: Severity): RoleRule {
  const rule = Object.hasOwn(permissions, permission)
    ? permissions[permission]
    : DEFAULT_PERMISSIONS[permission];
  if (rule === 'anyone' || Array.isArray(rule)) return rule as RoleRule;
  const bySeverity = rule as { readonly [S in Severity]?: RoleRule };
  return (Object.hasOwn(bySeverity, severity) ? bySeverity[severity] : undefined) ?? 'anyone';
}

const WORDS: { readonly [P in Permission]: (severity: Severity) => string } = {
  acknowledge: (s) => `acknowledge a ${s} incident`,
  postUpdate: (s) => `post updates to a ${s} incident`,
  escalate: (s) => `escalate a ${s} incident`,
  raiseSeverity: (s) => `raise the severity of a ${s} incident`,
  lowerSeverity: (s) => `lower the severity of a ${s} incident`,
  assignCommander: (s) => `assign the commander of a ${s} incident`,
  recordSecurityEvaluation: (s) => `record the security evaluation of a ${s} incident`,
  mitigate: (s) => `mark a ${s} incident mitigated`,
  resolve: (s) => `resolve a ${s} incident`,
  runPlaybook: (s) => `run a playbook on a ${s} incident`,
  cancelPlaybook: (s) => `cancel the playbook of a ${s} incident`,
  approveAction: (s) => `approve playbook steps of a ${s} incident`,
};

/**
 * Why `by` may not do what needs `permission` on `state`'s incident, or undefined when they may. `by` is a
 * person of the policy or an integration (which holds no role: it passes `anyone` only). The reason says
 * which roles may (`incident-commander or engineering-lead`) and which `by` holds.
 */
export function forbidden(
  policy: Policy,
  state: IncidentState,
  permission: Permission,
  by: string,
): string | undefined {
  const rule = ruleFor(permissionsOf(policy), permission, state.severity);
  if (rule === 'anyone') return undefined;
  const held = rolesOf(policy, by, state);
  if (rule.some((role) => held.includes(role))) return undefined;
  const holds = held.length > 0 ? `${by} is ${held.join(', ')}` : `${by} holds no role`;
  return `${by} may not ${WORDS[permission](state.severity)}: only ${rule.join(' or ')} may (${holds}; policy permissions.${permission})`;
}
