import { createHmac } from 'node:crypto';
import { slackInteraction, slackSign as signedBy } from '../support/slack-requests.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import type { AppDeps } from '../../src/starter/api/app.ts';
import { publicUrl } from '../../src/starter/api/server.ts';
import { SlackResponder } from '../../src/starter/api/slack-responder.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { policyWith } from '../support/policy.ts';
import { SlackStandIn } from '../support/slack-server.ts';

const ID = 'INC-1a2b3c4d';
const SIGNING_SECRET = 'slack-signing-secret';
const PD_SECRET = 'pagerduty-webhook-secret';
const TWILIO_TOKEN = 'twilio-auth-token';
const PUBLIC_URL = 'https://incidents.example.com';
const BOT_TOKEN = 'xoxb-test-bot-token';

const policy: Policy = policyWith({
  people: { alice: { pagerduty: 'PALICE1', phone: '+1 555-010-0001' } },
});

let slack: SlackStandIn | undefined;
afterEach(async () => {
  await slack?.stop();
  slack = undefined;
});

async function setup(extra: Partial<AppDeps> = {}) {
  slack = new SlackStandIn({ token: BOT_TOKEN });
  const apiUrl = await slack.start();
  const gateway = new FakeGateway();
  gateway.incidents.set(ID, { id: ID, status: 'triggered' } as IncidentState);
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: 'webhook-token',
    engineerTokens: new Map(),
    slackSigningSecret: SIGNING_SECRET,
    pagerDutyWebhookSecret: PD_SECRET,
    twilioAuthToken: TWILIO_TOKEN,
    publicUrl: PUBLIC_URL,
    slack: new SlackResponder({ apiUrl: () => apiUrl, token: () => BOT_TOKEN, timeoutMs: 2_000 }),
    ...extra,
  });
  return { app, gateway, slack };
}

// --- Slack -----------------------------------------------------------------------------------------

function slackSign(body: string, timestamp = Math.floor(Date.now() / 1000), secret = SIGNING_SECRET) {
  return signedBy(body, secret, timestamp);
}

function interaction(payload: object, sign: (body: string) => Record<string, string> = slackSign) {
  return slackInteraction(payload, sign);
}

function click(stand: SlackStandIn, actionId: string, user = 'U0ALICE', value = ID) {
  return {
    type: 'block_actions',
    user: { id: user },
    trigger_id: '12345.98765.abcd',
    response_url: stand.responseUrl(),
    actions: [{ type: 'button', action_id: actionId, value, block_id: 'incident' }],
  };
}

function submission(callbackId: string, values: Record<string, Record<string, unknown>>, user = 'U0ALICE') {
  return {
    type: 'view_submission',
    user: { id: user },
    view: { callback_id: callbackId, private_metadata: ID, state: { values } },
  };
}

describe('POST /slack/interactions', () => {
  it('acknowledges from the button as the clicking person, and says so in the thread', async () => {
    const { app, gateway, slack } = await setup();
    const res = await app.inject(interaction(click(slack, 'acknowledge')));
    expect(res.statusCode).toBe(200);
    const [answer] = await slack.responses.waitFor(1, 5_000);
    expect(gateway.operations).toEqual([{ id: ID, operation: 'acknowledge', argument: { by: 'alice' } }]);
    expect(answer?.body).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: `Acknowledged ${ID} as alice.`,
    });
  });

  it('tells the clicker why an acknowledgment was refused', async () => {
    const { app, gateway, slack } = await setup();
    gateway.refuse = () => `incident ${ID} was already acknowledged by bob`;
    await app.inject(interaction(click(slack, 'acknowledge')));
    const [answer] = await slack.responses.waitFor(1, 5_000);
    expect(answer?.body.text).toContain('already acknowledged by bob');
    expect(gateway.operations).toEqual([]);
  });

  it('refuses an unknown Slack user in the thread, and changes nothing', async () => {
    const { app, gateway, slack } = await setup();
    const res = await app.inject(interaction(click(slack, 'acknowledge', 'U0STRANGER')));
    expect(res.statusCode).toBe(200);
    const [answer] = await slack.responses.waitFor(1, 5_000);
    expect(answer?.body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(answer?.body.text).toContain('U0STRANGER');
    expect(answer?.body.text).toContain('not a person in the incident policy');
    expect(gateway.operations).toEqual([]);
  });

  it('does not take an inherited property name as a person', async () => {
    const { app, gateway, slack } = await setup();
    await app.inject(interaction(click(slack, 'acknowledge', 'constructor')));
    await slack.responses.waitFor(1, 5_000);
    expect(gateway.operations).toEqual([]);
  });

  it.each([
    ['a forged signature', (body: string) => slackSign(body, undefined, 'not-the-secret')],
    ['a stale timestamp (replay)', (body: string) => slackSign(body, Math.floor(Date.now() / 1000) - 6 * 60)],
    ['no signature', () => ({})],
  ])('answers 401 to %s and changes nothing', async (_name, sign) => {
    const { app, gateway, slack } = await setup();
    const res = await app.inject(interaction(click(slack, 'acknowledge'), sign));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(gateway.operations).toEqual([]);
    expect(slack.responses.length).toBe(0);
  });

  it('answers 401 to a body changed after signing', async () => {
    const { app, gateway, slack } = await setup();
    const request = interaction(click(slack, 'acknowledge'));
    const tampered = { ...request, payload: request.payload.replace('U0ALICE', 'U0CAROL') };
    expect((await app.inject(tampered)).statusCode).toBe(401);
    expect(gateway.operations).toEqual([]);
  });

  it('opens the update modal, and its submission posts the update', async () => {
    const { app, gateway, slack } = await setup();
    expect((await app.inject(interaction(click(slack, 'post_update')))).statusCode).toBe(200);
    const [opened] = await slack.views.waitFor(1, 5_000);
    expect(opened).toMatchObject({
      triggerId: '12345.98765.abcd',
      view: { callback_id: 'incident_post_update', private_metadata: ID },
    });
    const res = await app.inject(
      interaction(
        submission('incident_post_update', {
          message: { message: { type: 'plain_text_input', value: 'rolled back the deploy' } },
          public: { public: { type: 'checkboxes', selected_options: [{ value: 'public' }] } },
        }),
      ),
    );
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(gateway.operations).toEqual([
      {
        id: ID,
        operation: 'postUpdate',
        argument: { by: 'alice', message: 'rolled back the deploy', public: true },
      },
    ]);
  });

  it('opens the resolve modal; a refused resolution shows the reason on the modal', async () => {
    const { app, gateway, slack } = await setup();
    await app.inject(interaction(click(slack, 'resolve')));
    const [opened] = await slack.views.waitFor(1, 5_000);
    expect(opened?.view.callback_id).toBe('incident_resolve');
    gateway.refuse = () => 'a P0 incident needs an incident commander before it is resolved';
    const values = {
      root_cause: { root_cause: { value: 'bad deploy' } },
      prevention: { prevention: { value: 'canary' } },
    };
    const refused = await app.inject(interaction(submission('incident_resolve', values)));
    expect(refused.statusCode).toBe(200);
    expect(refused.json()).toEqual({
      response_action: 'errors',
      errors: { root_cause: 'a P0 incident needs an incident commander before it is resolved' },
    });
    gateway.refuse = undefined;
    const ok = await app.inject(interaction(submission('incident_resolve', values)));
    expect(ok.body).toBe('');
    expect(gateway.operations).toEqual([
      {
        id: ID,
        operation: 'resolve',
        argument: { by: 'alice', rootCause: 'bad deploy', prevention: 'canary' },
      },
    ]);
  });

  it('refuses a modal submission from an unknown Slack user on the modal', async () => {
    const { app, gateway } = await setup();
    const res = await app.inject(
      interaction(submission('incident_post_update', { message: { message: { value: 'x' } } }, 'U0NOBODY')),
    );
    expect(res.json()).toMatchObject({ response_action: 'errors', errors: { message: expect.any(String) } });
    expect(gateway.operations).toEqual([]);
  });
});

// --- PagerDuty -------------------------------------------------------------------------------------

function pagerDutyEvent(
  eventType: string,
  agentId: string | null = 'PALICE1',
  key = `${ID}:on-call-engineer`,
) {
  return {
    event: {
      id: '01DEN1HNLEZD6Y0BGB4TAT4CT3',
      event_type: eventType,
      resource_type: 'incident',
      occurred_at: '2025-03-06T10:00:00.000Z',
      agent: agentId ? { id: agentId, type: 'user_reference', summary: 'Someone' } : null,
      client: null,
      data: {
        id: 'Q0RIJJZL24RC6W',
        type: 'incident',
        number: 42,
        status: 'acknowledged',
        incident_key: key,
        title: `${ID} P1 HighErrorRate`,
      },
    },
  };
}

function pagerDutyRequest(payload: object, secret = PD_SECRET, extraSignatures: string[] = []) {
  const body = JSON.stringify(payload);
  const signature = `v1=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return {
    method: 'POST' as const,
    url: '/webhooks/pagerduty',
    headers: {
      'content-type': 'application/json',
      'x-pagerduty-signature': [...extraSignatures, signature].join(','),
    },
    payload: body,
  };
}

describe('POST /webhooks/pagerduty', () => {
  it('acknowledges the incident named by the dedup key, as the person with that PagerDuty id', async () => {
    const { app, gateway } = await setup();
    const res = await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged')));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: 'acknowledged', incident: ID, by: 'alice' });
    expect(gateway.operations).toEqual([{ id: ID, operation: 'acknowledge', argument: { by: 'alice' } }]);
  });

  it('acknowledges as the integration actor "pagerduty" when the agent is nobody in the policy', async () => {
    const { app, gateway } = await setup();
    await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged', 'PUNKNOWN')));
    await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged', null)));
    expect(gateway.operations.map((o) => o.argument)).toEqual([{ by: 'pagerduty' }, { by: 'pagerduty' }]);
  });

  it('accepts any of several signatures (secret rotation)', async () => {
    const { app, gateway } = await setup();
    const res = await app.inject(
      pagerDutyRequest(pagerDutyEvent('incident.acknowledged'), PD_SECRET, ['v1=0123abcd']),
    );
    expect(res.statusCode).toBe(200);
    expect(gateway.operations).toHaveLength(1);
  });

  it('answers 401 to a forged signature and changes nothing', async () => {
    const { app, gateway } = await setup();
    const res = await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged'), 'forged'));
    expect(res.statusCode).toBe(401);
    const unsigned = await app.inject({
      method: 'POST',
      url: '/webhooks/pagerduty',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(pagerDutyEvent('incident.acknowledged')),
    });
    expect(unsigned.statusCode).toBe(401);
    expect(gateway.operations).toEqual([]);
  });

  it('answers 200 and does nothing more to an already acknowledged or unknown incident (no retries)', async () => {
    const { app, gateway } = await setup();
    gateway.refuse = () => `incident ${ID} was already acknowledged by alice`;
    const again = await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged')));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ result: 'unchanged' });
    const unknown = await app.inject(
      pagerDutyRequest(pagerDutyEvent('incident.acknowledged', 'PALICE1', 'INC-ffffffff:on-call-engineer')),
    );
    expect(unknown.statusCode).toBe(200);
    const foreign = await app.inject(
      pagerDutyRequest(pagerDutyEvent('incident.acknowledged', 'PALICE1', 'some-other-integration')),
    );
    expect(foreign.statusCode).toBe(200);
    expect(gateway.operations).toEqual([]);
  });

  it('does not resolve our incident when PagerDuty resolves a page, and ignores other events', async () => {
    const { app, gateway } = await setup();
    for (const type of ['incident.resolved', 'incident.triggered', 'incident.annotated', 'pagey.ping']) {
      const res = await app.inject(pagerDutyRequest(pagerDutyEvent(type)));
      expect(res.statusCode, type).toBe(200);
      expect(res.json(), type).toMatchObject({ result: 'ignored' });
    }
    expect(gateway.operations).toEqual([]);
  });

  it('answers 503 when Temporal is unreachable, so PagerDuty retries', async () => {
    const { app, gateway } = await setup();
    gateway.failWith = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 });
    const res = await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged')));
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
  });
});

// --- SMS (Twilio) ----------------------------------------------------------------------------------

function twilioSign(url: string, params: Record<string, string>, token = TWILIO_TOKEN): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', token).update(data).digest('base64');
}

function sms(body: string, from = '+15550100001', options: { token?: string; url?: string } = {}) {
  const params = {
    AccountSid: 'AC0123456789abcdef0123456789abcdef',
    MessageSid: 'SM0123456789abcdef0123456789abcdef',
    From: from,
    To: '+15550109999',
    Body: body,
    NumMedia: '0',
  };
  return {
    method: 'POST' as const,
    url: '/webhooks/sms',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSign(options.url ?? `${PUBLIC_URL}/webhooks/sms`, params, options.token),
    },
    payload: new URLSearchParams(params).toString(),
  };
}

/** The text of TwiML's one <Message>, unescaped. */
function smsReply(xml: string): string {
  const match =
    /^<\?xml version="1\.0" encoding="UTF-8"\?><Response><Message>([^<]*)<\/Message><\/Response>$/.exec(xml);
  expect(match, xml).not.toBeNull();
  return (match?.[1] ?? '')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

describe('POST /webhooks/sms', () => {
  it('ACK <id> from a person’s phone acknowledges as that person, and replies by SMS', async () => {
    const { app, gateway } = await setup();
    const res = await app.inject(sms(`ack ${ID.toLowerCase()}`));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/xml/);
    expect(smsReply(res.body)).toBe(`${ID} acknowledged by alice.`);
    expect(gateway.operations).toEqual([{ id: ID, operation: 'acknowledge', argument: { by: 'alice' } }]);
  });

  it('RESOLVE <id> <cause…> resolves with that root cause', async () => {
    const { app, gateway } = await setup();
    // bob's phone in the policy is "+15550100002"; Twilio sends E.164 either way.
    const res = await app.inject(sms(`RESOLVE ${ID} bad deploy <rolled back> & fixed`, '+15550100002'));
    expect(smsReply(res.body)).toBe(`${ID} resolved by bob.`);
    expect(gateway.operations).toEqual([
      {
        id: ID,
        operation: 'resolve',
        argument: { by: 'bob', rootCause: 'bad deploy <rolled back> & fixed' },
      },
    ]);
  });

  it('says why not: unknown number, unknown command, bad id, refusal', async () => {
    const { app, gateway } = await setup();
    expect(smsReply((await app.inject(sms(`ACK ${ID}`, '+19999999999'))).body)).toContain(
      'not a phone number in the incident policy',
    );
    expect(smsReply((await app.inject(sms('hello there'))).body)).toContain('Unknown command "hello"');
    expect(smsReply((await app.inject(sms('ACK 1234'))).body)).toContain('is not an incident id');
    expect(smsReply((await app.inject(sms(`RESOLVE ${ID}`))).body)).toContain('say the root cause');
    gateway.refuse = () => `incident ${ID} was already acknowledged by bob`;
    expect(smsReply((await app.inject(sms(`ACK ${ID}`))).body)).toBe(
      `${ID}: not done, incident ${ID} was already acknowledged by bob`,
    );
    expect(gateway.operations).toEqual([]);
  });

  it('answers 401 to a forged signature or one over another URL, and changes nothing', async () => {
    const { app, gateway } = await setup();
    expect((await app.inject(sms(`ACK ${ID}`, undefined, { token: 'forged' }))).statusCode).toBe(401);
    expect(
      (await app.inject(sms(`ACK ${ID}`, undefined, { url: 'http://127.0.0.1:3000/webhooks/sms' })))
        .statusCode,
    ).toBe(401);
    const tampered = sms(`ACK ${ID}`);
    tampered.payload = tampered.payload.replace('%2B15550100001', '%2B15550100003');
    expect((await app.inject(tampered)).statusCode).toBe(401);
    expect(gateway.operations).toEqual([]);
  });

  it('refuses every callback when its secret is not configured', async () => {
    const { app, gateway, slack } = await setup({
      slackSigningSecret: undefined,
      pagerDutyWebhookSecret: undefined,
      twilioAuthToken: undefined,
    });
    expect((await app.inject(interaction(click(slack, 'acknowledge')))).statusCode).toBe(401);
    expect((await app.inject(pagerDutyRequest(pagerDutyEvent('incident.acknowledged')))).statusCode).toBe(
      401,
    );
    expect((await app.inject(sms(`ACK ${ID}`))).statusCode).toBe(401);
    expect(gateway.operations).toEqual([]);
  });
});

describe('over a real socket', () => {
  it('a signed Slack click acknowledges through the listening API', async () => {
    const { app, gateway, slack } = await setup();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const request = interaction(click(slack, 'acknowledge'));
      const res = await fetch(`${address}/slack/interactions`, {
        method: 'POST',
        headers: request.headers,
        body: request.payload,
      });
      expect(res.status).toBe(200);
      await vi.waitFor(() => expect(gateway.operations).toHaveLength(1));
      expect(gateway.operations[0]).toEqual({ id: ID, operation: 'acknowledge', argument: { by: 'alice' } });
    } finally {
      await app.close();
    }
  });
});

describe('INCIDENT_PUBLIC_URL', () => {
  it('is the URL Twilio signatures are checked over; default http://<HOST>:<PORT>', () => {
    expect(publicUrl({ host: '127.0.0.1', port: 3000 }, {})).toBe('http://127.0.0.1:3000');
    expect(publicUrl({ host: '::1', port: 3000 }, {})).toBe('http://[::1]:3000');
    expect(
      publicUrl({ host: '127.0.0.1', port: 3000 }, { INCIDENT_PUBLIC_URL: 'https://x.example.com/' }),
    ).toBe('https://x.example.com');
    expect(() => publicUrl({ host: '127.0.0.1', port: 3000 }, { INCIDENT_PUBLIC_URL: 'nope' })).toThrow(
      /INCIDENT_PUBLIC_URL/,
    );
  });
});
