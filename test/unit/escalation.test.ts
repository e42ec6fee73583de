import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ESCALATION_REASONS,
  dueEscalations,
  escalateNow,
  escalationTargets,
  openEscalation,
  pendingEscalations,
} from '../../src/domain/escalation.ts';
import type { EscalationState, IncidentFacts, Notification } from '../../src/domain/escalation.ts';
import { simulate, simulationSteps } from '../../src/domain/simulation.ts';
import type { SimulateOptions } from '../../src/domain/simulation.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { SEVERITIES, moreSevere } from '../../src/domain/severity.ts';
import type { Impact, Severity } from '../../src/domain/severity.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const S = 1_000;
const M = 60 * S;
const H = 60 * M;

const policy = loadDefaultPolicy();
const MONDAY = Date.parse('2025-03-03T10:00:00Z'); // Monday, in business hours
const FRIDAY_16 = Date.parse('2025-03-07T16:00:00Z');
const WEDNESDAY_15 = Date.parse('2025-03-05T15:00:00Z'); // the day before a Thursday holiday
const withThursdayHoliday = policyWith({ businessHours: { holidays: ['2025-03-06'] } });

/** [afterSeconds, level, role, person, channels joined with "+", reason] */
type Row = [number, number, string | null, string | null, string, string];

function rows(notifications: readonly Notification[], at: number): Row[] {
  return simulationSteps(notifications, at).map((s) => [
    s.afterSeconds,
    s.level,
    s.role,
    s.person,
    s.channels.join('+'),
    s.reason,
  ]);
}

function timeline(opts: SimulateOptions, p: Policy = policy): Row[] {
  return rows(simulate(p, opts), opts.at);
}

const P0_NO_ACK: Row[] = [
  [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
  [300, 1, 'engineering-lead', 'bob', 'pager+sms', 'ack_timeout'],
  [300, 1, 'incident-commander', 'carol', 'pager+phone', 'ack_timeout'],
  [300, 1, 'security-team', 'dave', 'pager+sms', 'ack_timeout'],
  [900, 2, null, null, '', 'time_based'],
  [1800, 3, null, null, '', 'no_progress'],
  [3600, 4, null, null, '', 'no_progress'],
  [3600, 4, 'vp-engineering', 'erin', 'phone+email', 'matrix'],
  [5400, 5, null, null, '', 'no_progress'],
  [7200, 6, null, null, '', 'no_progress'],
  [7200, 6, 'cto', 'frank', 'phone+email', 'matrix'],
];

/** P1 opened Monday 10:00 UTC: the CTO's "next day" is Tuesday 09:00, 23 h later. */
const P1_NO_PROGRESS_UNTIL_CTO = (firstLevel: number, from: number): Row[] =>
  [36000, 43200, 50400, 57600, 64800, 72000, 79200]
    .map((s, i) => [s, firstLevel + i, null, null, '', 'no_progress'] as Row)
    .filter((r) => r[0] >= from);

const CASES: { name: string; opts: SimulateOptions; policy?: Policy; expected: Row[] }[] = [
  { name: 'P0, no acknowledgment', opts: { severity: 'P0', at: MONDAY }, expected: P0_NO_ACK },
  {
    name: 'P0 security-related (security already reached by the P0 level-up; its 15 min row is satisfied)',
    opts: { severity: 'P0', at: MONDAY, securityRelated: true },
    expected: P0_NO_ACK,
  },
  {
    name: 'P0 acknowledged at 2 min: no ack_timeout, time_based reaches lead/commander/security',
    opts: { severity: 'P0', at: MONDAY, acknowledgeAfterMs: 2 * M },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [900, 1, 'engineering-lead', 'bob', 'pager+sms', 'time_based'],
      [900, 1, 'incident-commander', 'carol', 'pager+phone', 'time_based'],
      [900, 1, 'security-team', 'dave', 'pager+sms', 'time_based'],
      [1800, 2, null, null, '', 'no_progress'],
      [3600, 3, null, null, '', 'no_progress'],
      [3600, 3, 'vp-engineering', 'erin', 'phone+email', 'matrix'],
      [5400, 4, null, null, '', 'no_progress'],
      [7200, 5, null, null, '', 'no_progress'],
      [7200, 5, 'cto', 'frank', 'phone+email', 'matrix'],
    ],
  },
  {
    name: 'P0 opened with critical impact: level 1 at once reaches VP and CTO',
    opts: { severity: 'P0', at: MONDAY, impact: 'critical' },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [0, 1, 'engineering-lead', 'bob', 'pager+sms', 'impact'],
      [0, 1, 'incident-commander', 'carol', 'pager+phone', 'impact'],
      [0, 1, 'security-team', 'dave', 'pager+sms', 'impact'],
      [0, 1, 'vp-engineering', 'erin', 'phone+email', 'impact'],
      [0, 1, 'cto', 'frank', 'phone+email', 'impact'],
      [300, 2, null, null, '', 'ack_timeout'],
      [900, 3, null, null, '', 'time_based'],
      [1800, 4, null, null, '', 'no_progress'],
      [3600, 5, null, null, '', 'no_progress'],
      [5400, 6, null, null, '', 'no_progress'],
      [7200, 7, null, null, '', 'no_progress'],
    ],
  },
  {
    name: 'P1 Monday 10:00, no acknowledgment',
    opts: { severity: 'P1', at: MONDAY },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [300, 1, 'engineering-lead', 'bob', 'pager+sms', 'ack_timeout'],
      [3600, 2, null, null, '', 'time_based'],
      [7200, 3, null, null, '', 'no_progress'],
      [14400, 4, null, null, '', 'no_progress'],
      [14400, 4, 'incident-commander', 'carol', 'pager+phone', 'matrix'],
      [21600, 5, null, null, '', 'no_progress'],
      [28800, 6, null, null, '', 'no_progress'],
      [28800, 6, 'vp-engineering', 'erin', 'phone+email', 'matrix'],
      ...P1_NO_PROGRESS_UNTIL_CTO(7, 0),
      [82800, 13, 'cto', 'frank', 'phone+email', 'matrix'],
    ],
  },
  {
    name: 'P1 security-related, acknowledged at 2 min: security by the matrix at 1 h',
    opts: { severity: 'P1', at: MONDAY, securityRelated: true, acknowledgeAfterMs: 2 * M },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [3600, 1, 'engineering-lead', 'bob', 'pager+sms', 'time_based'],
      [3600, 1, 'security-team', 'dave', 'pager+sms', 'matrix'],
      [7200, 2, null, null, '', 'no_progress'],
      [14400, 3, null, null, '', 'no_progress'],
      [14400, 3, 'incident-commander', 'carol', 'pager+phone', 'matrix'],
      [21600, 4, null, null, '', 'no_progress'],
      [28800, 5, null, null, '', 'no_progress'],
      [28800, 5, 'vp-engineering', 'erin', 'phone+email', 'matrix'],
      ...P1_NO_PROGRESS_UNTIL_CTO(6, 0),
      [82800, 12, 'cto', 'frank', 'phone+email', 'matrix'],
    ],
  },
  {
    name: 'P1 with critical impact',
    opts: { severity: 'P1', at: MONDAY, impact: 'critical', acknowledgeAfterMs: 2 * M },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [0, 1, 'engineering-lead', 'bob', 'pager+sms', 'impact'],
      [0, 1, 'vp-engineering', 'erin', 'phone+email', 'impact'],
      [0, 1, 'cto', 'frank', 'phone+email', 'impact'],
      [3600, 2, null, null, '', 'time_based'],
      [7200, 3, null, null, '', 'no_progress'],
      [14400, 4, null, null, '', 'no_progress'],
      [14400, 4, 'incident-commander', 'carol', 'pager+phone', 'matrix'],
      [21600, 5, null, null, '', 'no_progress'],
      [28800, 6, null, null, '', 'no_progress'],
      ...P1_NO_PROGRESS_UNTIL_CTO(7, 0),
    ],
  },
  {
    name: 'P2 opened Monday 10:00 in business hours: time_based after 4 business hours reaches the lead',
    opts: { severity: 'P2', at: MONDAY },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [14400, 1, 'engineering-lead', 'bob', 'pager+sms', 'time_based'],
    ],
  },
  {
    name: 'P2 opened Friday 16:00: lead Monday 09:00 (next day), time_based Monday 12:00',
    opts: { severity: 'P2', at: FRIDAY_16 },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [234000, 0, 'engineering-lead', 'bob', 'pager+sms', 'matrix'],
      [244800, 1, null, null, '', 'time_based'],
    ],
  },
  {
    name: 'P2 opened Wednesday 15:00 before a Thursday holiday: Friday 09:00 and 11:00',
    opts: { severity: 'P2', at: WEDNESDAY_15 },
    policy: withThursdayHoliday,
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [151200, 0, 'engineering-lead', 'bob', 'pager+sms', 'matrix'],
      [158400, 1, null, null, '', 'time_based'],
    ],
  },
  {
    name: 'P2 the same Wednesday without the holiday: Thursday 09:00 and 11:00',
    opts: { severity: 'P2', at: WEDNESDAY_15 },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [64800, 0, 'engineering-lead', 'bob', 'pager+sms', 'matrix'],
      [72000, 1, null, null, '', 'time_based'],
    ],
  },
  {
    name: 'P2 security-related (no P2 security deadline, no security target)',
    opts: { severity: 'P2', at: MONDAY, securityRelated: true },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [14400, 1, 'engineering-lead', 'bob', 'pager+sms', 'time_based'],
    ],
  },
  {
    name: 'P2 with critical impact',
    opts: { severity: 'P2', at: MONDAY, impact: 'critical' },
    expected: [
      [0, 0, 'on-call-engineer', 'alice', 'slack+email', 'initial'],
      [0, 1, 'engineering-lead', 'bob', 'pager+sms', 'impact'],
      [0, 1, 'vp-engineering', 'erin', 'phone+email', 'impact'],
      [0, 1, 'cto', 'frank', 'phone+email', 'impact'],
      [14400, 2, null, null, '', 'time_based'],
    ],
  },
  {
    name: 'P3: e-mail to the development team, nothing else',
    opts: { severity: 'P3', at: MONDAY },
    expected: [[0, 0, 'development-team', 'grace', 'email', 'initial']],
  },
  {
    name: 'P3 security-related, acknowledged: the same',
    opts: { severity: 'P3', at: FRIDAY_16, securityRelated: true, acknowledgeAfterMs: 2 * M },
    expected: [[0, 0, 'development-team', 'grace', 'email', 'initial']],
  },
  {
    name: 'P3 with critical impact: lead, VP, CTO at once',
    opts: { severity: 'P3', at: MONDAY, impact: 'critical' },
    expected: [
      [0, 0, 'development-team', 'grace', 'email', 'initial'],
      [0, 1, 'engineering-lead', 'bob', 'pager+sms', 'impact'],
      [0, 1, 'vp-engineering', 'erin', 'phone+email', 'impact'],
      [0, 1, 'cto', 'frank', 'phone+email', 'impact'],
    ],
  },
];

describe('simulate pins the timeline of every severity', () => {
  it.each(CASES)('$name', ({ opts, policy: p, expected }) => {
    expect(timeline(opts, p)).toEqual(expected);
  });

  it('P1 opened Friday 16:00: the CTO is engaged Monday 09:00 (65 h), after 32 no_progress level-ups (level 2 + 32)', () => {
    const got = timeline({ severity: 'P1', at: FRIDAY_16 });
    expect(got.at(-1)).toEqual([234000, 34, 'cto', 'frank', 'phone+email', 'matrix']);
    expect(got.filter((r) => r[5] === 'no_progress').map((r) => r[0])).toEqual(
      Array.from({ length: 32 }, (_, i) => 7200 * (i + 1)),
    );
  });

  it('stamps absolute times and the simulated opening', () => {
    const [first, second] = simulate(policy, { severity: 'P0', at: MONDAY });
    expect(first?.at).toBe(MONDAY);
    expect(second?.at).toBe(MONDAY + 5 * M);
  });
});

// ---- driving the engine as the workflow does --------------------------------

function facts(severity: Severity, extra: Partial<IncidentFacts> = {}): IncidentFacts {
  return { severity, impact: 'medium', securityRelated: false, createdAt: MONDAY, ...extra };
}

describe('openEscalation', () => {
  it('notifies level 0 and wakes at the first deadline', () => {
    const opened = openEscalation(policy, facts('P0'));
    expect(rows(opened.notifications, MONDAY)).toEqual([
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
    ]);
    expect(opened.state.level).toBe(0);
    expect(opened.nextWakeAt).toBe(MONDAY + 5 * M);
    expect(opened.state.noProgressDueAt).toBe(MONDAY + 30 * M);
  });

  it('P2 wakes first at its business-time deadline', () => {
    expect(openEscalation(policy, facts('P2')).nextWakeAt).toBe(MONDAY + 4 * H);
    expect(openEscalation(policy, facts('P2', { createdAt: FRIDAY_16 })).nextWakeAt).toBe(
      Date.parse('2025-03-10T09:00:00Z'),
    );
  });

  it('P3 has nothing to wait for', () => {
    expect(openEscalation(policy, facts('P3')).nextWakeAt).toBeUndefined();
  });

  it('shows a role nobody fills as one entry without a person, and engages it only once', () => {
    const p = policyWith({ roles: { 'incident-commander': [] }, people: { carol: { roles: [] } } });
    const got = rows(simulate(p, { severity: 'P0', at: MONDAY }), MONDAY).slice(0, 5);
    expect(got).toEqual([
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [300, 1, 'engineering-lead', 'bob', 'pager+sms', 'ack_timeout'],
      [300, 1, 'incident-commander', null, 'pager+phone', 'ack_timeout'],
      [300, 1, 'security-team', 'dave', 'pager+sms', 'ack_timeout'],
      [900, 2, null, null, '', 'time_based'],
    ]);
    const opened = openEscalation(
      policyWith({ roles: { 'on-call-engineer': [] }, people: { alice: { roles: [] } } }),
      facts('P2'),
    );
    expect(rows(opened.notifications, MONDAY)).toEqual([
      [0, 0, 'on-call-engineer', null, 'slack+email', 'initial'],
    ]);
  });

  it('notifies a person who fills two roles once; the second role counts as engaged', () => {
    const p = policyWith({ roles: { 'incident-commander': ['bob'] } });
    const got = rows(simulate(p, { severity: 'P0', at: MONDAY }), MONDAY);
    expect(got.slice(0, 4)).toEqual([
      [0, 0, 'on-call-engineer', 'alice', 'pager+sms+phone', 'initial'],
      [300, 1, 'engineering-lead', 'bob', 'pager+sms', 'ack_timeout'],
      [300, 1, 'security-team', 'dave', 'pager+sms', 'ack_timeout'],
      [900, 2, null, null, '', 'time_based'],
    ]);
    expect(got.filter((r) => r[3] === 'bob')).toHaveLength(1);
  });

  it('uses e-mail for a role without a matrix row', () => {
    const p = policyWith({ escalation: { targets: { always: ['development-team'] } } });
    const got = rows(simulate(p, { severity: 'P1', at: MONDAY }), MONDAY);
    expect(got[1]).toEqual([300, 1, 'development-team', 'grace', 'email', 'ack_timeout']);
  });
});

describe('dueEscalations', () => {
  it('acknowledgment stops ack_timeout only', () => {
    const f = facts('P0');
    const opened = openEscalation(policy, f);
    const acked = { ...f, acknowledgedAt: MONDAY + 2 * M };
    const afterAck = dueEscalations(policy, acked, opened.state, MONDAY + 2 * M);
    expect(afterAck.notifications).toEqual([]);
    expect(afterAck.nextWakeAt).toBe(MONDAY + 15 * M);
    const at15 = dueEscalations(policy, acked, afterAck.state, MONDAY + 15 * M);
    expect(at15.notifications.map((n) => [n.level, n.person, n.reason])).toEqual([
      [1, 'bob', 'time_based'],
      [1, 'carol', 'time_based'],
      [1, 'dave', 'time_based'],
    ]);
    expect(at15.nextWakeAt).toBe(MONDAY + 30 * M);
  });

  it('a progress update resets no_progress; after firing, the next deadline is fire time + window', () => {
    let f = facts('P0', { acknowledgedAt: MONDAY + 2 * M });
    let { state } = openEscalation(policy, f);
    state = dueEscalations(policy, f, state, MONDAY + 15 * M).state; // time_based, level 1
    f = { ...f, lastProgressAt: MONDAY + 20 * M };
    let r = dueEscalations(policy, f, state, MONDAY + 20 * M);
    expect(r.notifications).toEqual([]);
    expect(r.nextWakeAt).toBe(MONDAY + 50 * M);
    expect(r.state.noProgressDueAt).toBe(MONDAY + 50 * M);
    expect(dueEscalations(policy, f, r.state, MONDAY + 30 * M).notifications).toEqual([]);
    r = dueEscalations(policy, f, r.state, MONDAY + 50 * M);
    expect(r.notifications.map((n) => [n.level, n.person, n.reason])).toEqual([[2, null, 'no_progress']]);
    expect(r.nextWakeAt).toBe(MONDAY + 60 * M); // the VP's 1 h matrix deadline comes first
    expect(r.state.noProgressDueAt).toBe(MONDAY + 80 * M);
    // An update at 70 min moves the next deadline to 100 min.
    f = { ...f, lastProgressAt: MONDAY + 70 * M };
    const later = dueEscalations(
      policy,
      f,
      dueEscalations(policy, f, r.state, MONDAY + 60 * M).state,
      MONDAY + 70 * M,
    );
    expect(later.state.noProgressDueAt).toBe(MONDAY + 100 * M);
    expect(dueEscalations(policy, f, later.state, MONDAY + 80 * M).notifications).toEqual([]);
  });

  it('a late wake-up fires an overdue no_progress once, not once per missed window', () => {
    const f = facts('P0', { acknowledgedAt: MONDAY + M });
    const { state } = openEscalation(policy, f);
    const r = dueEscalations(policy, f, state, MONDAY + 100 * M);
    expect(r.notifications.map((n) => [n.level, n.person, n.reason])).toEqual([
      [1, 'bob', 'time_based'],
      [1, 'carol', 'time_based'],
      [1, 'dave', 'time_based'],
      [2, null, 'no_progress'],
      [2, 'erin', 'matrix'],
    ]);
    expect(r.notifications.every((n) => n.at === MONDAY + 100 * M)).toBe(true);
    expect(r.nextWakeAt).toBe(MONDAY + 120 * M);
    expect(r.state.noProgressDueAt).toBe(MONDAY + 130 * M);
  });

  it('mitigation stops ack_timeout and time_based; they fire when alerts fire again', () => {
    const f = facts('P0');
    const opened = openEscalation(policy, f);
    const mitigated = { ...f, mitigatedAt: MONDAY + M };
    let r = dueEscalations(policy, mitigated, opened.state, MONDAY + M);
    expect(r.nextWakeAt).toBe(MONDAY + 15 * M); // the lead's matrix deadline, not 5 min
    r = dueEscalations(policy, mitigated, r.state, MONDAY + 15 * M);
    expect(rows(r.notifications, MONDAY)).toEqual([
      [900, 0, 'engineering-lead', 'bob', 'pager+sms', 'matrix'],
    ]);
    expect(r.nextWakeAt).toBe(MONDAY + 30 * M);
    r = dueEscalations(policy, mitigated, r.state, MONDAY + 30 * M);
    expect(rows(r.notifications, MONDAY)).toEqual([
      [1800, 1, 'incident-commander', 'carol', 'pager+phone', 'no_progress'],
      [1800, 1, 'security-team', 'dave', 'pager+sms', 'no_progress'],
    ]);
    // Alerts fire again at 40 min: mitigatedAt is cleared and the overdue triggers fire.
    r = dueEscalations(policy, f, r.state, MONDAY + 40 * M);
    expect(rows(r.notifications, MONDAY)).toEqual([
      [2400, 2, null, null, '', 'ack_timeout'],
      [2400, 3, null, null, '', 'time_based'],
    ]);
  });

  it('resolution stops everything', () => {
    const f = facts('P0', { impact: 'critical' });
    const { state } = openEscalation(policy, facts('P0'));
    const resolved = { ...f, resolvedAt: MONDAY + 3 * M };
    const r = dueEscalations(policy, resolved, state, MONDAY + 3 * H);
    expect(r.notifications).toEqual([]);
    expect(r.nextWakeAt).toBeUndefined();
    expect(r.state.level).toBe(0);
    expect(escalateNow(policy, resolved, state, MONDAY + 3 * H, 'manual').notifications).toEqual([]);
    expect(pendingEscalations(policy, resolved, state, MONDAY + 3 * H)).toEqual([]);
    expect(openEscalation(policy, { ...f, resolvedAt: MONDAY }).notifications).toEqual([]);
  });

  it('impact turning critical fires once and reaches VP and CTO', () => {
    const f = facts('P1');
    let { state } = openEscalation(policy, f);
    state = dueEscalations(policy, f, state, MONDAY + 5 * M).state; // ack_timeout → bob
    const critical = { ...f, impact: 'critical' as Impact };
    const r = dueEscalations(policy, critical, state, MONDAY + 10 * M);
    expect(rows(r.notifications, MONDAY)).toEqual([
      [600, 2, 'vp-engineering', 'erin', 'phone+email', 'impact'],
      [600, 2, 'cto', 'frank', 'phone+email', 'impact'],
    ]);
    expect(r.state.fired).toContain('impact');
    expect(dueEscalations(policy, critical, r.state, MONDAY + 11 * M).notifications).toEqual([]);
  });

  it('escalateNow(impact) counts as the impact trigger', () => {
    const critical = facts('P1', { impact: 'critical', acknowledgedAt: MONDAY + M });
    const { state } = openEscalation(policy, facts('P1'));
    const now = escalateNow(policy, critical, state, MONDAY + 2 * M, 'impact');
    expect(now.notifications.map((n) => [n.level, n.person, n.reason])).toEqual([
      [1, 'bob', 'impact'],
      [1, 'erin', 'impact'],
      [1, 'frank', 'impact'],
    ]);
    expect(dueEscalations(policy, critical, now.state, MONDAY + 2 * M).notifications).toEqual([]);
  });

  it('does not modify the state it is given and works on a JSON round trip', () => {
    const f = facts('P0');
    const opened = openEscalation(policy, f);
    const snapshot = JSON.stringify(opened.state);
    const direct = dueEscalations(policy, f, opened.state, MONDAY + 2 * H);
    expect(JSON.stringify(opened.state)).toBe(snapshot);
    const revived = JSON.parse(snapshot) as EscalationState;
    expect(dueEscalations(policy, f, revived, MONDAY + 2 * H)).toEqual(direct);
    expect(JSON.parse(JSON.stringify(direct.state))).toEqual(direct.state);
  });

  it('lists what is pending in firing order', () => {
    const { state } = openEscalation(policy, facts('P0', { securityRelated: true }));
    expect(pendingEscalations(policy, facts('P0', { securityRelated: true }), state, MONDAY)).toEqual([
      { at: MONDAY + 5 * M, reason: 'ack_timeout' },
      { at: MONDAY + 15 * M, reason: 'time_based' },
      { at: MONDAY + 15 * M, reason: 'matrix', role: 'engineering-lead' },
      { at: MONDAY + 15 * M, reason: 'matrix', role: 'security-team' },
      { at: MONDAY + 30 * M, reason: 'no_progress' },
      { at: MONDAY + 30 * M, reason: 'matrix', role: 'incident-commander' },
      { at: MONDAY + 1 * H, reason: 'matrix', role: 'vp-engineering' },
      { at: MONDAY + 2 * H, reason: 'matrix', role: 'cto' },
    ]);
  });
});

describe('escalateNow', () => {
  it('manual and playbook_failed move one level up; nobody new is recorded once per level-up', () => {
    const f = facts('P1');
    const opened = openEscalation(policy, f);
    const manual = escalateNow(policy, f, opened.state, MONDAY + M, 'manual');
    expect(rows(manual.notifications, MONDAY)).toEqual([
      [60, 1, 'engineering-lead', 'bob', 'pager+sms', 'manual'],
    ]);
    const failed = escalateNow(policy, f, manual.state, MONDAY + 2 * M, 'playbook_failed');
    expect(rows(failed.notifications, MONDAY)).toEqual([[120, 2, null, null, '', 'playbook_failed']]);
    expect(failed.state.level).toBe(2);
    // ack_timeout still fires at 5 min, one level further.
    expect(rows(dueEscalations(policy, f, failed.state, MONDAY + 5 * M).notifications, MONDAY)).toEqual([
      [300, 3, null, null, '', 'ack_timeout'],
    ]);
  });

  it('P2 raised to P0 after 3 h: severity_increase, then the P0 deadlines counted from opening', () => {
    const p2 = facts('P2');
    let { state } = openEscalation(policy, p2);
    const r2 = dueEscalations(policy, p2, state, MONDAY + 3 * H);
    expect(r2.notifications).toEqual([]);
    state = r2.state;
    const p0 = { ...p2, severity: 'P0' as Severity };
    const raised = escalateNow(policy, p0, state, MONDAY + 3 * H, 'severity_increase');
    const due = dueEscalations(policy, p0, raised.state, MONDAY + 3 * H);
    expect(rows([...raised.notifications, ...due.notifications], MONDAY)).toEqual([
      [10800, 1, 'engineering-lead', 'bob', 'pager+sms', 'severity_increase'],
      [10800, 1, 'incident-commander', 'carol', 'pager+phone', 'severity_increase'],
      [10800, 1, 'security-team', 'dave', 'pager+sms', 'severity_increase'],
      [10800, 2, null, null, '', 'ack_timeout'],
      [10800, 3, null, null, '', 'time_based'],
      [10800, 4, null, null, '', 'no_progress'],
      [10800, 4, 'vp-engineering', 'erin', 'phone+email', 'matrix'],
      [10800, 4, 'cto', 'frank', 'phone+email', 'matrix'],
    ]);
    expect(due.nextWakeAt).toBe(MONDAY + 3 * H + 30 * M);
  });

  it('P2 raised to P1 after 30 min keeps counting the P1 deadlines from opening', () => {
    const p2 = facts('P2', { acknowledgedAt: MONDAY + 10 * M });
    const { state } = openEscalation(policy, p2);
    const p1 = { ...p2, severity: 'P1' as Severity };
    const raised = escalateNow(policy, p1, state, MONDAY + 30 * M, 'severity_increase');
    const due = dueEscalations(policy, p1, raised.state, MONDAY + 30 * M);
    expect(rows(raised.notifications, MONDAY)).toEqual([
      [1800, 1, 'engineering-lead', 'bob', 'pager+sms', 'severity_increase'],
    ]);
    expect(due.notifications).toEqual([]);
    expect(due.nextWakeAt).toBe(MONDAY + 1 * H); // P1 time_based from opening
  });
});

describe('escalationTargets', () => {
  it.each([
    ['P0', 'medium', ['engineering-lead', 'incident-commander', 'security-team']],
    ['P0', 'critical', ['engineering-lead', 'incident-commander', 'security-team', 'vp-engineering', 'cto']],
    ['P1', 'high', ['engineering-lead']],
    ['P2', 'critical', ['engineering-lead', 'vp-engineering', 'cto']],
    ['P3', 'low', ['engineering-lead']],
  ] as const)('%s with %s impact', (severity, impact, expected) => {
    expect(escalationTargets(policy, { severity, impact })).toEqual(expected);
  });
});

// ---- properties -------------------------------------------------------------

type Event =
  | {
      after: number;
      kind: 'ack' | 'update' | 'mitigate' | 'refire' | 'impact' | 'manual' | 'playbook_failed' | 'resolve';
    }
  | { after: number; kind: 'severity'; severity: Severity };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    after: fc.integer({ min: 0, max: 30 * H }),
    kind: fc.constantFrom(
      'ack',
      'update',
      'mitigate',
      'refire',
      'impact',
      'manual',
      'playbook_failed',
      'resolve',
    ),
  }) as fc.Arbitrary<Event>,
  fc.record({
    after: fc.integer({ min: 0, max: 30 * H }),
    kind: fc.constant('severity'),
    severity: fc.constantFrom(...SEVERITIES),
  }),
);

interface Scenario {
  severity: Severity;
  impact: Impact;
  securityRelated: boolean;
  at: number;
  events: Event[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  severity: fc.constantFrom(...SEVERITIES),
  impact: fc.constantFrom<Impact>('critical', 'high', 'medium', 'low'),
  securityRelated: fc.boolean(),
  at: fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2025-12-31T00:00:00Z') }),
  events: fc.array(eventArb, { maxLength: 12 }),
});

interface Call {
  now: number;
  notifications: Notification[];
  nextWakeAt: number | undefined;
  resolved: boolean;
}

/** Runs a scenario the way the incident workflow does; returns every engine call. */
function drive(scenario: Scenario): Call[] {
  let f: IncidentFacts = {
    severity: scenario.severity,
    impact: scenario.impact,
    securityRelated: scenario.securityRelated,
    createdAt: scenario.at,
  };
  const calls: Call[] = [];
  const opened = openEscalation(policy, f);
  let state = opened.state;
  let wake = opened.nextWakeAt;
  calls.push({ now: f.createdAt, notifications: opened.notifications, nextWakeAt: wake, resolved: false });
  const events = [...scenario.events].sort((a, b) => a.after - b.after);
  const end = scenario.at + 36 * H;
  for (let step = 0; step < 2_000; step++) {
    const event = events[0];
    const eventAt = event ? scenario.at + event.after : undefined;
    let now: number;
    const notifications: Notification[] = [];
    if (eventAt !== undefined && (wake === undefined || eventAt <= wake)) {
      events.shift();
      now = eventAt;
      switch (event?.kind) {
        case 'ack':
          f = { ...f, acknowledgedAt: f.acknowledgedAt ?? now };
          break;
        case 'update':
          f = { ...f, lastProgressAt: now };
          break;
        case 'mitigate':
          f = { ...f, mitigatedAt: now };
          break;
        case 'refire': {
          const { mitigatedAt: _cleared, ...rest } = f;
          f = rest;
          break;
        }
        case 'impact':
          f = { ...f, impact: 'critical' };
          break;
        case 'resolve':
          f = { ...f, resolvedAt: f.resolvedAt ?? now };
          break;
        case 'manual':
        case 'playbook_failed': {
          const r = escalateNow(policy, f, state, now, event.kind);
          state = r.state;
          notifications.push(...r.notifications);
          break;
        }
        case 'severity':
          if (moreSevere(event.severity, f.severity)) {
            f = { ...f, severity: event.severity };
            const r = escalateNow(policy, f, state, now, 'severity_increase');
            state = r.state;
            notifications.push(...r.notifications);
          }
          break;
        default:
          break;
      }
    } else if (wake !== undefined && wake <= end) {
      now = wake;
    } else {
      break;
    }
    const r = dueEscalations(policy, f, state, now);
    state = r.state;
    wake = r.nextWakeAt;
    notifications.push(...r.notifications);
    calls.push({
      now,
      notifications,
      nextWakeAt: wake,
      resolved: f.resolvedAt !== undefined && f.resolvedAt <= now,
    });
  }
  return calls;
}

describe('escalation properties', () => {
  it('levels are monotonic and rise one at a time; nobody is notified twice; nextWakeAt is never in the past', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const calls = drive(scenario);
        const all = calls.flatMap((c) => c.notifications);
        expect(all[0]?.reason).toBe('initial');
        expect(all[0]?.level).toBe(0);
        let level = 0;
        for (const n of all) {
          expect(n.level === level || n.level === level + 1).toBe(true);
          level = n.level;
          expect(ESCALATION_REASONS).toContain(n.reason);
        }
        const people = all.flatMap((n) => (n.person === null ? [] : [n.person]));
        expect(new Set(people).size).toBe(people.length);
        for (const c of calls) {
          if (c.nextWakeAt !== undefined) expect(c.nextWakeAt).toBeGreaterThan(c.now);
          for (const n of c.notifications) expect(n.at).toBe(c.now);
          if (c.resolved) {
            expect(c.notifications).toEqual([]);
            expect(c.nextWakeAt).toBeUndefined();
          }
        }
        for (let i = 1; i < calls.length; i++)
          expect(calls[i]?.now).toBeGreaterThanOrEqual(calls[i - 1]?.now ?? 0);
      }),
      { numRuns: 150 },
    );
  });

  it('simulate is in time order, starts with level 0 and never repeats a person', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SEVERITIES),
        fc.constantFrom<Impact>('critical', 'high', 'medium', 'low'),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 2 * H }), { nil: undefined }),
        fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2025-12-31T00:00:00Z') }),
        (severity, impact, securityRelated, acknowledgeAfterMs, at) => {
          const opts: SimulateOptions = { severity, impact, securityRelated, at };
          if (acknowledgeAfterMs !== undefined) opts.acknowledgeAfterMs = acknowledgeAfterMs;
          const got = simulate(policy, opts);
          expect(got[0]).toMatchObject({ at, level: 0, reason: 'initial' });
          for (let i = 1; i < got.length; i++) {
            expect(got[i]?.at).toBeGreaterThanOrEqual(got[i - 1]?.at ?? 0);
            expect(got[i]?.level).toBeGreaterThanOrEqual(got[i - 1]?.level ?? 0);
          }
          const people = got.flatMap((n) => (n.person === null ? [] : [n.person]));
          expect(new Set(people).size).toBe(people.length);
          if (acknowledgeAfterMs !== undefined && acknowledgeAfterMs <= 5 * M) {
            expect(got.some((n) => n.reason === 'ack_timeout')).toBe(false);
          }
        },
      ),
    );
  });
});
