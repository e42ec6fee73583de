import { addBusinessTime, nextBusinessDayStart } from './business-hours.ts';
import { impactOrDefault, peopleInRole } from './people.ts';
import type { Deadline, Policy } from './policy.ts';
import { ROLES } from './severity.ts';
import type { Channel, Impact, Role, Severity } from './severity.ts';

/**
 * The escalation engine (DESIGN.md, "Escalation semantics"). Pure: the incident
 * workflow keeps an {@link EscalationState} (plain JSON), sleeps until
 * `nextWakeAt`, calls {@link dueEscalations} again whenever it wakes or a fact
 * changes (acknowledged, progress update, mitigated or re-firing, impact,
 * severity, resolved), and sends the notifications it gets back. `incident
 * simulate` runs the same functions (`simulation.ts`).
 *
 * - Level 0 at once: the severity's `notify` role on its channels (`initial`).
 * - Triggers move the incident one level up: `ack_timeout`, `time_based`,
 *   `impact` fire once; `no_progress` fires whenever its deadline passes
 *   without a progress update (next deadline: fire time + window);
 *   `severity_increase`, `manual`, `playbook_failed` only through
 *   {@link escalateNow}. A level-up notifies the escalation targets not yet
 *   notified, or records one entry with role and person null.
 * - The matrix is a deadline per role: a role not yet engaged by then is
 *   notified (reason `matrix`) at the current level.
 * - Facts stamped later than `now` have not happened yet.
 *
 * Same-instant order: level-ups before matrix engagements (so a role reached by
 * a level-up is not engaged again by the matrix); among level-ups `impact`,
 * `ack_timeout`, `time_based`, `no_progress`; matrix roles in {@link ROLES} order.
 * When a call catches up on several overdue items, they fire in order of their
 * deadlines, each stamped `now`.
 */

export const ESCALATION_REASONS = [
  'initial',
  'ack_timeout',
  'no_progress',
  'time_based',
  'matrix',
  'impact',
  'severity_increase',
  'manual',
  'playbook_failed',
] as const;
export type EscalationReason = (typeof ESCALATION_REASONS)[number];

/** Level-ups that only happen on request. */
export type ImmediateReason = 'manual' | 'severity_increase' | 'impact' | 'playbook_failed';

/** Triggers that fire at most once per incident (recorded in `EscalationState.fired`). */
export type OnceTrigger = 'ack_timeout' | 'time_based' | 'impact';

/** Facts about the incident the engine decides from. */
export interface IncidentFacts {
  severity: Severity;
  impact: Impact;
  securityRelated: boolean;
  createdAt: number;
  acknowledgedAt?: number;
  /** Set while mitigated; cleared when alerts fire again. */
  mitigatedAt?: number;
  resolvedAt?: number;
  /** Last progress update by an engineer (postUpdate); undefined = none yet. */
  lastProgressAt?: number;
}

export interface Notification {
  at: number;
  level: number;
  /** Null only for a level-up that reached nobody new. */
  role: Role | null;
  /** Null when nobody is reached: a level-up with nobody new, or a role nobody fills. */
  person: string | null;
  channels: Channel[];
  reason: EscalationReason;
}

/** What the engine remembers between calls; plain JSON. */
export interface EscalationState {
  /** Current escalation level; 0 after the first notification. Never decreases. */
  level: number;
  /** Once-only triggers that have fired ({@link OnceTrigger}). */
  fired: string[];
  /** Every notification so far, in order (including null-person entries). */
  notified: Notification[];
  /** When `no_progress` last fired. */
  lastNoProgressAt?: number;
  /** The pending `no_progress` deadline as of the last call (informational; recomputed every call). */
  noProgressDueAt?: number;
}

export interface EscalationResult {
  state: EscalationState;
  notifications: Notification[];
}

export interface DueResult extends EscalationResult {
  /** Earliest instant after `now` at which something may become due; undefined when nothing can. */
  nextWakeAt: number | undefined;
}

/** Something that will fire at `at` unless facts change first. */
export interface PendingEscalation {
  at: number;
  reason: 'ack_timeout' | 'no_progress' | 'time_based' | 'impact' | 'matrix';
  /** The role a `matrix` deadline engages. */
  role?: Role;
}

/** Same-instant order of automatic level-ups; matrix engagements come after all of them. */
const LEVEL_UP_ORDER = ['impact', 'ack_timeout', 'time_based', 'no_progress'] as const;
type AutoLevelUp = (typeof LEVEL_UP_ORDER)[number];

function happened(at: number | undefined, now: number): boolean {
  return at !== undefined && at <= now;
}

function isResolved(facts: IncidentFacts, now: number): boolean {
  return happened(facts.resolvedAt, now);
}

/** The role's matrix contact methods, or email when the role has no matrix row. */
export function contactChannels(policy: Policy, role: Role): Channel[] {
  return [...(policy.escalation.matrix[role]?.contact ?? ['email'])];
}

/** The decision script's `get_escalation_targets`: roles a level-up reaches, in order, without repeats. */
export function escalationTargets(policy: Policy, facts: Pick<IncidentFacts, 'severity' | 'impact'>): Role[] {
  const { targets } = policy.escalation;
  const rule = policy.escalation.rules[facts.severity];
  const roles: Role[] = [...targets.always];
  if (rule?.commanderRequired) roles.push(...targets.whenCommanderRequired);
  if (rule?.securityEvaluationRequired) roles.push(...targets.whenSecurityEvaluationRequired);
  if (impactOrDefault(facts.impact) === 'critical') roles.push(...targets.whenImpactCritical);
  return [...new Set(roles)];
}

/** Absolute instant of a matrix deadline for an incident opened at `createdAt`. */
export function matrixDeadlineAt(policy: Policy, deadline: Deadline, createdAt: number): number {
  return deadline.kind === 'after'
    ? createdAt + deadline.ms
    : nextBusinessDayStart(createdAt, policy.businessHours);
}

/** Matrix rows that apply to the incident: role and absolute deadline, in {@link ROLES} order. */
export function matrixDeadlines(policy: Policy, facts: IncidentFacts): { role: Role; at: number }[] {
  const rows: { role: Role; at: number }[] = [];
  for (const role of ROLES) {
    const row = policy.escalation.matrix[role];
    const deadline = row?.deadlines[facts.severity];
    if (!row || !deadline) continue;
    if (row.securityOnly && !facts.securityRelated) continue;
    rows.push({ role, at: matrixDeadlineAt(policy, deadline, facts.createdAt) });
  }
  return rows;
}

/** When time-based escalation is due for the incident's severity, or undefined when its severity has none. */
export function timeBasedDueAt(policy: Policy, facts: IncidentFacts): number | undefined {
  const rule = policy.escalation.rules[facts.severity];
  if (!rule) return undefined;
  return rule.businessTime
    ? addBusinessTime(facts.createdAt, rule.autoEscalateAfter, policy.businessHours)
    : facts.createdAt + rule.autoEscalateAfter;
}

/** When the acknowledgment deadline passes, or undefined when the severity has none. */
export function ackDueAt(policy: Policy, facts: IncidentFacts): number | undefined {
  const within = policy.escalation.acknowledgeWithin[facts.severity];
  return within === undefined ? undefined : facts.createdAt + within;
}

/** The pending `no_progress` deadline: the window after the latest of opening, progress update and last firing. */
export function noProgressDueAt(
  policy: Policy,
  facts: IncidentFacts,
  state: Pick<EscalationState, 'lastNoProgressAt'>,
  now: number,
): number | undefined {
  const window = policy.escalation.progressUpdateWithin[facts.severity];
  if (window === undefined) return undefined;
  let base = facts.createdAt;
  if (facts.lastProgressAt !== undefined && facts.lastProgressAt <= now)
    base = Math.max(base, facts.lastProgressAt);
  if (state.lastNoProgressAt !== undefined) base = Math.max(base, state.lastNoProgressAt);
  return base + window;
}

function cloneState(state: EscalationState): EscalationState {
  const copy: EscalationState = {
    level: state.level,
    fired: [...state.fired],
    notified: state.notified.map((n) => ({ ...n, channels: [...n.channels] })),
  };
  if (state.lastNoProgressAt !== undefined) copy.lastNoProgressAt = state.lastNoProgressAt;
  if (state.noProgressDueAt !== undefined) copy.noProgressDueAt = state.noProgressDueAt;
  return copy;
}

function notifiedPeople(state: EscalationState): Set<string> {
  const people = new Set<string>();
  for (const n of state.notified) if (n.person !== null) people.add(n.person);
  return people;
}

/** A role is engaged once it has an entry of its own or any of its people has been notified. */
function isEngaged(policy: Policy, state: EscalationState, role: Role): boolean {
  if (state.notified.some((n) => n.role === role)) return true;
  const people = notifiedPeople(state);
  return peopleInRole(policy, role).some((p) => people.has(p));
}

/**
 * Notifications reaching `roles` at `level`: one per person not yet notified,
 * one null-person entry for a role nobody fills (once per role).
 */
function reach(
  policy: Policy,
  state: EscalationState,
  roles: readonly Role[],
  level: number,
  at: number,
  reason: EscalationReason,
  channelsFor: (role: Role) => Channel[],
): Notification[] {
  const people = notifiedPeople(state);
  const rolesWithEntry = new Set(state.notified.map((n) => n.role));
  const out: Notification[] = [];
  for (const role of roles) {
    const inRole = peopleInRole(policy, role);
    if (inRole.length === 0) {
      if (!rolesWithEntry.has(role)) {
        out.push({ at, level, role, person: null, channels: channelsFor(role), reason });
        rolesWithEntry.add(role);
      }
      continue;
    }
    for (const person of inRole) {
      if (people.has(person)) continue;
      people.add(person);
      out.push({ at, level, role, person, channels: channelsFor(role), reason });
    }
  }
  return out;
}

/** Moves `state` one level up (mutating it) and returns the notifications. */
function levelUp(
  policy: Policy,
  facts: IncidentFacts,
  state: EscalationState,
  now: number,
  reason: EscalationReason,
): Notification[] {
  state.level += 1;
  const reached = reach(policy, state, escalationTargets(policy, facts), state.level, now, reason, (role) =>
    contactChannels(policy, role),
  );
  const out: Notification[] =
    reached.length > 0
      ? reached
      : [{ at: now, level: state.level, role: null, person: null, channels: [], reason }];
  state.notified.push(...out);
  return out;
}

type Candidate =
  | { at: number; rank: number; kind: 'level-up'; reason: AutoLevelUp }
  | { at: number; rank: number; kind: 'matrix'; role: Role };

function levelUpCandidate(at: number, reason: AutoLevelUp): Candidate {
  return { at, rank: LEVEL_UP_ORDER.indexOf(reason), kind: 'level-up', reason };
}

/** Everything that may still fire, unordered; deadlines may lie before `now` (overdue). */
function candidates(
  policy: Policy,
  facts: IncidentFacts,
  state: EscalationState,
  now: number,
  matrix: readonly { role: Role; at: number }[],
  timeBased: number | undefined,
): Candidate[] {
  const out: Candidate[] = [];
  const fired = new Set(state.fired);
  const mitigated = happened(facts.mitigatedAt, now);
  if (impactOrDefault(facts.impact) === 'critical' && !fired.has('impact')) {
    out.push(levelUpCandidate(now, 'impact'));
  }
  const ack = ackDueAt(policy, facts);
  if (ack !== undefined && !fired.has('ack_timeout') && !mitigated && !happened(facts.acknowledgedAt, now)) {
    out.push(levelUpCandidate(ack, 'ack_timeout'));
  }
  if (timeBased !== undefined && !fired.has('time_based') && !mitigated) {
    out.push(levelUpCandidate(timeBased, 'time_based'));
  }
  const progress = noProgressDueAt(policy, facts, state, now);
  if (progress !== undefined) out.push(levelUpCandidate(progress, 'no_progress'));
  matrix.forEach(({ role, at }, i) => {
    if (!isEngaged(policy, state, role))
      out.push({ at, rank: LEVEL_UP_ORDER.length + i, kind: 'matrix', role });
  });
  return out;
}

function byDeadline(a: Candidate, b: Candidate): number {
  return a.at - b.at || a.rank - b.rank;
}

/** Fires everything due at `now` (mutating `state`). */
function runDue(policy: Policy, facts: IncidentFacts, state: EscalationState, now: number): DueResult {
  const notifications: Notification[] = [];
  const matrix = matrixDeadlines(policy, facts);
  const timeBased = timeBasedDueAt(policy, facts);
  let noProgressFired = false;
  // Each pass fires one item; items cannot come back (once-only, engaged roles, no_progress once per call).
  for (let guard = 0; guard < 1_000; guard++) {
    const due = candidates(policy, facts, state, now, matrix, timeBased)
      .filter((c) => c.at <= now && !(noProgressFired && c.kind === 'level-up' && c.reason === 'no_progress'))
      .sort(byDeadline)[0];
    if (!due) break;
    if (due.kind === 'matrix') {
      const reached = reach(policy, state, [due.role], state.level, now, 'matrix', (role) =>
        contactChannels(policy, role),
      );
      state.notified.push(...reached);
      notifications.push(...reached);
      continue;
    }
    if (due.reason === 'no_progress') {
      state.lastNoProgressAt = now;
      noProgressFired = true;
    } else {
      state.fired.push(due.reason);
    }
    notifications.push(...levelUp(policy, facts, state, now, due.reason));
  }
  const upcoming = candidates(policy, facts, state, now, matrix, timeBased)
    .map((c) => c.at)
    .filter((at) => at > now);
  const progress = noProgressDueAt(policy, facts, state, now);
  if (progress !== undefined) state.noProgressDueAt = progress;
  else delete state.noProgressDueAt;
  return { state, notifications, nextWakeAt: upcoming.length > 0 ? Math.min(...upcoming) : undefined };
}

function stopped(state: EscalationState): DueResult {
  const copy = cloneState(state);
  return { state: copy, notifications: [], nextWakeAt: undefined };
}

/**
 * Opens the escalation at `facts.createdAt`: level 0 (the severity's `notify`
 * role on its channels, reason `initial`), then whatever is due at that same
 * instant (an incident opening with critical impact goes to level 1 at once).
 */
export function openEscalation(policy: Policy, facts: IncidentFacts): DueResult {
  const now = facts.createdAt;
  const state: EscalationState = { level: 0, fired: [], notified: [] };
  if (isResolved(facts, now)) return stopped(state);
  const { notify } = policy.severities[facts.severity];
  const initial = reach(policy, state, [notify.role], 0, now, 'initial', () => [...notify.channels]);
  state.notified.push(...initial);
  const due = runDue(policy, facts, state, now);
  return { ...due, notifications: [...initial, ...due.notifications] };
}

/**
 * Fires every trigger and matrix deadline due at `now` and says when to wake
 * next. Does not modify `state`; returns the new one. Call it when a timer set
 * for `nextWakeAt` fires and after every change of the facts.
 */
export function dueEscalations(
  policy: Policy,
  facts: IncidentFacts,
  state: EscalationState,
  now: number,
): DueResult {
  if (isResolved(facts, now)) return stopped(state);
  return runDue(policy, facts, cloneState(state), now);
}

/**
 * One level up at once, for an engineer (`manual`), a raised severity
 * (`severity_increase`, with the new severity in `facts`), impact turning
 * critical (`impact`, which then no longer fires by itself) or a failed
 * playbook. Call {@link dueEscalations} afterwards for deadlines the change
 * made due and for the next wake-up.
 */
export function escalateNow(
  policy: Policy,
  facts: IncidentFacts,
  state: EscalationState,
  now: number,
  reason: ImmediateReason,
): EscalationResult {
  if (isResolved(facts, now)) return { state: cloneState(state), notifications: [] };
  const next = cloneState(state);
  if (reason === 'impact' && !next.fired.includes('impact')) next.fired.push('impact');
  const notifications = levelUp(policy, facts, next, now, reason);
  return { state: next, notifications };
}

/** What will fire, and when, if nothing changes; sorted in firing order (`no_progress` only its next deadline). */
export function pendingEscalations(
  policy: Policy,
  facts: IncidentFacts,
  state: EscalationState,
  now: number,
): PendingEscalation[] {
  if (isResolved(facts, now)) return [];
  return candidates(policy, facts, state, now, matrixDeadlines(policy, facts), timeBasedDueAt(policy, facts))
    .sort(byDeadline)
    .map((c) =>
      c.kind === 'matrix' ? { at: c.at, reason: 'matrix', role: c.role } : { at: c.at, reason: c.reason },
    );
}
