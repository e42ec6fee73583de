import { slackInteraction, slackSign } from '../support/slack-requests.ts';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { notConfiguredSink, slackNotifier, slackPoster } from '../../src/activities/channels/notifier.ts';
import type { Notifier, PersonChannel } from '../../src/activities/channels/notifier.ts';
import { slackMessage, toSlackMrkdwn } from '../../src/activities/channels/render.ts';
import {
  SLACK_BLOCKS_MAX,
  SLACK_SECTION_TEXT_MAX,
  SLACK_TEXT_MAX,
  SlackApi,
} from '../../src/activities/channels/slack.ts';
import type { SlackBlock, SlackMessage } from '../../src/activities/channels/slack.ts';
import { createActivities } from '../../src/activities/index.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import { deliveriesFor } from '../../src/domain/delivery.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import { PolicySnapshots } from '../../src/policy-snapshots.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { SlackResponder } from '../../src/starter/api/slack-responder.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { policyWith } from '../support/policy.ts';
import { SlackStandIn } from '../support/slack-server.ts';

const ID = 'INC-0000beef';
const SECRET = 'slack-signing-secret';

const HOSTILE =
  '<!channel> <!here|here> <@U0BOSS> <#C0GENERAL> <http://evil.example|click me> & <https://x.y>';

/** Every text a Slack message carries: the fallback and each block's (fields too). */
function texts(message: SlackMessage): string[] {
  const out = [message.text];
  for (const block of message.blocks ?? []) {
    if (block.text) out.push(block.text.text);
    for (const field of (block.fields ?? []) as SlackBlock['fields'] & object) out.push(field.text);
  }
  return out;
}

function recordingSlack() {
  const messages: SlackMessage[] = [];
  const rooms: string[] = [];
  const poster = slackPoster({
    postMessage: (m) => {
      messages.push(m);
      return Promise.resolve({ channel: m.channel, ts: `${messages.length}.0` });
    },
    createChannel: ({ name }) => {
      rooms.push(name);
      return Promise.resolve({ channel: 'C0ROOM', name, created: true });
    },
    invite: () => Promise.resolve(),
    archive: () => Promise.resolve(),
  });
  return { messages, rooms, poster };
}

describe('untrusted text in Slack', () => {
  it('alerts’ labels and annotations, titles, updates and the room name reach Slack as text, never as markup', async () => {
    const policy = policyWith({ channels: { slack: { mode: 'channel' } }, playbooks: { enabled: false } });
    const run = new IncidentLifecycle({ incidentId: 'INC-0000beef' }, policy, {
      workflowId: 'alertgroup-1',
      namespace: 'default',
    });
    const payload = alertmanagerPayload({
      alerts: [
        {
          labels: { alertname: `Down ${HOSTILE}`, severity: 'page', pod: HOSTILE, service: `svc ${HOSTILE}` },
          annotations: { summary: HOSTILE, description: HOSTILE, runbook_url: 'http://evil.example|click' },
        },
      ],
    });
    run.receiveAlerts(toAlertBatch(policy, webhookPayloadSchema.parse(payload), 1000), 0);
    run.apply('acknowledge', { by: 'alice' }, 1000);
    run.apply(
      'postUpdate',
      { by: 'alice', message: HOSTILE, actions: [HOSTILE], focus: HOSTILE, eta: HOSTILE },
      2000,
    );
    run.apply('escalate', { by: 'alice', reason: HOSTILE }, 3000);
    const slack = recordingSlack();
    const sent: string[] = [];
    const notifier = (channel: PersonChannel): Notifier => ({
      channel,
      send: (m) => Promise.resolve(sent.push(m.text).toString()),
    });
    const activities = createActivities({
      channels: {
        notifiers: {
          pager: notifier('pager'),
          sms: notifier('sms'),
          phone: notifier('phone'),
          slack: slackNotifier(slack.poster),
          email: notifier('email'),
        },
        posts: slack.poster,
        pager: { send: () => Promise.resolve('ok') },
        events: notConfiguredSink('none'),
        outbox: new Set(),
      },
      history: { previousIncidentId: () => Promise.resolve(undefined) },
      policies: new PolicySnapshots({ current: policy }),
    });
    const state = run.state as IncidentState;
    const deliveries = deliveriesFor(policy, state, run.outbox.splice(0), 'http://ui');
    await new MockActivityEnvironment().run(
      (input: Parameters<typeof activities.deliver>[0]) => activities.deliver(input),
      { incidentId: state.id, deliveries, maxAttempts: 1 },
    );
    expect(slack.messages.length).toBeGreaterThan(3);
    for (const message of slack.messages)
      for (const text of texts(message)) {
        // Slack's control sequences all start with "<": the only ones are links that show their own target.
        expect(text.replace(/<https?:\/\/[^\s<>|]+>/g, ''), text).not.toMatch(/[<>]/);
        expect(text).not.toMatch(/&(?!amp;|lt;|gt;)/);
      }
    expect(slack.messages.some((m) => m.text.includes('&lt;!channel&gt;'))).toBe(true);
    expect(slack.rooms).toHaveLength(1);
    expect(slack.rooms[0]).toMatch(/^inc-0000beef-[a-z0-9-]+$/);
    expect(slack.rooms[0]?.length).toBeLessThanOrEqual(80);
  });
});

describe('Slack messages within Slack’s limits, cut with a notice', () => {
  it('every section is verbatim: Slack makes no mention or link of plain "@channel", "#general" or a bare URL', () => {
    const { blocks } = slackMessage(
      '@channel @here @everyone #general see https://grafana.example/d/1',
      ID,
      true,
    );
    const sections = blocks.filter((b) => b.type === 'section');
    expect(sections.length).toBeGreaterThan(0);
    for (const block of sections) expect(block.text).toMatchObject({ type: 'mrkdwn', verbatim: true });
    // Our own links stay clickable: explicit links that show their target.
    expect(sections[0]?.text?.text).toBe(
      '@channel @here @everyone #general see <https://grafana.example/d/1>',
    );
    // One written as Slack markup stays text.
    expect(toSlackMrkdwn('<http://evil.example|click> (https://ok.example/x).')).toBe(
      '&lt;http://evil.example|click&gt; (<https://ok.example/x>).',
    );
  });

  it('the Web API is asked to parse nothing and link no names', async () => {
    const stand = new SlackStandIn({ token: 'xoxb-t', channels: ['#pno-incidents'] });
    try {
      const api = new SlackApi({ apiUrl: await stand.start(), token: 'xoxb-t', timeoutMs: 2_000 });
      await api.postMessage({ channel: '#pno-incidents', ...slackMessage('hello @channel', ID, false) });
      const [request] = stand.requests.items.filter((r) => r.path === '/api/chat.postMessage');
      expect(JSON.parse(request?.body ?? '{}')).toMatchObject({ parse: 'none', link_names: false });
    } finally {
      await stand.stop();
    }
  });

  it('a report over Slack’s limits is cut, says so and where the whole record is, and is never refused', () => {
    // 400 alerts' worth of paragraphs (about 1.2 KB each, with characters that escaping lengthens).
    const paragraph = (i: number) => `alert ${i}: ${'pod <crash> & restart '.repeat(50)}`;
    const text = Array.from({ length: 400 }, (_, i) => paragraph(i)).join('\n\n');
    for (const actions of [true, false]) {
      const message = slackMessage(text, ID, actions);
      expect(message.blocks.length).toBeLessThanOrEqual(SLACK_BLOCKS_MAX);
      const sections = message.blocks.filter((b) => b.type === 'section').map((b) => b.text?.text ?? '');
      for (const section of sections) expect(section.length).toBeLessThanOrEqual(SLACK_SECTION_TEXT_MAX);
      expect(sections.reduce((n, s) => n + s.length, 0)).toBeLessThanOrEqual(SLACK_TEXT_MAX);
      expect(sections.at(-1)).toMatch(
        new RegExp(
          `^… _\\d+ more characters cut \\(Slack's limits\\): the whole record is \`incident show ${ID}\`_$`,
        ),
      );
      expect(sections[0]).toContain('alert 0: pod &lt;crash&gt; &amp; restart');
      expect(message.blocks.at(-1)?.type).toBe(actions ? 'actions' : 'section');
      expect(message.text.length).toBeLessThanOrEqual(SLACK_TEXT_MAX);
      expect(message.text).toMatch(
        /more characters cut \(Slack's limits\): the whole record is `incident show INC-0000beef`_$/,
      );
    }
  });

  it('no section starts or ends inside an escaped character or a link', () => {
    const text = `${'x'.repeat(2_896)}&&&& <>${'y'.repeat(2_890)} https://example.com/${'z'.repeat(40)} end`;
    const sections = slackMessage(text, ID, false)
      .blocks.filter((b) => b.type === 'section')
      .map((b) => b.text?.text ?? '');
    expect(sections.length).toBeGreaterThan(1);
    for (const section of sections) {
      expect(section).not.toMatch(/&[a-z]{0,3}$/);
      expect(section).not.toMatch(/^[a-z]{1,3};/);
      expect(section.split('<').length).toBe(section.split('>').length);
    }
    expect(sections.join('')).toContain('&amp;&amp;&amp;&amp;');
  });
});

describe('what the API answers in Slack', () => {
  it('a refusal that quotes untrusted text reaches the clicker escaped', async () => {
    const stand = new SlackStandIn({ token: 'xoxb-t' });
    const apiUrl = await stand.start();
    const gateway = new FakeGateway();
    gateway.incidents.set(ID, { id: ID, status: 'triggered' } as IncidentState);
    gateway.refuse = () => 'step "<!channel> <http://evil.example|click>" does not wait for approval';
    const app = buildApp({
      policy: policyWith({}),
      incidents: gateway,
      webhookToken: 'webhook-token',
      engineerTokens: new Map(),
      slackSigningSecret: SECRET,
      slack: new SlackResponder({ apiUrl: () => apiUrl, token: () => 'xoxb-t', timeoutMs: 2_000 }),
    });
    try {
      const payload = {
        type: 'block_actions',
        user: { id: 'U0ALICE' },
        response_url: stand.responseUrl(),
        actions: [{ type: 'button', action_id: 'acknowledge', value: ID, block_id: 'incident' }],
      };
      const res = await app.inject(slackInteraction(payload, (body) => slackSign(body, SECRET)));
      expect(res.statusCode).toBe(200);
      const [answer] = await stand.responses.waitFor(1, 5_000);
      expect(answer?.body.text).toContain('&lt;!channel&gt; &lt;http://evil.example|click&gt;');
      expect(answer?.body.text).not.toMatch(/[<>]/);
    } finally {
      await app.close();
      await stand.stop();
    }
  });
});
