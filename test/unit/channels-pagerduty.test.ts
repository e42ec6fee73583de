import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import {
  PAGERDUTY_SUMMARY_MAX,
  PagerDutyEvents,
  dedupKey,
  pagerSeverity,
} from '../../src/activities/channels/pagerduty.ts';
import type { PagerTrigger } from '../../src/activities/channels/pagerduty.ts';
import { verifyPagerDutySignature } from '../../src/starter/api/verify.ts';
import { PagerDutyStandIn } from '../support/pagerduty-server.ts';

const ROUTING_KEY = 'R0123456789abcdef0123456789ABCDE'; // 32 characters, like PagerDuty's
let pd: PagerDutyStandIn | undefined;
afterEach(async () => {
  await pd?.stop();
  pd = undefined;
});

async function setup(routingKey: string | (() => string | undefined) = ROUTING_KEY) {
  pd = new PagerDutyStandIn({ routingKey: ROUTING_KEY });
  const eventsUrl = await pd.start();
  return { pd, pager: new PagerDutyEvents({ routingKey, eventsUrl, timeoutMs: 2_000 }) };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

const trigger: PagerTrigger = {
  dedupKey: dedupKey('INC-1A2B3C4D', 'on-call-engineer'),
  summary: 'P0 INC-1A2B3C4D: pno-physics-bench is down',
  source: 'pno-physics-bench',
  severity: pagerSeverity('P0'),
  component: 'api',
  group: 'production',
  class: 'availability',
  customDetails: { incident: 'INC-1A2B3C4D', ack: 'incident ack INC-1A2B3C4D' },
  links: [{ href: 'http://127.0.0.1:8233/namespaces/default/workflows/x', text: 'Temporal UI' }],
};

describe('PagerDuty Events API v2', () => {
  it('maps severities and builds dedup keys', () => {
    expect((['P0', 'P1', 'P2', 'P3'] as const).map(pagerSeverity)).toEqual([
      'critical',
      'error',
      'warning',
      'info',
    ]);
    expect(dedupKey('INC-1A2B3C4D', 'engineering-lead')).toBe('INC-1A2B3C4D:engineering-lead');
  });

  it('triggers, acknowledges and resolves one alert by its dedup key', async () => {
    const { pd, pager } = await setup();
    expect(await pager.trigger(trigger)).toEqual({ dedupKey: 'INC-1A2B3C4D:on-call-engineer' });
    expect(pd.alerts.get(trigger.dedupKey)).toMatchObject({ status: 'triggered', severity: 'critical' });
    await pager.trigger(trigger); // a retried trigger is deduplicated into the same alert
    expect(pd.alerts.size).toBe(1);
    await pager.acknowledge(trigger.dedupKey);
    expect(pd.alerts.get(trigger.dedupKey)?.status).toBe('acknowledged');
    await pager.resolve(trigger.dedupKey);
    expect(pd.alerts.get(trigger.dedupKey)?.status).toBe('resolved');
    const [first, , ack] = pd.events.items;
    expect(first).toMatchObject({
      routingKey: ROUTING_KEY,
      action: 'trigger',
      payload: {
        summary: trigger.summary,
        source: 'pno-physics-bench',
        severity: 'critical',
        component: 'api',
        group: 'production',
        class: 'availability',
        custom_details: trigger.customDetails,
      },
      links: trigger.links,
    });
    // acknowledge and resolve carry only routing_key, dedup_key and event_action
    expect(JSON.parse(pd.requests.items[2]?.body ?? '{}')).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'acknowledge',
      dedup_key: trigger.dedupKey,
    });
    expect(ack?.payload).toBeUndefined();
  });

  it(`truncates the summary to ${PAGERDUTY_SUMMARY_MAX} characters instead of being refused`, async () => {
    const { pd, pager } = await setup();
    await pager.trigger({ ...trigger, summary: 'S'.repeat(5000) });
    const summary = pd.events.items[0]?.payload?.summary ?? '';
    expect(summary.length).toBe(PAGERDUTY_SUMMARY_MAX);
    expect(summary.endsWith('…')).toBe(true);
  });

  it("a 400 is refused with PagerDuty's errors, and the routing key is not in the message", async () => {
    const wrongKey = 'Xbadkey0000000000000000000000000';
    const { pager } = await setup(wrongKey);
    const err = await failure(pager.trigger(trigger));
    expect(err).toMatchObject({ provider: 'pagerduty', reason: 'refused', retryable: false, status: 400 });
    expect(err.message).toContain("'routing_key' is invalid");
    expect(err.message).not.toContain(wrongKey);
    const { pager: good } = await setup();
    const invalid = await failure(good.trigger({ ...trigger, source: '' }));
    expect(invalid.message).toContain("'payload.source' is missing or blank");
  });

  it.each([
    ['429 with Retry-After', true, PagerDutyStandIn.throttled(2), 2000],
    ['500', true, { status: 500, body: 'Internal Server Error' }, undefined],
    ['503', true, { status: 503, body: { status: 'unavailable' } }, undefined],
    ['no answer (timeout)', true, 'hang' as const, undefined],
    ['403', false, { status: 403, body: { status: 'forbidden', message: 'Forbidden' } }, undefined],
  ])('%s → retryable %s', async (_name, retryable, injected, retryAfterMs) => {
    const { pd, pager } = await setup();
    pd.failures.push(injected);
    const err = await failure(pager.trigger(trigger));
    expect(err.retryable).toBe(retryable);
    expect(err.retryAfterMs).toBe(retryAfterMs);
    expect(err.message).not.toContain(ROUTING_KEY);
  });

  it('an unset routing key is not_configured and sends nothing', async () => {
    const env: Record<string, string | undefined> = {};
    const { pd, pager } = await setup(() => env.PAGERDUTY_ROUTING_KEY);
    const err = await failure(pager.trigger(trigger));
    expect(err).toMatchObject({ reason: 'not_configured', retryable: false });
    expect(err.message).toContain('PAGERDUTY_ROUTING_KEY');
    expect(pd.requests.length).toBe(0);
  });
});

describe('verifyPagerDutySignature (v3 webhooks)', () => {
  const secret = 'pd-webhook-secret-0123';
  const body = JSON.stringify({ event: { event_type: 'incident.acknowledged', data: { id: 'Q1' } } });
  const v1 = (key: string) => `v1=${createHmac('sha256', key).update(body).digest('hex')}`;

  it('accepts a genuine signature, also among several (secret rotation)', () => {
    expect(verifyPagerDutySignature({ secret, body, header: v1(secret) })).toBe(true);
    expect(verifyPagerDutySignature({ secret, body, header: `${v1('old-secret')},${v1(secret)}` })).toBe(
      true,
    );
    expect(
      verifyPagerDutySignature({ secret, body: Buffer.from(body), header: `${v1('old')}, ${v1(secret)}` }),
    ).toBe(true);
  });

  it('refuses a forged, missing or malformed signature and a changed body', () => {
    expect(verifyPagerDutySignature({ secret, body, header: v1('forged') })).toBe(false);
    expect(verifyPagerDutySignature({ secret, body, header: undefined })).toBe(false);
    expect(verifyPagerDutySignature({ secret, body, header: 'v1=' })).toBe(false);
    expect(verifyPagerDutySignature({ secret, body: `${body} `, header: v1(secret) })).toBe(false);
  });
});
