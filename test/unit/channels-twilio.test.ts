import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import { TWILIO_SMS_MAX, TwilioApi, twimlSay } from '../../src/activities/channels/twilio.ts';
import { verifyTwilioSignature } from '../../src/starter/api/verify.ts';
import { TwilioStandIn, spokenText } from '../support/twilio-server.ts';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'twilio-auth-token-5e8f1c2a';
const FROM = '+15005550006';
let twilio: TwilioStandIn | undefined;
afterEach(async () => {
  await twilio?.stop();
  twilio = undefined;
});

async function setup(options: { authToken?: string | (() => string | undefined) } = {}) {
  twilio = new TwilioStandIn({ accountSid: SID, authToken: TOKEN, from: FROM });
  const apiUrl = await twilio.start();
  const api = new TwilioApi({
    apiUrl,
    accountSid: SID,
    authToken: options.authToken ?? TOKEN,
    from: FROM,
    timeoutMs: 2_000,
  });
  return { twilio, api };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

describe('Twilio SMS and calls', () => {
  it('sends an SMS, form-encoded with basic auth, answering the message sid', async () => {
    const { twilio, api } = await setup();
    const sent = await api.sendSms({
      to: '+14155550100',
      body: 'P0 INC-1A2B3C4D: ack with incident ack INC-1A2B3C4D',
    });
    expect(sent).toEqual({ sid: expect.stringMatching(/^SM[0-9a-f]{32}$/), status: 'queued' });
    expect(twilio.messages.items).toEqual([
      expect.objectContaining({
        to: '+14155550100',
        from: FROM,
        body: expect.stringContaining('INC-1A2B3C4D'),
      }),
    ]);
    const request = twilio.requests.items[0];
    expect(request?.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('cuts an SMS body to 1,600 characters', async () => {
    const { twilio, api } = await setup();
    await api.sendSms({ to: '+14155550100', body: 'x'.repeat(5000) });
    expect(twilio.messages.items[0]?.body.length).toBe(TWILIO_SMS_MAX);
  });

  it('places a call that says the text, XML-escaped', async () => {
    const { twilio, api } = await setup();
    const text = 'P0 <script> & "quotes" on pno-physics-bench';
    const call = await api.call({ to: '+14155550100', say: text });
    expect(call.sid).toMatch(/^CA/);
    const twiml = twilio.calls.items[0]?.twiml ?? '';
    expect(twiml).toContain('<Response><Say loop="2">');
    expect(twiml).toContain('&lt;script&gt; &amp; &quot;quotes&quot;');
    expect(spokenText(twiml)).toBe(text);
    expect(twimlSay('a'.repeat(10_000)).length).toBeLessThanOrEqual(4000);
  });

  it("a 400 is refused with Twilio's code and message", async () => {
    const { api } = await setup();
    const err = await failure(api.sendSms({ to: '555-0100', body: 'x' }));
    expect(err).toMatchObject({
      provider: 'twilio',
      reason: 'refused',
      retryable: false,
      status: 400,
      code: '21211',
    });
    expect(err.message).toContain('is not a valid phone number');
  });

  it('a wrong auth token is refused (401) and appears nowhere in the error', async () => {
    const { api } = await setup({ authToken: 'wrong-token-9a8b7c6d' });
    const err = await failure(api.sendSms({ to: '+14155550100', body: 'x' }));
    expect(err).toMatchObject({ reason: 'refused', status: 401, code: '20003' });
    expect(err.message).not.toContain('wrong-token-9a8b7c6d');
    expect(err.message).not.toContain(Buffer.from(`${SID}:wrong-token-9a8b7c6d`).toString('base64'));
  });

  it.each([
    [
      '429 with Retry-After',
      true,
      { ...TwilioStandIn.error(429, 20429, 'Too Many Requests'), retryAfter: '4' },
      4000,
    ],
    ['500', true, TwilioStandIn.error(500, 20500, 'Internal Server Error'), undefined],
    ['503', true, { status: 503, body: 'Service Unavailable' }, undefined],
    ['no answer (timeout)', true, 'hang' as const, undefined],
  ])('%s → retryable %s', async (_name, retryable, injected, retryAfterMs) => {
    const { twilio, api } = await setup();
    twilio.failures.push(injected);
    const err = await failure(api.call({ to: '+14155550100', say: 'x' }));
    expect(err.retryable).toBe(retryable);
    expect(err.retryAfterMs).toBe(retryAfterMs);
    expect(err.message).not.toContain(TOKEN);
  });

  it('an unset auth token is not_configured and sends nothing', async () => {
    const env: Record<string, string | undefined> = {};
    const { twilio, api } = await setup({ authToken: () => env.TWILIO_AUTH_TOKEN });
    const err = await failure(api.sendSms({ to: '+14155550100', body: 'x' }));
    expect(err).toMatchObject({ reason: 'not_configured', retryable: false });
    expect(err.message).toContain('TWILIO_AUTH_TOKEN');
    expect(twilio.requests.length).toBe(0);
  });
});

describe('verifyTwilioSignature', () => {
  // Twilio's published example (https://www.twilio.com/docs/usage/security), as its SDKs test it.
  const authToken = '12345';
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const params = {
    CallSid: 'CA1234567890ABCDE',
    Caller: '+14158675309',
    Digits: '1234',
    From: '+14158675309',
    To: '+18005551212',
  };

  it("accepts Twilio's documented example signature", () => {
    expect(verifyTwilioSignature({ authToken, url, params, signature: 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' })).toBe(
      true,
    );
  });

  it('accepts a signature computed over sorted names and values, and refuses forgeries', () => {
    const data = `${url}CallSid${params.CallSid}Caller${params.Caller}Digits${params.Digits}From${params.From}To${params.To}`;
    const signature = createHmac('sha1', authToken).update(data).digest('base64');
    expect(verifyTwilioSignature({ authToken, url, params, signature })).toBe(true);
    expect(verifyTwilioSignature({ authToken: 'other', url, params, signature })).toBe(false);
    expect(verifyTwilioSignature({ authToken, url, params: { ...params, Digits: '9' }, signature })).toBe(
      false,
    );
    expect(verifyTwilioSignature({ authToken, url: `${url}&x=1`, params, signature })).toBe(false);
    expect(verifyTwilioSignature({ authToken, url, params, signature: undefined })).toBe(false);
  });
});
