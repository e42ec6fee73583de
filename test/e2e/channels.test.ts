/**
 * Every channel end to end: a real Temporal dev server, the worker and the API
 * as `npm start` runs them, and strict local stand-ins for Slack, PagerDuty,
 * Twilio and an SMTP server. What each person and channel receives is read
 * from the stand-ins; engineers act from a Slack button and an SMS reply.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { ALICE_ALSO_LEADS, policyFileWith } from '../support/policy.ts';
import { PagerDutyStandIn } from '../support/pagerduty-server.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { TwilioStandIn } from '../support/twilio-server.ts';
import { workflowBundle } from '../support/workflow-env.ts';
import { TemporalMaintenance } from '../../src/starter/client/maintenance.ts';

const ROUTING_KEY = 'R0123456789abcdef0123456789abcde';
const SIGNING_SECRET = `slack-signing-${randomUUID()}`;
const TWILIO = {
  accountSid: `AC${'0'.repeat(32)}`,
  authToken: `twilio-${randomUUID()}`,
  from: '+15550109999',
};

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;
const pagerduty = new PagerDutyStandIn({ routingKey: ROUTING_KEY });
const twilio = new TwilioStandIn(TWILIO);
const smtp = new SmtpSink();

beforeAll(async () => {
  server = await startTestDevServer();
  const [eventsUrl, twilioUrl, smtpUrl] = await Promise.all([
    pagerduty.start(),
    twilio.start(),
    smtp.start(),
  ]);
  stack = await startStack({
    address: server.address,
    name: 'e2e-channels',
    workflowBundle: await workflowBundle(),
    slackChannels: ['#pno-incidents', '#pno-leadership', '#pno-critical-alerts', '#pno-engineering'],
    env: {
      PAGERDUTY_EVENTS_URL: eventsUrl,
      PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
      TWILIO_API_URL: twilioUrl,
      TWILIO_ACCOUNT_SID: TWILIO.accountSid,
      TWILIO_AUTH_TOKEN: TWILIO.authToken,
      TWILIO_FROM: TWILIO.from,
      SMTP_URL: smtpUrl,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      INCIDENT_TOKEN_ALICE: `alice-${randomUUID()}`,
      // Alice resolves a P1 here: she is also the engineering lead (the policy's permissions).
      INCIDENT_CONFIG: policyFileWith(ALICE_ALSO_LEADS),
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all([pagerduty.stop(), twilio.stop(), smtp.stop()]);
  await server?.stop();
});

async function fire(labels: Record<string, string>, annotations: Record<string, string> = {}) {
  const groupKey = `{}:{alertname="${labels['alertname']}",run="${randomUUID()}"}`;
  const res = await stack.postAlerts(
    alertmanagerPayload({
      groupKey,
      alerts: [{ labels, annotations, fingerprint: randomUUID().replaceAll('-', '').slice(0, 16) }],
    }),
  );
  expect(res.status).toBe(202);
  const body = (await res.json()) as { incidents: { id: string }[] };
  return body.incidents[0]?.id ?? '';
}

const stateOf = (id: string): Promise<IncidentState> => stack.incidents.getIncident(id);

async function settledState(id: string, done: (s: IncidentState) => boolean): Promise<IncidentState> {
  return eventually(`incident ${id} to settle`, async () => {
    const state = await stateOf(id);
    return done(state) ? state : undefined;
  });
}

/** A Slack button click as Slack sends it: form-encoded `payload`, signed with the signing secret. */
async function clickInSlack(actionId: string, incidentId: string, user: string) {
  const body = new URLSearchParams({
    payload: JSON.stringify({
      type: 'block_actions',
      user: { id: user },
      trigger_id: '1.2.3',
      response_url: stack.slack.responseUrl(),
      actions: [{ type: 'button', action_id: actionId, value: incidentId, block_id: 'incident-actions' }],
    }),
  }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = `v0=${createHmac('sha256', SIGNING_SECRET).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return fetch(`${stack.api.address}/slack/interactions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': signature,
    },
    body,
  });
}

describe('channels, end to end', () => {
  it('a P1 pages by PagerDuty, SMS and phone, threads its Slack posts, and is acknowledged from a Slack button', async () => {
    const id = await fire({ alertname: 'HighErrorRate', severity: 'critical', job: 'pno-physics-bench' });
    await settledState(id, (s) => s.timeline.filter((t) => t.kind === 'notified').length >= 5);

    const [trigger] = (await pagerduty.events.waitFor(1)).filter(
      (e) => e.dedupKey === `${id}:on-call-engineer`,
    );
    expect(trigger).toMatchObject({
      routingKey: ROUTING_KEY,
      action: 'trigger',
      payload: { severity: 'error' },
    });
    expect(trigger?.payload?.summary).toContain(id);
    const sms = twilio.messages.items.filter((m) => m.body.includes(id));
    expect(sms.map((m) => [m.to, m.from])).toEqual([['+15550100001', TWILIO.from]]);
    expect(twilio.calls.items.filter((c) => c.twiml?.includes(id)).map((c) => c.to)).toEqual([
      '+15550100001',
    ]);
    // The worker looked her number up by handle when it sent: the incident names her, never her number.
    const paged = await settledState(id, (s) => s.timeline.some((t) => t.message.includes('phone → alice')));
    expect(paged.timeline.find((t) => t.message.includes('sms → '))?.message).toContain(
      'sms → alice: delivered (twilio message',
    );
    expect(JSON.stringify(paged)).not.toMatch(/\+1555|@pno\.example/);

    // One thread per channel: the first report opens it, with Block Kit and the incident's buttons (the
    // playbook's notice, here a dry run's with no cluster, is a reply in that thread).
    const reports = stack.slack.postLog.items.filter((p) => p.text.includes(id) && p.threadTs === undefined);
    expect(reports.map((p) => p.channel).sort()).toEqual(['#pno-incidents', '#pno-leadership']);
    for (const report of reports) {
      expect(report.threadTs).toBeUndefined();
      expect(report.text).toContain('*Assigned*: Alice Oncall');
      expect(JSON.stringify(report.blocks)).toContain('"action_id":"acknowledge"');
    }

    // Alice clicks Acknowledge in Slack: the incident is hers, and PagerDuty's alert is acknowledged too.
    expect((await clickInSlack('acknowledge', id, 'U0ALICE')).status).toBe(200);
    const acked = await settledState(id, (s) => s.acknowledgedBy === 'alice');
    expect(acked.status).toBe('acknowledged');
    await eventually('PagerDuty acknowledge', () =>
      pagerduty.events.items.find(
        (e) => e.dedupKey === `${id}:on-call-engineer` && e.action === 'acknowledge',
      ),
    );

    // An update goes into each channel's thread; the resolution too, and PagerDuty resolves the alert.
    await stack.incidents.operate(id, 'postUpdate', { by: 'alice', message: 'rolled back the deploy' });
    await stack.incidents.operate(id, 'resolve', { by: 'alice', rootCause: 'bad deploy' });
    await eventually('PagerDuty resolve', () =>
      pagerduty.events.items.find((e) => e.dedupKey === `${id}:on-call-engineer` && e.action === 'resolve'),
    );
    const posts = await eventually('the resolution in every thread', () => {
      const all = stack.slack.postLog.items.filter((p) => p.text.includes(id));
      return all.filter((p) => p.text.includes('INCIDENT RESOLVED')).length >= 3 ? all : undefined;
    });
    for (const report of reports) {
      const replies = posts.filter((p) => p.channel === report.channel && p !== report);
      expect(replies.length).toBeGreaterThanOrEqual(2);
      expect(replies.every((p) => p.threadTs === report.ts)).toBe(true);
    }
    // #pno-engineering hears only of the resolution, as a message of its own.
    expect(posts.filter((p) => p.channel === '#pno-engineering').map((p) => p.threadTs)).toEqual([undefined]);
  });

  it('a P2 reaches the on-call engineer by Slack DM and e-mail; hostile alert text is escaped for each', async () => {
    const id = await fire(
      { alertname: 'PodCrash', severity: 'warning', job: 'pno-physics-bench' },
      { summary: '<!channel> <http://evil.example|click> & <b>bold</b>' },
    );
    const mail = await eventually('the e-mail', () => smtp.mails.items.find((m) => m.subject.includes(id)));
    expect(mail.envelopeTo).toEqual(['alice@pno.example']);
    expect(mail.subject).toBe(`[P2] ${id} PodCrash on pno-physics-bench — new incident`);
    expect(mail.text).toContain(`incident ack ${id}`);
    // The initial report (the investigation's findings also name the incident, and may arrive first).
    const report = await eventually('the channel report', () =>
      stack.slack.postLog.items.find(
        (p) => p.channel === '#pno-incidents' && p.text.includes(id) && p.text.includes('INCIDENT ALERT'),
      ),
    );
    expect(report.text).toContain(
      '&lt;!channel&gt; &lt;http://evil.example|click&gt; &amp; &lt;b&gt;bold&lt;/b&gt;',
    );
    expect(report.text).not.toContain('<!channel>');
    const dm = stack.slack.postLog.items.find((p) => p.channel === 'U0ALICE' && p.text.includes(id));
    expect(dm).toBeDefined();
    // No pager, SMS or phone for a P2.
    expect(pagerduty.events.items.some((e) => e.dedupKey.startsWith(id))).toBe(false);
  });

  it('an e-mail refused for good (550) falls back to a Slack DM, and both are on the timeline', async () => {
    smtp.failNext(550, 1, 'mailbox unavailable');
    const id = await fire({ alertname: 'DocsTypo', severity: 'info', job: 'pno-physics-bench' });
    const state = await settledState(id, (s) =>
      s.timeline.some((t) => t.message.includes('slack → U0GRACE')),
    );
    const deliveries = state.timeline.filter((t) => t.message.startsWith('notification → grace'));
    expect(deliveries.map((t) => t.kind)).toEqual(['notification_failed', 'notified']);
    // The person by handle: their address reached the SMTP server, never the incident's record.
    expect(deliveries[0]?.message).toMatch(/email → grace: refused .*550/);
    expect(JSON.stringify(state)).not.toContain('grace@pno.example');
    expect(stack.slack.postLog.items.some((p) => p.channel === 'U0GRACE' && p.text.includes(id))).toBe(true);
  });

  it('a PagerDuty failure is recorded with its reason and never as delivered', async () => {
    pagerduty.failures.push({
      status: 400,
      body: { status: 'invalid event', message: 'Event object is invalid', errors: ['x'] },
    });
    const id = await fire({ alertname: 'ServiceDown', severity: 'page', job: 'pno-physics-bench' });
    const state = await settledState(id, (s) => s.timeline.some((t) => t.message.includes('pager → ')));
    const pager = state.timeline.find((t) => t.message.includes('pager → '));
    expect(pager?.kind).toBe('notification_failed');
    expect(pager?.message).toContain('refused');
  });

  it('a service in a maintenance window opens its incident and tells Slack, but pages nobody', async () => {
    const maintenance = new TemporalMaintenance(
      stack.client,
      stack.settings.temporal.taskQueue,
      stack.settings.policy,
    );
    await maintenance.add({
      service: 'batch-jobs',
      from: new Date(Date.now() - 60_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
      reason: 'database upgrade',
    });
    // The API looks windows up at most every 5 s (one query per period, however many alerts arrive).
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    const id = await fire({ alertname: 'BatchLag', severity: 'critical', service: 'batch-jobs' });
    const state = await settledState(id, (s) => s.timeline.some((t) => t.kind === 'notified'));
    expect(state.maintenance).toMatchObject({ reason: 'database upgrade' });
    expect(state.timeline.some((t) => t.kind === 'paging_suppressed')).toBe(true);
    expect(pagerduty.events.items.some((e) => e.dedupKey.startsWith(id))).toBe(false);
    expect(twilio.messages.items.some((m) => m.body.includes(id))).toBe(false);
    expect(stack.slack.postLog.items.some((p) => p.channel === '#pno-incidents' && p.text.includes(id))).toBe(
      true,
    );
  });

  it('a Slack rate limit retries only the post it stopped: no channel gets a second first report', async () => {
    stack.slack.failures.push('ratelimited');
    const id = await fire({ alertname: 'HighLatency', severity: 'critical', job: 'pno-physics-bench' });
    const state = await settledState(
      id,
      (s) =>
        s.timeline.filter((t) => t.kind === 'notified' && t.message.startsWith('initial report')).length >= 2,
    );
    const reports = stack.slack.postLog.items.filter(
      (p) => p.text.includes(id) && p.text.includes('INCIDENT ALERT'),
    );
    expect(reports.map((p) => p.channel).sort()).toEqual(['#pno-incidents', '#pno-leadership']);
    expect(state.timeline.some((t) => t.kind === 'notification_failed')).toBe(false);
  });
});
