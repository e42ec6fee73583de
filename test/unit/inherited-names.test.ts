import { createHmac } from 'node:crypto';
import { slackInteraction, slackSign } from '../support/slack-requests.ts';
import { describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { isPerson, refusal } from '../../src/domain/operations.ts';
import { personByContact } from '../../src/domain/people.ts';
import { rolesOf } from '../../src/domain/permissions.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { policyWith } from '../support/policy.ts';

/*
 * Names every JavaScript object inherits (`constructor`, `__proto__`, `toString`, …) are nobody: every
 * lookup of a person by a name or an id someone else chose reads own properties only, on every way in.
 */

const INHERITED = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];
const ID = 'INC-1a2b3c4d';
const PD_SECRET = 'pagerduty-webhook-secret';
const TWILIO_TOKEN = 'twilio-auth-token';
const SLACK_SECRET = 'slack-signing-secret';
const PUBLIC_URL = 'https://incidents.example.com';
const policy = policyWith({ people: { alice: { pagerduty: 'PALICE1' } } });
const state = { id: ID, severity: 'P2', status: 'triggered', securityRelated: false } as IncidentState;

function setup() {
  const gateway = new FakeGateway();
  gateway.incidents.set(ID, state);
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: 'webhook-token',
    engineerTokens: new Map([['alice-token', 'alice']]),
    slackSigningSecret: SLACK_SECRET,
    pagerDutyWebhookSecret: PD_SECRET,
    twilioAuthToken: TWILIO_TOKEN,
    publicUrl: PUBLIC_URL,
  });
  return { app, gateway };
}

describe('inherited property names are nobody', () => {
  it.each(INHERITED)('the domain: "%s" is no person, holds no role, acts in no operation', (name) => {
    expect(isPerson(policy, name)).toBe(false);
    expect(rolesOf(policy, name)).toEqual([]);
    expect(refusal(policy, state, 'acknowledge', { by: name })).toMatch(/^unknown engineer/);
    expect(refusal(policy, state, 'assignCommander', { by: 'bob', commander: name })).toMatch(
      /^unknown commander/,
    );
    for (const field of ['slack', 'pagerduty', 'phone'] as const)
      expect(personByContact(policy, field, name)).toBeUndefined();
  });

  it('the engineer API: the actor is the token’s person, never a body field or an inherited name', async () => {
    const { app, gateway } = setup();
    const post = (body: string, token = 'alice-token') =>
      app.inject({
        method: 'POST',
        url: `/api/incidents/${ID}/ack`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: body,
      });
    for (const name of INHERITED) {
      expect((await post(JSON.stringify({ by: name }))).statusCode, name).toBe(400);
      expect((await post('{}', name)).statusCode, name).toBe(401);
    }
    expect((await post('{"__proto__": {"by": "bob"}}')).statusCode).toBe(400);
    expect((await post('{"constructor": {"prototype": {"by": "bob"}}}')).statusCode).toBe(400);
    expect(gateway.operations).toEqual([]);
    expect((await post('{}')).statusCode).toBe(200);
    expect(gateway.operations).toEqual([{ id: ID, operation: 'acknowledge', argument: { by: 'alice' } }]);
    await app.close();
  });

  it('Slack: an inherited name as the clicking user is nobody', async () => {
    const { app, gateway } = setup();
    for (const user of INHERITED) {
      const payload = {
        type: 'block_actions',
        user: { id: user },
        actions: [{ type: 'button', action_id: 'acknowledge', value: ID, block_id: 'incident' }],
      };
      const res = await app.inject(slackInteraction(payload, (body) => slackSign(body, SLACK_SECRET)));
      expect(res.statusCode, user).toBe(200);
    }
    await app.close();
    expect(gateway.operations).toEqual([]);
  });

  it('PagerDuty: an inherited name as the agent acknowledges as the integration, never as a person', async () => {
    const { app, gateway } = setup();
    for (const agent of INHERITED) {
      const body = JSON.stringify({
        event: {
          event_type: 'incident.acknowledged',
          agent: { id: agent, type: 'user_reference' },
          data: { incident_key: `${ID}:on-call-engineer` },
        },
      });
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/pagerduty',
        headers: {
          'content-type': 'application/json',
          'x-pagerduty-signature': `v1=${createHmac('sha256', PD_SECRET).update(body).digest('hex')}`,
        },
        payload: body,
      });
      expect(res.json(), agent).toMatchObject({ by: 'pagerduty' });
    }
    expect(new Set(gateway.operations.map((o) => (o.argument as { by: string }).by))).toEqual(
      new Set(['pagerduty']),
    );
    await app.close();
  });

  it('SMS: an inherited name as the sender is no phone of the policy', async () => {
    const { app, gateway } = setup();
    for (const from of INHERITED) {
      const params = { From: from, To: '+15550109999', Body: `ACK ${ID}`, MessageSid: 'SM1' };
      const data = Object.keys(params)
        .sort()
        .reduce((acc, key) => acc + key + params[key as keyof typeof params], `${PUBLIC_URL}/webhooks/sms`);
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/sms',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': createHmac('sha1', TWILIO_TOKEN).update(data).digest('base64'),
        },
        payload: new URLSearchParams(params).toString(),
      });
      expect(res.body, from).toContain('not a phone number in the incident policy');
    }
    expect(gateway.operations).toEqual([]);
    await app.close();
  });
});
