import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { SlackError } from '../../src/activities/channels/slack.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { OPERATIONS, alertsReceivedSignal, stateQuery } from '../../src/contract/messages.ts';
import { eventually } from '../support/eventually.ts';
import { policyWith } from '../support/policy.ts';
import { resolveP0 } from './scenarios.ts';
import {
  alertBatch,
  createHarness,
  settled,
  startAlertIncident,
  timeSkippingPerTest,
} from '../support/workflow-env.ts';
import { slackDegradedAtContinueAsNew } from './scenarios.ts';

/** The lifecycle's rules alone: playbooks (and their escalations) are test/workflows/playbooks.test.ts's. */
const policy = policyWith({ playbooks: { enabled: false } });
const currentEnv = timeSkippingPerTest();
let env: TestWorkflowEnvironment;
beforeEach(() => {
  env = currentEnv();
});

const P1_ALERT = { labels: { severity: 'critical' } };
// Not ServiceDown: the policy maps that to critical impact, which escalates at once (tested below).
const P0_ALERT = { labels: { severity: 'page', alertname: 'DataCorruption' } };
const P2_ALERT = { labels: { severity: 'warning', alertname: 'PodCrash' } };
const P3_ALERT = { labels: { severity: 'info', alertname: 'DocsStale' } };

function notifiedAt(state: IncidentState) {
  const created = Date.parse(state.createdAt);
  return state.notified.map((n) => ({
    // To the nearest 10 s: a timer fires on time, but the workflow task that acts on it may start a moment later.
    after: Math.round((Date.parse(n.at) - created) / 10_000) * 10,
    who: n.who,
    level: n.level,
    reason: n.reason,
    channels: n.channels.join('+'),
  }));
}

describe('incident workflow: opening and routing', () => {
  it('a P1 alert pages the on-call engineer by pager, SMS and phone and posts the initial report', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await env.sleep('1 second');
      await settled(handle);
      const state = await handle.query(stateQuery);
      expect(state).toMatchObject({
        id: incidentId,
        severity: 'P1',
        status: 'triggered',
        escalationLevel: 0,
      });
      expect(state.title).toBe('HighErrorRate on pno-physics-bench');
      expect(notifiedAt(state)).toEqual([
        { after: 0, who: 'alice', level: 0, reason: 'initial', channels: 'pager+sms+phone' },
      ]);
      // Paged for real: PagerDuty for her role, an SMS and a call to her number.
      expect(h.recorder.messages.map((m) => [m.channel, m.target])).toEqual([
        ['pager', `${incidentId}:on-call-engineer`],
        ['sms', '+15550100001'],
        ['phone', '+15550100001'],
      ]);
      expect(h.recorder.messages[1]?.text).toContain(`incident ack ${incidentId}`);
      expect(h.recorder.posts.map((p) => p.channel).sort()).toEqual(['#pno-incidents', '#pno-leadership']);
      const report = h.recorder.posts[0]?.text ?? '';
      expect(report).toContain('🚨 INCIDENT ALERT - P1');
      expect(report).toContain(incidentId);
      // Slack mrkdwn: the template's **bold** is Slack's *bold*.
      expect(report).toContain('*Assigned*: Alice Oncall');
      expect(report).not.toContain('**');
      expect(report).toContain(`incident ack ${incidentId}`);
      expect(state.timeline.some((t) => t.kind === 'notified' && t.message.includes('#pno-incidents'))).toBe(
        true,
      );
    });
  });

  it.each([
    [
      'P0',
      P0_ALERT,
      ['#pno-critical-alerts', '#pno-incidents', '#pno-leadership'],
      'alice',
      'pager+sms+phone',
    ],
    ['P2', P2_ALERT, ['#pno-incidents'], 'alice', 'slack+email'],
    ['P3', P3_ALERT, ['#pno-incidents'], 'grace', 'email'],
  ])('a %s alert routes to its channels and people', async (severity, alert, channels, who, how) => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [alert]);
      await env.sleep('1 second');
      await settled(handle);
      const state = await handle.query(stateQuery);
      expect(state.severity).toBe(severity);
      expect(
        h.recorder.posts
          .map((p) => p.channel)
          .filter((c) => c.startsWith('#'))
          .sort(),
      ).toEqual(channels);
      expect(notifiedAt(state)[0]).toMatchObject({ who, channels: how, level: 0 });
      // Slack in a person's channels is a direct message to their Slack id; the others go to their providers.
      const direct = h.recorder.posts.filter((p) => !p.channel.startsWith('#')).map((p) => p.channel);
      expect(direct).toEqual(how.includes('slack') ? [policy.people[who]?.slack] : []);
      const person = policy.people[who];
      const addressOn = {
        pager: `${state.id}:${state.notified[0]?.role}`,
        sms: person?.phone,
        phone: person?.phone,
        email: person?.email,
      };
      expect(h.recorder.messages.map((m) => [m.channel, m.target])).toEqual(
        how
          .split('+')
          .filter((c) => c !== 'slack')
          .map((c) => [c, addressOn[c as keyof typeof addressOn]]),
      );
    });
  });

  it('records each alert once; redeliveries change nothing; a status change is recorded as a change', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const alerts = [P1_ALERT, { ...P1_ALERT, fingerprint: 'beef000000000001' }];
      const { handle } = await startAlertIncident(env, h, policy, alerts);
      const batch = alertBatch(policy, { alerts });
      await handle.signal(alertsReceivedSignal, batch);
      await handle.signal(alertsReceivedSignal, batch);
      await env.sleep('1 second');
      let state = await handle.query(stateQuery);
      expect(state.alerts).toHaveLength(2);
      expect(state.timeline.filter((t) => t.kind === 'alert')).toHaveLength(2);
      await handle.signal(
        alertsReceivedSignal,
        alertBatch(policy, { alerts: [{ ...alerts[1], status: 'resolved' }] }),
      );
      await env.sleep('1 second');
      state = await handle.query(stateQuery);
      expect(state.alerts.find((a) => a.fingerprint === 'beef000000000001')?.status).toBe('resolved');
      expect(state.timeline.filter((t) => t.kind === 'alert_resolved')).toHaveLength(1);
      expect(state.status).toBe('triggered');
    });
  });

  it('a failing Slack never blocks the incident: retries, then records the failure', async () => {
    const h = await createHarness(env);
    h.recorder.failPosts = new SlackError('Slack answered HTTP 503', true);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await env.sleep('1 second');
      // The engineer can act while Slack is down.
      const acked = await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      expect(acked.status).toBe('acknowledged');
      await env.sleep('10 minutes');
      const state = await handle.query(stateQuery);
      const failures = state.timeline.filter((t) => t.kind === 'notification_failed');
      expect(failures).toHaveLength(2);
      expect(failures[0]?.message).toContain('Slack answered HTTP 503');
    });
  });
});

describe('incident workflow: escalation on durable timers', () => {
  it('P0 without acknowledgment: ack_timeout at 5 min reaches lead, commander and security; VP at 1 h; CTO at 2 h', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P0_ALERT]);
      await env.sleep('4 minutes');
      expect((await handle.query(stateQuery)).escalationLevel).toBe(0);
      await env.sleep('2 minutes');
      let state = await handle.query(stateQuery);
      expect(state.escalationLevel).toBe(1);
      expect(notifiedAt(state).filter((n) => n.level === 1)).toEqual([
        { after: 300, who: 'bob', level: 1, reason: 'ack_timeout', channels: 'pager+sms' },
        { after: 300, who: 'carol', level: 1, reason: 'ack_timeout', channels: 'pager+phone' },
        { after: 300, who: 'dave', level: 1, reason: 'ack_timeout', channels: 'pager+sms' },
      ]);
      await env.sleep('2 hours');
      state = await handle.query(stateQuery);
      const matrix = notifiedAt(state).filter((n) => n.reason === 'matrix');
      expect(matrix).toEqual([
        { after: 3600, who: 'erin', level: expect.any(Number), reason: 'matrix', channels: 'phone+email' },
        { after: 7200, who: 'frank', level: expect.any(Number), reason: 'matrix', channels: 'phone+email' },
      ]);
      // Nobody is notified twice.
      const people = state.notified.map((n) => n.who);
      expect(new Set(people).size).toBe(people.length);
    });
  });

  it('acknowledging within 5 minutes stops ack_timeout but not time-based escalation', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await env.sleep('2 minutes');
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('10 minutes');
      let state = await handle.query(stateQuery);
      expect(state.escalationLevel).toBe(0);
      expect(state.notified.map((n) => n.reason)).toEqual(['initial']);
      await env.sleep('50 minutes'); // 62 min: P1 auto-escalates after 60
      state = await handle.query(stateQuery);
      expect(state.escalationLevel).toBe(1);
      expect(notifiedAt(state).find((n) => n.who === 'bob')).toMatchObject({
        after: 3600,
        reason: 'time_based',
      });
    });
  });

  it('progress updates reset the P0 no-progress deadline', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P0_ALERT]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('25 minutes');
      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'rolling back', actions: ['rollback'] }],
      });
      await env.sleep('10 minutes'); // 35 min: 10 min after the update, no no_progress yet
      let state = await handle.query(stateQuery);
      expect(
        state.timeline.filter((t) => t.kind === 'escalated' && t.message.includes('no_progress')),
      ).toHaveLength(0);
      await env.sleep('21 minutes'); // 56 min: 31 min after the update
      state = await handle.query(stateQuery);
      expect(
        state.timeline.filter((t) => t.kind === 'escalated' && t.message.includes('no_progress')),
      ).toHaveLength(1);
      expect(
        h.recorder.posts.some((p) => p.text.includes('📊 INCIDENT UPDATE') && p.text.includes('- rollback')),
      ).toBe(true);
    });
  });

  it('reminds the channel when a P1 status update is due (every 2 h), and an update moves "Next Update"', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('119 minutes');
      const reminders = () => h.recorder.posts.filter((p) => p.text.startsWith('⏰'));
      expect(reminders()).toHaveLength(0);
      await env.sleep('2 minutes');
      expect(reminders()).toHaveLength(1);
      expect(reminders()[0]).toMatchObject({ channel: '#pno-incidents' });
      const before = (await handle.query(stateQuery)).nextUpdateDue;
      const updated = await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'still digging' }],
      });
      expect(Date.parse(updated.nextUpdateDue ?? '')).toBeGreaterThan(Date.parse(before ?? ''));
      expect(updated.timeline.some((t) => t.kind === 'reminder')).toBe(true);
    });
  });

  it('manual escalation and a severity increase each move one level up', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P2_ALERT]);
      let state = await handle.executeUpdate(OPERATIONS.escalate.update, {
        args: [{ by: 'alice', reason: 'needs the lead' }],
      });
      expect(state.escalationLevel).toBe(1);
      expect(state.notified.find((n) => n.who === 'bob')?.reason).toBe('manual');
      state = await handle.executeUpdate(OPERATIONS.changeSeverity.update, {
        args: [{ by: 'alice', severity: 'P0' }],
      });
      expect(state.severity).toBe('P0');
      expect(state.escalationLevel).toBe(2);
      expect(
        state.notified
          .filter((n) => n.reason === 'severity_increase')
          .map((n) => n.who)
          .sort(),
      ).toEqual(['carol', 'dave']);
      // A firing alert of higher severity raises it too.
      const other = await startAlertIncident(env, h, policy, [P2_ALERT]);
      await other.handle.signal(
        alertsReceivedSignal,
        alertBatch(policy, { alerts: [{ ...P1_ALERT, fingerprint: 'aaaa000000000009' }] }),
      );
      await env.sleep('1 second');
      const raised = await other.handle.query(stateQuery);
      expect(raised.severity).toBe('P1');
      expect(raised.notified.some((n) => n.reason === 'severity_increase')).toBe(true);
    });
  });

  it('critical business impact escalates at once to VP engineering and CTO', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [
        { labels: { severity: 'critical', impact: 'critical' } },
      ]);
      await env.sleep('1 second');
      const state = await handle.query(stateQuery);
      expect(state.escalationLevel).toBe(1);
      expect(
        notifiedAt(state)
          .filter((n) => n.reason === 'impact')
          .map((n) => n.who),
      ).toEqual(['bob', 'erin', 'frank']);
    });
  });
});

describe('incident workflow: engineers', () => {
  it('refuses an unknown engineer before it enters history; an invalid signal is recorded as rejected', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      await env.sleep('1 second');
      await expect(
        handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'mallory' }] }),
      ).rejects.toThrow(WorkflowUpdateFailedError);
      await handle.signal(OPERATIONS.acknowledge.signal, { by: 'mallory' });
      await env.sleep('1 second');
      const state = await handle.query(stateQuery);
      expect(state.status).toBe('triggered');
      expect(state.timeline.filter((t) => t.kind === 'rejected')).toEqual([
        expect.objectContaining({
          actor: 'mallory',
          message: expect.stringContaining('unknown engineer "mallory"'),
        }),
      ]);
      const history = await handle.fetchHistory();
      const updates = history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
      expect(updates).toHaveLength(0);
    });
  });

  it('a P0 resolves only with a commander and a security evaluation, and posts the resolution notice', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [P0_ALERT]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      const resolve = { by: 'alice', rootCause: 'bad deploy', prevention: 'canary' };
      await expect(
        handle.executeUpdate(OPERATIONS.resolve.update, { args: [resolve] }),
      ).rejects.toMatchObject({
        cause: { message: expect.stringContaining('needs an incident commander') },
      });
      await handle.executeUpdate(OPERATIONS.assignCommander.update, {
        args: [{ by: 'alice', commander: 'carol' }],
      });
      await expect(
        handle.executeUpdate(OPERATIONS.resolve.update, { args: [resolve] }),
      ).rejects.toMatchObject({
        cause: { message: expect.stringContaining('needs a security evaluation') },
      });
      await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
        args: [{ by: 'dave', finding: 'no breach', related: false }],
      });
      const state = await handle.executeUpdate(OPERATIONS.resolve.update, { args: [resolve] });
      expect(state).toMatchObject({
        status: 'resolved',
        resolvedBy: 'alice',
        rootCause: 'bad deploy',
        commander: 'carol',
      });
      const result = await handle.result();
      expect(result.status).toBe('resolved');
      const notice = h.recorder.posts.find((p) => p.text.startsWith('✅ INCIDENT RESOLVED'));
      expect(notice?.text).toContain(incidentId);
      expect(notice?.text).toContain('*Root Cause*: bad deploy');
      expect(notice?.text).toContain('canary');
    });
  });

  it('when all alerts resolve the incident is mitigated; a P2 resolves itself after the quiet period, a P1 waits', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const p2 = await startAlertIncident(env, h, policy, [P2_ALERT]);
      const p1 = await startAlertIncident(env, h, policy, [P1_ALERT]);
      for (const [incident, alert] of [
        [p2, P2_ALERT],
        [p1, P1_ALERT],
      ] as const) {
        await incident.handle.signal(
          alertsReceivedSignal,
          alertBatch(policy, { alerts: [{ ...alert, status: 'resolved' }] }),
        );
      }
      await env.sleep('1 minute');
      expect((await p2.handle.query(stateQuery)).status).toBe('mitigated');
      expect((await p1.handle.query(stateQuery)).status).toBe('mitigated');
      await env.sleep('31 minutes');
      const p2State = await p2.handle.result();
      expect(p2State).toMatchObject({
        status: 'resolved',
        rootCause: 'auto-resolved: alerts cleared',
        postmortemRequired: true,
      });
      expect((await p1.handle.query(stateQuery)).status).toBe('mitigated');
      // A re-firing alert takes the mitigated P1 back to where it was.
      await p1.handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [P1_ALERT] }));
      await env.sleep('1 second');
      expect((await p1.handle.query(stateQuery)).status).toBe('triggered');
      await p1.handle.executeUpdate(OPERATIONS.mitigate.update, { args: [{ by: 'alice' }] });
      await p1.handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'fixed' }],
      });
    });
  });

  it('alerts that fire again after resolution open the next incident, linked to the resolved one', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [P2_ALERT]);
      const firstRunId = (await handle.describe()).runId;
      await handle.executeUpdate(OPERATIONS.resolve.update, { args: [{ by: 'alice', rootCause: 'fixed' }] });
      // Before the run closes (its resolution notice is still being posted) the group fires again.
      await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [P2_ALERT] }));
      await env.sleep('5 seconds');
      const latest = env.client.workflow.getHandle(handle.workflowId);
      const next = await latest.query(stateQuery);
      expect(next.id).not.toBe(incidentId);
      expect(next).toMatchObject({ previousIncidentId: incidentId, status: 'triggered', severity: 'P2' });
      expect(next.alerts).toHaveLength(1);
      // The resolved incident keeps its own record.
      const resolvedRun = env.client.workflow.getHandle(handle.workflowId, firstRunId);
      expect((await resolvedRun.query(stateQuery)).status).toBe('resolved');
    });
  });

  it('long incidents continue-as-new without losing state', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P2_ALERT], {
        continueAsNewAfterEvents: 40,
      });
      const firstRunId = (await handle.describe()).runId;
      // Signals (what engineers send from the web UI) are buffered by the server across continue-as-new.
      for (let i = 0; i < 12; i += 1) {
        await handle.signal(OPERATIONS.postUpdate.signal, { by: 'alice', message: `update ${i}` });
        await env.sleep('1 second');
      }
      await env.sleep('1 minute');
      const latest = env.client.workflow.getHandle(handle.workflowId);
      const description = await latest.describe();
      expect(description.runId).not.toBe(firstRunId);
      const state = await latest.query(stateQuery);
      expect(state.timeline.filter((t) => t.kind === 'update').map((t) => t.message)).toEqual(
        Array.from({ length: 12 }, (_, i) => `update ${i}`),
      );
      await latest.executeUpdate(OPERATIONS.resolve.update, { args: [{ by: 'alice', rootCause: 'done' }] });
    });
  });

  it('uses the policy snapshot it started with', async () => {
    const h = await createHarness(env);
    const custom = policyWith({
      escalation: { acknowledgeWithin: { P1: '10m' } },
      playbooks: { enabled: false },
    });
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, custom, [P1_ALERT]);
      await env.sleep('6 minutes');
      expect((await handle.query(stateQuery)).escalationLevel).toBe(0);
      await env.sleep('5 minutes');
      expect((await handle.query(stateQuery)).escalationLevel).toBe(1);
    });
  });
});

describe('incident workflow: defects of issue 8', () => {
  it('escalation deadlines fire on time while deliveries drain before continue-as-new (Slack degraded)', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await slackDegradedAtContinueAsNew(env, h, policy);
      const firstRunId = (await handle.describe()).runId;
      // 14 min: the run wants to continue as new; its status updates retry against a failing Slack for minutes.
      await env.sleep('2 minutes');
      let state = await handle.query(stateQuery);
      expect((await handle.describe()).runId).toBe(firstRunId);
      // The 15 min time-based escalation did not wait for Slack.
      expect(notifiedAt(state).filter((n) => n.reason === 'time_based')).toEqual([
        { after: 900, who: 'bob', level: 1, reason: 'time_based', channels: 'pager+sms' },
        { after: 900, who: 'carol', level: 1, reason: 'time_based', channels: 'pager+phone' },
        { after: 900, who: 'dave', level: 1, reason: 'time_based', channels: 'pager+sms' },
      ]);
      await env.sleep('15 minutes');
      // Once the deliveries gave up (recorded), the run continued as new with everything it knew.
      const latest = env.client.workflow.getHandle(handle.workflowId);
      expect((await latest.describe()).runId).not.toBe(firstRunId);
      state = await latest.query(stateQuery);
      expect(
        state.timeline.some((t) => t.kind === 'notification_failed' && t.message.includes('status update')),
      ).toBe(true);
      expect(notifiedAt(state).find((n) => n.reason === 'time_based')).toMatchObject({
        after: 900,
        who: 'bob',
      });
    });
  });

  it('an incident mitigated by an engineer resolves itself (P2) and reopens when its alert fires again', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const p2 = await startAlertIncident(env, h, policy, [P2_ALERT]);
      const again = await startAlertIncident(env, h, policy, [P2_ALERT]);
      for (const { handle } of [p2, again]) {
        await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
        await handle.executeUpdate(OPERATIONS.mitigate.update, {
          args: [{ by: 'alice', note: 'restarted' }],
        });
        await handle.signal(
          alertsReceivedSignal,
          alertBatch(policy, { alerts: [{ ...P2_ALERT, status: 'resolved' }] }),
        );
      }
      const notice = await eventually('the mitigated notice', () =>
        h.recorder.posts.find((p) => p.text.startsWith('🩹')),
      );
      expect(notice?.text).toContain('It resolves itself after 30m without firing alerts.');
      await env.sleep('10 minutes');
      await again.handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [P2_ALERT] }));
      await env.sleep('25 minutes');
      expect(await p2.handle.result()).toMatchObject({
        status: 'resolved',
        rootCause: 'auto-resolved: alerts cleared',
        postmortemRequired: true,
      });
      const reopened = await again.handle.query(stateQuery);
      expect(reopened.status).toBe('acknowledged');
      expect(reopened.timeline.some((t) => t.kind === 'reopened')).toBe(true);
    });
  });

  it('raising a P2 to P0 posts to #pno-critical-alerts and #pno-leadership; #pno-engineering hears of the resolution', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [P2_ALERT]);
      await env.sleep('1 second');
      await settled(handle);
      const opening = h.recorder.posts.length;
      await handle.executeUpdate(OPERATIONS.changeSeverity.update, {
        args: [{ by: 'alice', severity: 'P0', reason: 'data loss' }],
      });
      const raised = await eventually('the posts of the raise', () => {
        const posts = h.recorder.posts.slice(opening).filter((p) => p.channel.startsWith('#'));
        return posts.length >= 3 ? posts : undefined;
      });
      expect(raised.map((p) => [p.channel, p.text.split('\n')[0]]).sort()).toEqual([
        ['#pno-critical-alerts', '🚨 INCIDENT ALERT - P0'],
        [
          '#pno-incidents',
          expect.stringContaining(`⬆️ ${incidentId} PodCrash on pno-physics-bench raised P2 → P0`),
        ],
        ['#pno-leadership', '🚨 INCIDENT ALERT - P0'],
      ]);
      await resolveP0(handle, 'bad migration');
      const resolution = h.recorder.posts.filter((p) => p.text.startsWith('✅ INCIDENT RESOLVED'));
      expect(resolution.map((p) => p.channel).sort()).toEqual([
        '#pno-critical-alerts',
        '#pno-engineering',
        '#pno-incidents',
        '#pno-leadership',
      ]);
      // Every post names the incident and says how to act (a status update and the resolution notice too).
      expect(resolution[0]?.text).toContain(`*Incident*: ${incidentId} PodCrash on pno-physics-bench`);
      expect(resolution[0]?.text).toContain(`Act: incident show ${incidentId} · `);
      expect(resolution[0]?.text).toContain(
        `/namespaces/${env.namespace ?? 'default'}/workflows/${handle.workflowId}`,
      );
    });
  });
});
