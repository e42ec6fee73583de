import { ApplicationFailure, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { SlackError } from '../../src/activities/channels/slack.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { OPERATIONS, alertsReceivedSignal, stateQuery } from '../../src/contract/messages.ts';
import { listingOf, readListing } from '../../src/contract/listing.ts';
import { playbookFinishedSignal, playbookStepsSignal } from '../../src/contract/playbooks.ts';
import type { OperationName } from '../../src/domain/operations.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { runCli } from '../../src/starter/cli/index.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { eventually } from '../support/eventually.ts';
import { policyWith } from '../support/policy.ts';
import { resolveP0 } from './scenarios.ts';
import {
  alertBatch,
  createHarness,
  settled,
  startAlertIncident,
  timeSkippingPerTest,
  stateAfter,
} from '../support/workflow-env.ts';
import { slackDegradedAtContinueAsNew } from './scenarios.ts';

/**
 * The lifecycle's rules alone: playbooks (and their escalations) are test/workflows/playbooks.test.ts's.
 * Alice is also the engineering lead here, so she may assign a commander and resolve a P0/P1 (the
 * policy's `permissions`); the permissions themselves are tested with the real policy below.
 */
const policy = policyWith({
  playbooks: { enabled: false },
  people: { alice: { roles: ['on-call-engineer', 'engineering-lead'] } },
});
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
      const acked = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] }),
      );
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
      const updated = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.postUpdate.update, {
          args: [{ by: 'alice', message: 'still digging' }],
        }),
      );
      expect(Date.parse(updated.nextUpdateDue ?? '')).toBeGreaterThan(Date.parse(before ?? ''));
      expect(updated.timeline.some((t) => t.kind === 'reminder')).toBe(true);
    });
  });

  it('manual escalation and a severity increase each move one level up', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, policy, [P2_ALERT]);
      let state = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.escalate.update, {
          args: [{ by: 'alice', reason: 'needs the lead' }],
        }),
      );
      expect(state.escalationLevel).toBe(1);
      expect(state.notified.find((n) => n.who === 'bob')?.reason).toBe('manual');
      state = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.changeSeverity.update, {
          args: [{ by: 'alice', severity: 'P0' }],
        }),
      );
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
      const state = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.resolve.update, { args: [resolve] }),
      );
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

/** The real policy: its `permissions` are the procedures' defaults, and alice is only the on-call engineer. */
const realPolicy = policyWith({ playbooks: { enabled: false } });

/** The gateway the API and the CLI use, on the test server (which has no visibility list: the run is given). */
function gatewayFor(handle: WorkflowHandle, incidentId: string): TemporalIncidents {
  const client = {
    // Deadlines are the real client's; the test server is not asked whether a worker polls (so none is known).
    withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    workflow: {
      async *list() {
        yield await Promise.resolve({
          workflowId: handle.workflowId,
          runId: '',
          status: { name: 'RUNNING' },
          startTime: new Date(),
        });
      },
      getHandle: (id: string, runId?: string) => env.client.workflow.getHandle(id, runId),
    },
  } as unknown as Client;
  expect(incidentId).toMatch(/^INC-/);
  return new TemporalIncidents(client, 'unused', realPolicy, {
    maintenance: { activeFor: () => Promise.resolve(undefined) },
  });
}

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('incident workflow: who may act (the policy’s permissions)', () => {
  it('one engineer cannot meet a P0’s gates alone: 403 from the API, exit 1 from the CLI, a signal recorded', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, realPolicy, [P0_ALERT]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      const forbidden = async (op: OperationName, argument: object, roles: string) => {
        const err = await handle
          .executeUpdate(OPERATIONS[op].update as UpdateDefinition<IncidentState, [object]>, {
            args: [{ by: 'alice', ...argument }],
          })
          .then(() => undefined)
          .catch((e: unknown) => e);
        expect(err, op).toBeInstanceOf(WorkflowUpdateFailedError);
        const cause = (err as WorkflowUpdateFailedError).cause;
        expect(cause, op).toBeInstanceOf(ApplicationFailure);
        expect((cause as ApplicationFailure).type, op).toBe('Forbidden');
        expect(cause?.message, op).toContain(`only ${roles} may (alice is on-call-engineer`);
      };
      await forbidden('changeSeverity', { severity: 'P3' }, 'incident-commander or engineering-lead');
      await forbidden(
        'assignCommander',
        { commander: 'alice' },
        'engineering-lead or incident-commander or vp-engineering or cto',
      );
      await forbidden('recordSecurityEvaluation', { finding: 'none', related: false }, 'security-team');
      await forbidden('resolve', { rootCause: 'bad deploy' }, 'incident-commander or engineering-lead');

      // The same refusal through the API (403) and the CLI (exit 1, FORBIDDEN): the gateway maps it.
      const gateway = gatewayFor(handle, incidentId);
      const app = buildApp({
        policy: realPolicy,
        incidents: gateway,
        webhookToken: 'webhook-token',
        engineerTokens: new Map([['alice-token', 'alice']]),
      });
      const res = await app.inject({
        method: 'POST',
        url: `/api/incidents/${incidentId}/resolve`,
        headers: { authorization: 'Bearer alice-token', 'content-type': 'application/json' },
        payload: { rootCause: 'bad deploy' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({
        error: {
          code: 'FORBIDDEN',
          message: expect.stringContaining('only incident-commander or engineering-lead may'),
        },
      });
      await app.close();
      const out: string[] = [];
      const code = await runCli(['severity', incidentId, 'P3', '--by', 'alice', '--json'], {
        out: (l) => out.push(l),
        err: () => undefined,
        env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
        gateway: () => gateway,
      });
      expect(code).toBe(1);
      expect(JSON.parse(out.join('\n'))).toMatchObject({
        error: { code: 'FORBIDDEN', message: expect.stringContaining('lower the severity of a P0 incident') },
      });

      // A signal (the web UI) meets the same rule, and its refusal is on the record.
      await handle.signal(OPERATIONS.resolve.signal, { by: 'alice', rootCause: 'bad deploy' });
      await env.sleep('1 second');
      let state = await handle.query(stateQuery);
      expect(state).toMatchObject({ severity: 'P0', status: 'acknowledged' });
      expect(state.commander).toBeUndefined();
      expect(state.securityEvaluation).toBeUndefined();
      expect(state.timeline.filter((t) => t.kind === 'rejected')).toEqual([
        expect.objectContaining({
          actor: 'alice',
          message: expect.stringContaining('resolve forbidden: alice may not resolve a P0 incident'),
        }),
      ]);

      // The roles the procedures name meet the gates: the lead appoints the commander, security evaluates.
      await handle.executeUpdate(OPERATIONS.assignCommander.update, {
        args: [{ by: 'bob', commander: 'carol' }],
      });
      await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
        args: [{ by: 'dave', finding: 'no breach', related: false }],
      });
      state = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.resolve.update, {
          args: [{ by: 'carol', rootCause: 'bad deploy' }],
        }),
      );
      expect(state).toMatchObject({ status: 'resolved', resolvedBy: 'carol', commander: 'carol' });
      expect(
        state.timeline
          .filter((t) => ['commander', 'security_evaluation', 'resolved'].includes(t.kind))
          .map((t) => t.actor),
      ).toEqual(['bob', 'dave', 'carol']);
    });
  });

  it('an inherited property name is nobody, by update or by signal', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, realPolicy, [P2_ALERT]);
      for (const by of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
        await expect(
          handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by }] }),
          by,
        ).rejects.toMatchObject({
          cause: { type: 'Refused', message: `unknown engineer "${by}": not a person in the policy` },
        });
        await handle.signal(OPERATIONS.acknowledge.signal, { by });
        await handle.signal(OPERATIONS.resolve.signal, { by, rootCause: 'x' });
      }
      await expect(
        handle.executeUpdate(OPERATIONS.assignCommander.update, {
          args: [{ by: 'bob', commander: 'constructor' }],
        }),
      ).rejects.toMatchObject({
        cause: { type: 'Refused', message: expect.stringContaining('unknown commander "constructor"') },
      });
      await env.sleep('1 second');
      const state = await handle.query(stateQuery);
      expect(state.status).toBe('triggered');
      expect(state.commander).toBeUndefined();
      expect(state.timeline.filter((t) => t.kind === 'rejected').map((t) => t.actor)).toEqual([
        'constructor',
        'constructor',
        '__proto__',
        '__proto__',
        'toString',
        'toString',
        'hasOwnProperty',
        'hasOwnProperty',
      ]);
    });
  });

  it('malformed signals are recorded as rejected, small, and never wedge the run', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, realPolicy, [P1_ALERT]);
      const huge = 'x'.repeat(500_000);
      const malformed: unknown[] = [
        null,
        42,
        huge,
        [],
        { by: {} },
        { by: huge },
        { by: ['alice'] },
        { by: 'alice', rootCause: 7 },
      ];
      for (const arg of malformed) await handle.signal(OPERATIONS.resolve.signal, arg as never);
      // Payloads no JSON decoder reads (`temporal workflow signal --input-meta …`, another SDK's converter).
      const undecodable = [
        [{ metadata: { encoding: utf8('json/plain') }, data: utf8('{"by": "alice", oops') }],
        [{ metadata: { encoding: utf8('binary/protobuf') }, data: utf8('\u0008\u0001') }],
        // A second argument is never decoded (the handlers take one).
        [
          { metadata: { encoding: utf8('json/plain') }, data: utf8('{"by":"mallory"}') },
          { metadata: { encoding: utf8('no/such-encoding') }, data: utf8('x') },
        ],
      ];
      for (const payloads of undecodable) {
        await env.client.workflowService.signalWorkflowExecution({
          namespace: env.namespace ?? 'default',
          workflowExecution: { workflowId: handle.workflowId },
          signalName: OPERATIONS.acknowledge.name,
          input: { payloads },
          identity: 'a web UI user',
        });
      }
      await handle.signal(OPERATIONS.acknowledge.signal, { by: 'alice' });
      await env.sleep('1 second');
      const state = await handle.query(stateQuery);
      expect(state).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'alice' });
      const rejected = state.timeline.filter((t) => t.kind === 'rejected');
      expect(rejected).toHaveLength(malformed.length + undecodable.length);
      expect(rejected.slice(-undecodable.length).map((t) => t.message)).toEqual([
        expect.stringContaining(
          'acknowledge refused: the argument could not be decoded (encoding "json/plain")',
        ),
        expect.stringContaining(
          'acknowledge refused: the argument could not be decoded (encoding "binary/protobuf")',
        ),
        expect.stringContaining('acknowledge refused: unknown engineer "mallory"'),
      ]);
      // A huge argument is cut short on the record: the state stays far below Temporal's payload limits.
      for (const entry of rejected) expect(entry.actor.length + entry.message.length).toBeLessThan(300);
      expect(JSON.stringify(state).length).toBeLessThan(100_000);
      // The run goes on: its acknowledgment deadline no longer escalates, the time-based one does.
      await env.sleep('61 minutes');
      const later = await handle.query(stateQuery);
      expect(later.notified.map((n) => n.reason)).toContain('time_based');
      expect(later.notified.map((n) => n.reason)).not.toContain('ack_timeout');
    });
  });
  it('malformed system signals (alerts, playbook reports) sent by hand are recorded as rejected too', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle } = await startAlertIncident(env, h, realPolicy, [P1_ALERT]);
      await handle.signal(alertsReceivedSignal, null as never);
      await handle.signal(alertsReceivedSignal, { receiver: 'x' } as never);
      await handle.signal(playbookStepsSignal, [null] as never);
      await handle.signal(playbookFinishedSignal, 'done' as never);
      await env.client.workflowService.signalWorkflowExecution({
        namespace: env.namespace ?? 'default',
        workflowExecution: { workflowId: handle.workflowId },
        signalName: alertsReceivedSignal.name,
        input: { payloads: [{ metadata: { encoding: utf8('json/plain') }, data: utf8('[{') }] },
        identity: 'a web UI user',
      });
      await handle.signal(OPERATIONS.acknowledge.signal, { by: 'alice' });
      await env.sleep('1 second');
      const state = await handle.query(stateQuery);
      expect(state).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'alice' });
      expect(state.timeline.filter((t) => t.kind === 'rejected').map((t) => t.message)).toEqual([
        'alertsReceived refused: the argument is not what the signal carries',
        'alertsReceived refused: the argument is not what the signal carries',
        'playbookSteps refused: the argument is not what the signal carries',
        'playbookFinished refused: the argument is not what the signal carries',
        expect.stringContaining(
          'alertsReceived refused: the argument could not be decoded (encoding "json/plain")',
        ),
      ]);
    });
  });
});

describe('incident workflow: what listings read from visibility (issue 11)', () => {
  it('keeps its listing in its memo: opening, public updates (not private ones), the security flag, resolution', async () => {
    const h = await createHarness(env);
    await h.run(async () => {
      const { handle, incidentId } = await startAlertIncident(env, h, policy, [P1_ALERT]);
      const listed = async () => readListing((await handle.describe()).memo, incidentId);
      const opened = await eventually('the listing memo', listed, { timeoutMs: 20_000, intervalMs: 50 });
      const state = await handle.query(stateQuery);
      expect(opened).toEqual({
        id: incidentId,
        createdAt: state.createdAt,
        securityRelated: false,
        publicUpdateCount: 0,
        publicUpdates: [],
      });

      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'internal: the primary is thrashing' }],
      });
      expect((await listed())?.publicUpdateCount).toBe(0);
      const update = await stateAfter(
        handle,
        handle.executeUpdate(OPERATIONS.postUpdate.update, {
          args: [{ by: 'alice', message: 'We are investigating slow answers', eta: '1 h', public: true }],
        }),
      );
      expect(await listed()).toMatchObject({
        publicUpdateCount: 1,
        publicUpdates: [
          { at: update.publicUpdates[0]?.at, message: 'We are investigating slow answers', eta: '1 h' },
        ],
      });

      await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
        args: [{ by: 'dave', finding: 'a leaked token was used', related: true }],
      });
      expect((await listed())?.securityRelated).toBe(true);

      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'token revoked' }],
      });
      const resolved = (await handle.result()) as IncidentState;
      expect(resolved.resolvedAt).toBeDefined();
      expect(await listed()).toEqual(listingOf(resolved));
    });
  });
});
