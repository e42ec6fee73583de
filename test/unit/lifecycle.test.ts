import { describe, expect, it } from 'vitest';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { deliveriesFor } from '../../src/domain/delivery.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import type { LifecycleBehaviour, LifecycleInput, Outgoing } from '../../src/domain/lifecycle.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import type { TestAlert } from '../support/alerts.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

/*
 * The incident lifecycle's decisions, driven directly: no Temporal, no clock.
 * Each test plays the workflow's part (an alert batch, an engineer's
 * operation, a timer firing at `nextWakeAt`) and reads what the lifecycle
 * decided: the state, and the outbox of who is told what on which channel.
 */

const S = 1_000;
const M = 60 * S;
const H = 60 * M;
const T0 = Date.parse('2025-03-03T10:00:00Z'); // a Monday, in business hours

/** The lifecycle's rules alone: playbooks are tested in playbook-lifecycle.test.ts. */
const policy = policyWith({
  links: { webUi: 'https://temporal.example.com/' },
  playbooks: { enabled: false },
});
/** The same, with alice also the engineering lead: she may assign a commander and resolve a P0/P1 (`permissions`). */
const leadPolicy = policyWith({
  links: { webUi: 'https://temporal.example.com/' },
  playbooks: { enabled: false },
  people: { alice: { roles: ['on-call-engineer', 'engineering-lead'] } },
});
const WORKFLOW_ID = 'alertgroup-1234';
const NAMESPACE = 'incidents-prod';
const LINK = `https://temporal.example.com/namespaces/${NAMESPACE}/workflows/${WORKFLOW_ID}`;

const P0_ALERT: TestAlert = { labels: { severity: 'page', alertname: 'DataCorruption' } };
const P1_ALERT: TestAlert = { labels: { severity: 'critical' } };
const P2_ALERT: TestAlert = { labels: { severity: 'warning', alertname: 'PodCrash' } };
const P3_ALERT: TestAlert = { labels: { severity: 'info', alertname: 'DocsStale' } };

function batch(alerts: TestAlert[], p: Policy = policy): AlertBatch {
  return toAlertBatch(
    p,
    webhookPayloadSchema.parse(alertmanagerPayload({ alerts, groupKey: WORKFLOW_ID })),
    1000,
  );
}

function lifecycle(
  options: { input?: Partial<LifecycleInput>; policy?: Policy; behaviour?: Partial<LifecycleBehaviour> } = {},
): IncidentLifecycle {
  return new IncidentLifecycle({ incidentId: 'INC-0000beef', ...options.input }, options.policy ?? policy, {
    workflowId: WORKFLOW_ID,
    namespace: NAMESPACE,
    ...(options.behaviour ? { behaviour: options.behaviour } : {}),
  });
}

/** An incident opened by its first alert batch at T0, its opening messages taken out of the outbox. */
function opened(alerts: TestAlert[], options: Parameters<typeof lifecycle>[0] = {}) {
  const run = lifecycle(options);
  run.receiveAlerts(batch(alerts, options.policy), T0);
  const opening = run.outbox.splice(0);
  return { run, opening, state: run.state as IncidentState };
}

/** Who is told, how, and why: `#channel (purpose)` for a post, `person via a+b (reason)` for a notification. */
function recipients(outbox: readonly Outgoing[], p: Policy = policy): string[] {
  return outbox.map((out) => {
    switch (out.kind) {
      case 'post':
        return `${p.channels.slack.channels[out.channelKey] ?? out.channelKey} (${out.purpose})`;
      case 'notify':
        return `${out.notification.person ?? 'nobody'} via ${out.notification.channels.join('+')} (${out.notification.reason})`;
      case 'pager':
        return `pager ${out.action} ${out.roles.join('+')}`;
      case 'event':
        return `event ${out.type}`;
      case 'room':
        return `room ${out.action}`;
    }
  });
}

/** The text of a post or notification (other items have none). */
function textOf(out: Outgoing | undefined): string {
  return out && 'text' in out ? out.text : '';
}

function textTo(outbox: readonly Outgoing[], channel: string, purpose: string): string {
  const found = outbox.find(
    (out) =>
      out.kind === 'post' &&
      policy.channels.slack.channels[out.channelKey] === channel &&
      out.purpose === purpose,
  );
  if (!found) throw new Error(`no ${purpose} to ${channel} in ${recipients(outbox).join(', ')}`);
  return textOf(found);
}

/** Plays the workflow's timers: wakes at each `nextWakeAt` up to `until`, collecting the outbox. */
function runUntil(run: IncidentLifecycle, from: number, until: number): Outgoing[] {
  const out: Outgoing[] = [];
  let now = from;
  for (let guard = 0; guard < 10_000; guard++) {
    run.tick(now);
    out.push(...run.outbox.splice(0));
    if (run.resolved) break;
    const next = run.nextWakeAt(now);
    if (next === undefined || next > until) break;
    now = Math.max(next, now + 1);
  }
  return out;
}

function kinds(state: IncidentState): string[] {
  return state.timeline.map((t) => t.kind);
}

describe('opening', () => {
  it('an alert batch opens a P1: pages the on-call engineer, posts the initial report to its channels', () => {
    const { state, opening } = opened([P1_ALERT]);
    expect(state).toMatchObject({
      id: 'INC-0000beef',
      workflowId: WORKFLOW_ID,
      title: 'HighErrorRate on pno-physics-bench',
      severity: 'P1',
      status: 'triggered',
      escalationLevel: 0,
      postmortemRequired: true,
      source: { kind: 'alertmanager', groupKey: WORKFLOW_ID },
      nextUpdateDue: new Date(T0 + 2 * H).toISOString(),
    });
    expect(recipients(opening)).toEqual([
      'alice via pager+sms+phone (initial)',
      '#pno-incidents (initial report)',
      '#pno-leadership (initial report)',
    ]);
    const page = textOf(opening[0]);
    expect(page).toContain('P1 INC-0000beef HighErrorRate on pno-physics-bench — new incident');
    expect(page).toContain('incident ack INC-0000beef --by alice');
    expect(page).toContain(LINK);
    const report = textTo(opening, '#pno-incidents', 'initial report');
    expect(report).toContain('🚨 INCIDENT ALERT - P1');
    expect(report).toContain('**Incident**: INC-0000beef HighErrorRate on pno-physics-bench');
    expect(report).toContain('**Assigned**: Alice Oncall');
    expect(report).toContain(`Act: incident ack INC-0000beef · incident show INC-0000beef · ${LINK}`);
    // The mapping chose highErrorRate; with the kill switch on, the timeline says it did not start.
    expect(kinds(state)).toEqual(['opened', 'playbook_step', 'alert']);
    expect(state.playbook).toMatchObject({ name: 'highErrorRate', status: 'selected' });
  });

  it.each([
    [
      'P0',
      P0_ALERT,
      ['alice via pager+sms+phone (initial)'],
      ['#pno-incidents', '#pno-critical-alerts', '#pno-leadership'],
      true,
    ],
    ['P2', P2_ALERT, ['alice via slack+email (initial)'], ['#pno-incidents'], false],
    ['P3', P3_ALERT, ['grace via email (initial)'], ['#pno-incidents'], false],
  ])('a %s routes to its people and channels', (severity, alert, people, channels, postmortem) => {
    const { state, opening } = opened([alert]);
    expect(state.severity).toBe(severity);
    expect(state.postmortemRequired).toBe(postmortem);
    expect(recipients(opening)).toEqual([...people, ...channels.map((c) => `${c} (initial report)`)]);
  });

  it('a declared incident opens at once, by its declarer, with the severity given', () => {
    const run = lifecycle({
      input: { declared: { by: 'bob', title: 'Checkout is slow', severity: 'P2', impact: 'high' } },
    });
    expect(run.opened).toBe(false);
    expect(run.refusal('acknowledge', { by: 'alice' })).toBe('the incident has not opened yet');
    run.openDeclared(T0);
    expect(run.state).toMatchObject({
      title: 'Checkout is slow',
      service: 'pno-physics-bench',
      severity: 'P2',
      impact: 'high',
      mappingRule: 'declared',
      source: { kind: 'declared', by: 'bob' },
      alerts: [],
    });
    expect(run.state?.timeline[0]).toMatchObject({ kind: 'opened', actor: 'bob' });
    expect(recipients(run.outbox)).toEqual([
      'alice via slack+email (initial)',
      '#pno-incidents (initial report)',
    ]);
  });

  it('critical impact escalates at opening to the lead, VP engineering and CTO', () => {
    const { state, opening } = opened([{ labels: { severity: 'critical', impact: 'critical' } }]);
    expect(state.escalationLevel).toBe(1);
    expect(recipients(opening).filter((r) => r.endsWith('(impact)'))).toEqual([
      'bob via pager+sms (impact)',
      'erin via phone+email (impact)',
      'frank via phone+email (impact)',
    ]);
  });
});

describe('alerts', () => {
  it('records each alert once; a status change is recorded as a change', () => {
    const alerts = [P1_ALERT, { ...P1_ALERT, fingerprint: 'beef000000000001' }];
    const { run } = opened(alerts);
    run.receiveAlerts(batch(alerts), T0 + M);
    const state = run.state as IncidentState;
    expect(state.alerts).toHaveLength(2);
    expect(kinds(state).filter((k) => k === 'alert')).toHaveLength(2);
    run.receiveAlerts(
      batch([{ ...P1_ALERT, fingerprint: 'beef000000000001', status: 'resolved' }]),
      T0 + 2 * M,
    );
    expect(kinds(state).filter((k) => k === 'alert_resolved')).toHaveLength(1);
    expect(state.status).toBe('triggered');
    expect(run.outbox).toEqual([]);
  });

  it('a firing alert of higher severity raises the incident (severity_increase)', () => {
    const { run } = opened([P2_ALERT]);
    run.receiveAlerts(batch([{ ...P1_ALERT, fingerprint: 'aaaa000000000009' }]), T0 + M);
    const state = run.state as IncidentState;
    expect(state.severity).toBe('P1');
    expect(state.postmortemRequired).toBe(true);
    expect(state.timeline.find((t) => t.kind === 'severity_changed')?.message).toBe(
      'severity raised P2 → P1: alert HighErrorRate is P1',
    );
    expect(recipients(run.outbox)).toEqual([
      'bob via pager+sms (severity_increase)',
      '#pno-leadership (initial report)',
      '#pno-incidents (severity raised)',
    ]);
  });

  it('when all alerts resolve a P1 is mitigated and waits for a person; one firing again reopens it', () => {
    const { run } = opened([P1_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    run.receiveAlerts(batch([{ ...P1_ALERT, status: 'resolved' }]), T0 + 2 * M);
    const state = run.state as IncidentState;
    expect(state.status).toBe('mitigated');
    expect(recipients(run.outbox.splice(0))).toEqual([
      '#pno-incidents (mitigated notice)',
      '#pno-leadership (mitigated notice)',
    ]);
    // Mitigated stops ack_timeout, time_based and reminders; no_progress still asks for a person (P1: 2 h).
    expect(recipients(runUntil(run, T0 + 2 * M, T0 + 3 * H))).toEqual(['bob via pager+sms (no_progress)']);
    expect(state.status).toBe('mitigated');
    run.receiveAlerts(batch([P1_ALERT]), T0 + 3 * H);
    expect(state.status).toBe('acknowledged');
    expect(state.timeline.at(-1)).toMatchObject({
      kind: 'reopened',
      message: 'alerts firing again: back to acknowledged',
    });
  });

  it('a P2 whose alerts cleared resolves itself after the quiet period, with a post-mortem flag', () => {
    const { run } = opened([P2_ALERT]);
    run.receiveAlerts(batch([{ ...P2_ALERT, status: 'resolved' }]), T0 + M);
    const mitigated = run.outbox.splice(0);
    expect(textTo(mitigated, '#pno-incidents', 'mitigated notice')).toContain(
      'It resolves itself after 30m without firing alerts.',
    );
    expect(run.nextWakeAt(T0 + M)).toBe(T0 + 31 * M);
    const out = runUntil(run, T0 + M, T0 + H);
    expect(run.state).toMatchObject({
      status: 'resolved',
      resolvedBy: 'system',
      resolvedAt: new Date(T0 + 31 * M).toISOString(),
      rootCause: 'auto-resolved: alerts cleared',
      postmortemRequired: true,
    });
    // #pno-engineering hears of every resolution ("General engineering updates").
    expect(recipients(out)).toEqual([
      '#pno-incidents (resolution notice)',
      '#pno-engineering (resolution notice)',
    ]);
  });

  it('alerts arriving after resolution are kept to open the next incident', () => {
    const { run } = opened([P2_ALERT]);
    run.apply('resolve', { by: 'alice', rootCause: 'fixed' }, T0 + M);
    run.receiveAlerts(batch([{ ...P2_ALERT, status: 'resolved' }]), T0 + 2 * M);
    run.receiveAlerts(batch([P2_ALERT]), T0 + 3 * M);
    expect(run.afterResolution).toHaveLength(1);
    expect(run.state?.alerts).toHaveLength(1);
  });
});

describe('engineers', () => {
  it('acknowledging stops ack_timeout only; a second acknowledgment is refused', () => {
    const { run } = opened([P1_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + 2 * M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    expect(run.state).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'alice' });
    expect(run.refusal('acknowledge', { by: 'bob' })).toMatch(/already acknowledged by alice/);
    expect(runUntil(run, T0 + 2 * M, T0 + 59 * M)).toEqual([]);
    expect(recipients(runUntil(run, T0 + 59 * M, T0 + 61 * M))).toEqual(['bob via pager+sms (time_based)']);
  });

  it('refuses an unknown engineer, bad input and any operation on a resolved incident', () => {
    const { run } = opened([P2_ALERT], { policy: leadPolicy });
    expect(run.refusal('acknowledge', { by: 'mallory' })).toBe(
      'unknown engineer "mallory": not a person in the policy',
    );
    expect(run.refusal('acknowledge', 'alice')).toBe('the argument must be a JSON object');
    expect(run.refusal('postUpdate', { by: 'alice', message: '   ' })).toBe('message: must not be blank');
    expect(run.refusal('assignCommander', { by: 'alice', commander: 'constructor' })).toMatch(
      /unknown commander/,
    );
    expect(run.refusal('changeSeverity', { by: 'alice', severity: 'P2' })).toBe(
      'incident INC-0000beef is already P2',
    );
    run.apply('resolve', { by: 'alice', rootCause: 'fixed' }, T0 + M);
    expect(run.refusal('postUpdate', { by: 'alice', message: 'late' })).toBe(
      'incident INC-0000beef is already resolved',
    );
  });

  it('a status update resets no_progress, moves "Next Update", and names the incident and how to act', () => {
    const { run } = opened([P0_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    run.apply(
      'postUpdate',
      { by: 'alice', message: 'rolling back', actions: ['rollback'], focus: 'db', eta: '30m', public: true },
      T0 + 25 * M,
    );
    const state = run.state as IncidentState;
    expect(state.nextUpdateDue).toBe(new Date(T0 + 55 * M).toISOString());
    expect(state.actionsTaken).toEqual(['rollback']);
    expect(state.publicUpdates).toEqual([
      { at: new Date(T0 + 25 * M).toISOString(), message: 'rolling back', eta: '30m' },
    ]);
    const posted = run.outbox.splice(0);
    expect(recipients(posted)).toEqual([
      '#pno-incidents (status update)',
      '#pno-critical-alerts (status update)',
      '#pno-leadership (status update)',
    ]);
    const update = textTo(posted, '#pno-incidents', 'status update');
    expect(update).toContain('📊 INCIDENT UPDATE - INC-0000beef');
    expect(update).toContain('**Incident**: INC-0000beef DataCorruption on pno-physics-bench');
    expect(update).toContain('**Progress**: rolling back');
    expect(update).toContain('- rollback');
    expect(update).toContain(
      `Act: incident update INC-0000beef --message "…" · incident show INC-0000beef · ${LINK}`,
    );
    // The update at 25 min moves no_progress to 55 min (time_based at 15 min reached lead, commander, security).
    const out = runUntil(run, T0 + 25 * M, T0 + 56 * M);
    expect(state.timeline.filter((t) => t.message.includes('(no_progress)')).map((t) => t.at)).toEqual([
      new Date(T0 + 55 * M).toISOString(),
    ]);
    expect(recipients(out)).toContain('#pno-incidents (update reminder)');
  });

  it('reminds the first channel when a status update is due, at the severity’s cadence', () => {
    const { run, state } = opened([P1_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    const out = runUntil(run, T0 + M, T0 + 2 * H);
    expect(recipients(out)).toEqual(['bob via pager+sms (time_based)', '#pno-incidents (update reminder)']);
    expect(textTo(out, '#pno-incidents', 'update reminder')).toBe(
      `⏰ INC-0000beef HighErrorRate on pno-physics-bench: a status update is due. Post one with: incident update INC-0000beef --message "…" · ${LINK}`,
    );
    expect(state.nextUpdateDue).toBe(new Date(T0 + 4 * H).toISOString());
    // A P3 has no cadence: its next update is due at its response target (2 business days).
    const p3 = opened([P3_ALERT]);
    expect(p3.state.nextUpdateDue).toBe('2025-03-05T10:00:00.000Z');
    expect(runUntil(p3.run, T0, T0 + 7 * 24 * H)).toEqual([]);
  });

  it('P0 without acknowledgment: lead, commander and security at 5 min, VP at 1 h, CTO at 2 h', () => {
    const { run } = opened([P0_ALERT]);
    const out = runUntil(run, T0, T0 + 2 * H).filter((o) => o.kind === 'notify');
    expect(
      out.map((o) =>
        o.kind === 'notify'
          ? [(o.notification.at - T0) / S, o.notification.person, o.notification.reason]
          : [],
      ),
    ).toEqual([
      [300, 'bob', 'ack_timeout'],
      [300, 'carol', 'ack_timeout'],
      [300, 'dave', 'ack_timeout'],
      [3600, 'erin', 'matrix'],
      [7200, 'frank', 'matrix'],
    ]);
  });

  it('manual escalation moves one level up and tells the escalation targets', () => {
    const { run } = opened([P2_ALERT]);
    run.apply('escalate', { by: 'alice', reason: 'needs the lead' }, T0 + M);
    expect(run.state?.escalationLevel).toBe(1);
    expect(recipients(run.outbox)).toEqual(['bob via pager+sms (manual)']);
    expect(run.state?.timeline.at(-2)).toMatchObject({
      kind: 'escalated',
      actor: 'alice',
      message: 'manual escalation: needs the lead',
    });
  });

  it('a P0 resolves only with a commander and a security evaluation; the notice names the incident', () => {
    const { run } = opened([P0_ALERT], { policy: leadPolicy });
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    run.apply('postUpdate', { by: 'alice', message: 'rolled back', actions: ['rollback'] }, T0 + 2 * M);
    run.outbox.splice(0);
    const resolve = { by: 'alice', rootCause: 'bad deploy', prevention: 'canary' };
    expect(run.refusal('resolve', resolve)).toMatch(/needs an incident commander/);
    run.apply('assignCommander', { by: 'alice', commander: 'carol' }, T0 + 3 * M);
    expect(run.refusal('resolve', resolve)).toMatch(/needs a security evaluation/);
    run.apply('recordSecurityEvaluation', { by: 'dave', finding: 'no breach' }, T0 + 4 * M);
    expect(run.state?.securityEvaluation).toMatchObject({ by: 'dave', related: false });
    expect(run.refusal('resolve', resolve)).toBeUndefined();
    run.apply('resolve', resolve, T0 + 90 * M);
    expect(run.state).toMatchObject({
      status: 'resolved',
      resolvedBy: 'alice',
      rootCause: 'bad deploy',
      prevention: 'canary',
    });
    const posted = run.outbox.splice(0);
    expect(recipients(posted)).toEqual([
      '#pno-incidents (resolution notice)',
      '#pno-critical-alerts (resolution notice)',
      '#pno-leadership (resolution notice)',
      '#pno-engineering (resolution notice)',
      // Each role paged by pager has its PagerDuty alert resolved.
      'pager resolve on-call-engineer',
    ]);
    const notice = textTo(posted, '#pno-engineering', 'resolution notice');
    expect(notice).toContain('✅ INCIDENT RESOLVED - INC-0000beef');
    expect(notice).toContain('**Incident**: INC-0000beef DataCorruption on pno-physics-bench');
    expect(notice).toContain('**Total Duration**: 1h30m');
    expect(notice).toContain('**Root Cause**: bad deploy');
    expect(notice).toContain('- rollback');
    expect(notice).toContain('**Post-Mortem**: required (post-incident process)');
    expect(notice).toContain(`Act: incident show INC-0000beef · ${LINK}`);
    // Resolution stops everything.
    expect(run.nextWakeAt(T0 + 90 * M)).toBeUndefined();
    expect(runUntil(run, T0 + 90 * M, T0 + 10 * H)).toEqual([]);
  });

  it('a snapshot from before resolveRequires was a field still needs the P0 commander (the procedures value)', () => {
    const old = structuredClone(leadPolicy);
    delete old.severities.P0.resolveRequires;
    const { run } = opened([P0_ALERT], { policy: old });
    expect(run.refusal('resolve', { by: 'alice', rootCause: 'x' })).toMatch(/needs an incident commander/);
  });

  it('a security evaluation finding it security-related brings the security team’s matrix deadline', () => {
    const { run } = opened([P1_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    // PagerDuty hears of it: the page of the on-call engineer's role is acknowledged there too.
    expect(recipients(run.outbox.splice(0))).toEqual(['pager acknowledge on-call-engineer']);
    run.apply(
      'recordSecurityEvaluation',
      { by: 'dave', finding: 'tokens leaked', related: true },
      T0 + 2 * M,
    );
    expect(run.state?.securityRelated).toBe(true);
    expect(recipients(runUntil(run, T0 + 2 * M, T0 + 61 * M))).toEqual([
      'bob via pager+sms (time_based)',
      'dave via pager+sms (matrix)',
    ]);
  });
});

describe('defect: an engineer-mitigated P2/P3 never resolved itself and was not reopened', () => {
  it('an engineer’s mitigation starts the quiet period: the P2 resolves itself 30 min later', () => {
    const { run } = opened([P2_ALERT]);
    run.receiveAlerts(
      batch([
        { ...P2_ALERT, status: 'resolved' },
        { ...P2_ALERT, fingerprint: 'f00d000000000009' },
      ]),
      T0,
    );
    run.apply('mitigate', { by: 'alice', note: 'restarted the pod' }, T0 + 5 * M);
    expect(run.state?.status).toBe('mitigated');
    // The other alert still fires: the quiet period waits for it.
    expect(
      runUntil(run, T0 + 5 * M, T0 + 2 * H).filter(
        (o) => o.kind === 'post' && o.purpose === 'resolution notice',
      ),
    ).toEqual([]);
    run.receiveAlerts(
      batch([{ ...P2_ALERT, fingerprint: 'f00d000000000009', status: 'resolved' }]),
      T0 + 2 * H,
    );
    expect(run.state?.status).toBe('mitigated');
    runUntil(run, T0 + 2 * H, T0 + 3 * H);
    expect(run.state).toMatchObject({
      status: 'resolved',
      resolvedAt: new Date(T0 + 2 * H + 30 * M).toISOString(),
      rootCause: 'auto-resolved: alerts cleared',
    });
  });

  it('a declared P3 mitigated by an engineer resolves itself after the quiet period', () => {
    const run = lifecycle({ input: { declared: { by: 'grace', title: 'Typo in docs', severity: 'P3' } } });
    run.openDeclared(T0);
    run.apply('mitigate', { by: 'grace' }, T0 + M);
    expect(recipients(run.outbox.splice(0)).slice(-1)).toEqual(['#pno-incidents (mitigated notice)']);
    const out = runUntil(run, T0 + M, T0 + H);
    expect(run.state).toMatchObject({
      status: 'resolved',
      rootCause: 'auto-resolved: quiet since mitigated',
    });
    expect(recipients(out)).toEqual([
      '#pno-incidents (resolution notice)',
      '#pno-engineering (resolution notice)',
    ]);
  });

  it('an alert firing again reopens an engineer-mitigated incident; a redelivery of what still fires does not', () => {
    const { run } = opened([P2_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    run.apply('mitigate', { by: 'alice' }, T0 + 2 * M);
    // Alertmanager resends the group while its alert still fires: nothing changed.
    run.receiveAlerts(batch([P2_ALERT]), T0 + 5 * M);
    expect(run.state?.status).toBe('mitigated');
    run.receiveAlerts(batch([{ ...P2_ALERT, status: 'resolved' }]), T0 + 10 * M);
    expect(run.state?.status).toBe('mitigated');
    run.receiveAlerts(batch([P2_ALERT]), T0 + 20 * M);
    expect(run.state?.status).toBe('acknowledged');
    expect(run.state?.timeline.at(-1)).toMatchObject({ kind: 'reopened' });
    expect(run.nextWakeAt(T0 + 20 * M)).not.toBe(T0 + 40 * M);
    // A new alert of the group firing reopens too.
    run.apply('mitigate', { by: 'alice' }, T0 + 25 * M);
    run.receiveAlerts(batch([{ ...P2_ALERT, fingerprint: 'f00d0000000000aa' }]), T0 + 26 * M);
    expect(run.state?.status).toBe('acknowledged');
  });

  it('the old behaviour (incidents started before the fix replay on it) is kept', () => {
    const { run } = opened([P2_ALERT], { behaviour: { quietAfterMitigation: false } });
    run.apply('mitigate', { by: 'alice' }, T0 + M);
    runUntil(run, T0 + M, T0 + 3 * H);
    expect(run.state?.status).toBe('mitigated');
  });

  it('a run carried over from before the fix picks the quiet period up from its mitigation time', () => {
    const before = opened([P2_ALERT], { behaviour: { quietAfterMitigation: false } }).run;
    before.receiveAlerts(batch([{ ...P2_ALERT, status: 'resolved' }]), T0 + M);
    delete before.runtime?.quietSince; // as the old code left an engineer-mitigated one
    const carried = JSON.parse(
      JSON.stringify({ state: before.state, runtime: before.runtime }),
    ) as NonNullable<LifecycleInput['carried']>;
    const after = lifecycle({ input: { carried } });
    expect(after.runtime?.quietSince).toBe(T0 + M);
    runUntil(after, T0 + 10 * M, T0 + H);
    expect(after.state?.resolvedAt).toBe(new Date(T0 + 31 * M).toISOString());
  });
});

describe('defect: raising the severity did not reach the new severity’s channels', () => {
  it('P2 raised to P0: the initial report to #pno-critical-alerts and #pno-leadership, a notice to #pno-incidents', () => {
    const { run } = opened([P2_ALERT]);
    run.apply('changeSeverity', { by: 'alice', severity: 'P0', reason: 'data loss' }, T0 + 10 * M);
    const out = run.outbox.splice(0);
    expect(recipients(out)).toEqual([
      'bob via pager+sms (severity_increase)',
      'carol via pager+phone (severity_increase)',
      'dave via pager+sms (severity_increase)',
      '#pno-critical-alerts (initial report)',
      '#pno-leadership (initial report)',
      '#pno-incidents (severity raised)',
    ]);
    expect(textTo(out, '#pno-critical-alerts', 'initial report')).toContain('🚨 INCIDENT ALERT - P0');
    expect(textTo(out, '#pno-incidents', 'severity raised')).toBe(
      `⬆️ INC-0000beef PodCrash on pno-physics-bench raised P2 → P0: data loss. Act: incident ack INC-0000beef · incident show INC-0000beef · ${LINK}`,
    );
    expect(run.state?.postmortemRequired).toBe(true);
  });

  it('lowering the severity posts nothing; the old behaviour posted nothing on a raise either', () => {
    const { run } = opened([P1_ALERT]);
    run.apply('changeSeverity', { by: 'alice', severity: 'P3' }, T0 + M);
    expect(run.outbox).toEqual([]);
    const old = opened([P2_ALERT], { behaviour: { postsOnSeverityRaise: false } }).run;
    old.apply('changeSeverity', { by: 'alice', severity: 'P0' }, T0 + M);
    expect(recipients(old.outbox).filter((r) => r.startsWith('#'))).toEqual([]);
  });
});

describe('defect: links hard-coded the namespace and host; status and resolution notices lacked title and how to act', () => {
  it('links use the workflow’s namespace and the policy’s web UI', () => {
    const run = new IncidentLifecycle({ incidentId: 'INC-0000beef' }, loadDefaultPolicy(), {
      workflowId: 'alertgroup/with space',
      namespace: 'prod',
    });
    run.receiveAlerts(batch([P2_ALERT]), T0);
    expect(textOf(run.outbox[0])).toContain(
      'http://127.0.0.1:8233/namespaces/prod/workflows/alertgroup%2Fwith%20space',
    );
  });

  it('a snapshot whose templates lack the incident title and how to act gets both lines', () => {
    const old = structuredClone(policy);
    old.templates.statusUpdate =
      '📊 INCIDENT UPDATE - {{ incident_id }}\n\n**Progress**: {{ progress_description }}\n';
    old.templates.resolutionNotice = '✅ INCIDENT RESOLVED - {{ incident_id }}\n';
    const { run } = opened([P2_ALERT], { policy: old });
    run.apply('postUpdate', { by: 'alice', message: 'digging' }, T0 + M);
    run.apply('resolve', { by: 'alice', rootCause: 'fixed' }, T0 + 2 * M);
    const [update, resolution] = run.outbox.map(textOf);
    expect(update).toBe(
      `📊 INCIDENT UPDATE - INC-0000beef\n\n**Progress**: digging\n\n**Incident**: INC-0000beef PodCrash on pno-physics-bench\nAct: incident ack INC-0000beef · incident show INC-0000beef · ${LINK}\n`,
    );
    expect(resolution).toContain('**Incident**: INC-0000beef PodCrash on pno-physics-bench');
    expect(resolution).toContain(`Act: incident show INC-0000beef · ${LINK}`);
  });
});

describe('continue-as-new carry-over', () => {
  it('a run carried as JSON goes on where it left off', () => {
    const { run } = opened([P0_ALERT]);
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    runUntil(run, T0 + M, T0 + 20 * M);
    const carried = JSON.parse(JSON.stringify({ state: run.state, runtime: run.runtime })) as NonNullable<
      LifecycleInput['carried']
    >;
    const next = lifecycle({ input: { carried } });
    expect(next.opened).toBe(true);
    expect(next.nextWakeAt(T0 + 20 * M)).toBe(run.nextWakeAt(T0 + 20 * M));
    const a = recipients(runUntil(run, T0 + 20 * M, T0 + 3 * H));
    const b = recipients(runUntil(next, T0 + 20 * M, T0 + 3 * H));
    expect(b).toEqual(a);
    expect(next.state?.timeline).toEqual(run.state?.timeline);
  });
});

describe('deliveries', () => {
  it('records what happened to each message on the timeline', () => {
    const { run, opening } = opened([P1_ALERT]);
    const [page, report] = opening as [Outgoing, Outgoing];
    run.delivered(page, undefined, T0 + S, { ok: true, detail: 'pager recorded' });
    run.delivered(report, undefined, T0 + S, { ok: false, error: 'Slack answered HTTP 503' });
    expect(run.state?.timeline.slice(-2)).toEqual([
      {
        at: new Date(T0 + S).toISOString(),
        kind: 'notified',
        actor: 'system',
        message: 'notification → alice via pager+sms+phone (pager recorded)',
      },
      {
        at: new Date(T0 + S).toISOString(),
        kind: 'notification_failed',
        actor: 'system',
        message: 'initial report → #pno-incidents via slack failed: Slack answered HTTP 503',
      },
    ]);
  });
});

describe('channels', () => {
  it('a first report’s Slack ts opens the channel’s thread: later posts there are replies', () => {
    const { run, opening } = opened([P1_ALERT]);
    const report = opening.find((o) => o.kind === 'post' && o.channelKey === 'incidents') as Outgoing;
    const state = run.state as IncidentState;
    const [delivery] = deliveriesFor(policy, state, [report], run.link());
    run.delivered(report, delivery, T0 + S, { ok: true, detail: 'ts=1.1', ts: '1.1' });
    run.apply('postUpdate', { by: 'alice', message: 'looking' }, T0 + M);
    const update = deliveriesFor(policy, state, run.outbox.splice(0), run.link());
    expect(update.map((d) => (d.kind === 'post' ? [d.channel, d.threadTs] : d.kind))).toEqual([
      ['#pno-incidents', '1.1'],
      ['#pno-leadership', undefined],
    ]);
  });

  it('pages nobody while the service is in a maintenance window, and records who was not paged', () => {
    const maintenance = { id: 'mw-1', reason: 'database upgrade', until: new Date(T0 + H).toISOString() };
    const { run, opening, state } = opened([P1_ALERT], { input: { maintenance } });
    expect(recipients(opening)).toEqual([
      '#pno-incidents (initial report)',
      '#pno-leadership (initial report)',
    ]);
    expect(state.notified[0]).toMatchObject({ who: 'alice', suppressed: ['pager', 'sms', 'phone'] });
    expect(state.timeline.filter((t) => t.kind === 'paging_suppressed').map((t) => t.message)).toEqual([
      'maintenance window mw-1 until 2025-03-03T11:00:00.000Z (database upgrade): nobody is paged; everything else is recorded',
      'Alice Oncall not paged by pager+sms+phone: maintenance window mw-1 (database upgrade)',
    ]);
    // Escalation goes on, silently, during the window (bob, the lead, after 5 min without acknowledgment)…
    expect(recipients(runUntil(run, T0, T0 + H - M))).not.toContain('bob via pager+sms (ack_timeout)');
    // …and when the window ends with the incident still open, whoever was not paged is paged now.
    expect(recipients(runUntil(run, T0 + H - M, T0 + H))).toEqual([
      'alice via pager+sms+phone (initial)',
      'bob via pager+sms (ack_timeout)',
    ]);
  });

  it('a P2 in a maintenance window still gets its Slack DM and e-mail (they page nobody)', () => {
    const maintenance = { id: 'mw-2', reason: 'upgrade', until: new Date(T0 + H).toISOString() };
    const { opening } = opened([P2_ALERT], { input: { maintenance } });
    expect(recipients(opening)).toContain('alice via slack+email (initial)');
  });

  it('in channel mode a P0 gets its own channel: created, responders invited as paged, every post there too', () => {
    const channelMode = policyWith({ channels: { slack: { mode: 'channel' } } });
    const { run, opening } = opened([P0_ALERT], { policy: channelMode });
    expect(recipients(opening, channelMode)).toEqual([
      'room create',
      'alice via pager+sms+phone (initial)',
      'room invite',
      '#pno-incidents (initial report)',
      '#pno-critical-alerts (initial report)',
      '#pno-leadership (initial report)',
      'room (initial report)',
    ]);
    expect(opening.find((o) => o.kind === 'room' && o.action === 'invite')).toMatchObject({
      slackUsers: ['U0ALICE'],
    });
    const [create] = deliveriesFor(channelMode, run.state as IncidentState, opening.slice(0, 1), run.link());
    expect(create).toEqual({
      kind: 'room',
      action: 'create',
      name: 'inc-0000beef-datacorruption-on-pno-physics-bench',
    });
  });

  it('a P2 in channel mode has no channel of its own, and a P1 resolved without post-mortem archives it', () => {
    const channelMode = policyWith({
      channels: { slack: { mode: 'channel' } },
      severities: { P1: { postmortemRequired: false } },
    });
    expect(recipients(opened([P2_ALERT], { policy: channelMode }).opening, channelMode)).not.toContain(
      'room create',
    );
    const { run } = opened([P1_ALERT], { policy: channelMode });
    run.apply('resolve', { by: 'alice', rootCause: 'fixed' }, T0 + M);
    expect(recipients(run.outbox.splice(0), channelMode)).toContain('room archive');
  });

  it('with a generic webhook in the policy, each step is an event; without one, none', () => {
    const hooked = policyWith({ channels: { webhook: { url: '${INCIDENT_WEBHOOK_URL}' } } });
    const { run, opening } = opened([P1_ALERT], { policy: hooked });
    expect(recipients(opening, hooked)).toContain('event incident.opened');
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    expect(recipients(run.outbox.splice(0), hooked)).toEqual([
      'pager acknowledge on-call-engineer',
      'event incident.acknowledged',
    ]);
    expect(recipients(opened([P1_ALERT]).opening)).not.toContain('event incident.opened');
  });

  it('an incident started before the channel transports (old behaviour) sends none of their traffic', () => {
    const hooked = policyWith({ channels: { webhook: { url: '${INCIDENT_WEBHOOK_URL}' } } });
    const { run } = opened([P1_ALERT], { policy: hooked, behaviour: { channelEvents: false } });
    run.apply('acknowledge', { by: 'alice' }, T0 + M);
    expect(run.outbox).toEqual([]);
  });

  it('Grafana’s dashboard and silence links are in the initial report', () => {
    const { opening } = opened([P2_ALERT]);
    expect(opening.some((o) => 'text' in o && o.text.includes('**Links**'))).toBe(false);
    const run = lifecycle();
    const withLinks = batch([P2_ALERT]);
    withLinks.alerts[0] = {
      ...withLinks.alerts[0]!,
      links: { dashboard: 'http://grafana.example/d/x', silence: 'http://grafana.example/s' },
    };
    run.receiveAlerts(withLinks, T0);
    const report = run.outbox.find((o) => o.kind === 'post');
    expect(report && 'text' in report ? report.text : '').toContain(
      '**Links**: dashboard http://grafana.example/d/x · silence http://grafana.example/s',
    );
  });
});
