import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import {
  SignedWebhook,
  verifyWebhookSignature,
  webhookSignature,
} from '../../src/activities/channels/webhook.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';

const SECRET = 'whsec-4c1d9e7f0a2b';
let receiver: WebhookReceiver | undefined;
afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

async function setup(secret: string | (() => string | undefined) = SECRET, query = '') {
  receiver = new WebhookReceiver();
  const url = `${await receiver.start()}${query}`;
  return { receiver, hook: new SignedWebhook({ url, secret, timeoutMs: 2_000 }) };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

const event = {
  type: 'incident.triggered',
  incident: { id: 'INC-1A2B3C4D', severity: 'P1', title: 'High error rate' },
  at: '2025-01-01T00:00:00.000Z',
};

describe('signed generic webhook', () => {
  it('POSTs {type, incident, at} signed with HMAC-SHA256 of the raw body', async () => {
    const { receiver, hook } = await setup();
    expect(await hook.send(event)).toEqual({ status: 204 });
    const [got] = await receiver.received.waitFor(1);
    expect(got?.json).toEqual(event);
    expect(got?.event).toBe('incident.triggered');
    expect(got?.signature).toBe(
      `sha256=${createHmac('sha256', SECRET)
        .update(got?.body ?? '')
        .digest('hex')}`,
    );
    expect(verifyWebhookSignature({ secret: SECRET, body: got?.body ?? '', header: got?.signature })).toBe(
      true,
    );
    expect(verifyWebhookSignature({ secret: 'forged', body: got?.body ?? '', header: got?.signature })).toBe(
      false,
    );
    expect(webhookSignature(SECRET, '{}')).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it.each([
    ['429 with Retry-After', true, { status: 429, retryAfter: '5' }, 5000],
    ['500', true, { status: 500 }, undefined],
    ['502', true, { status: 502, body: '<html>Bad Gateway</html>' }, undefined],
    ['no answer (timeout)', true, 'hang' as const, undefined],
    ['400', false, { status: 400, body: { error: 'bad' } }, undefined],
    ['404', false, { status: 404 }, undefined],
    ['410', false, { status: 410 }, undefined],
  ])('%s → retryable %s', async (_name, retryable, injected, retryAfterMs) => {
    const { receiver, hook } = await setup();
    receiver.failures.push(injected);
    const err = await failure(hook.send(event));
    expect(err).toMatchObject({ provider: 'webhook', retryable, retryAfterMs });
  });

  it('never puts the secret or a token in the URL into an error', async () => {
    const { receiver, hook } = await setup(SECRET, '?token=url-token-31337');
    receiver.failures.push({ status: 403, body: `denied for ${SECRET}` });
    const err = await failure(hook.send(event));
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('url-token-31337');
    await receiver.stop();
    const down = await failure(hook.send(event));
    expect(down.retryable).toBe(true);
    expect(down.message).not.toContain('url-token-31337');
  });

  it('an unset WEBHOOK_SECRET is not_configured: nothing unsigned goes out', async () => {
    const env: Record<string, string | undefined> = {};
    const { receiver, hook } = await setup(() => env.WEBHOOK_SECRET);
    const err = await failure(hook.send(event));
    expect(err).toMatchObject({ reason: 'not_configured', retryable: false });
    expect(err.message).toContain('WEBHOOK_SECRET');
    expect(receiver.requests.length).toBe(0);
  });
});
