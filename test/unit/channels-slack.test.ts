import { roomName } from '../../src/domain/delivery.ts';
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import {
  SLACK_SECTION_TEXT_MAX,
  SLACK_TEXT_MAX,
  SlackApi,
  SlackError,
  SlackWebhook,
  capSlackText,
  escapeSlack,
  sectionBlock,
} from '../../src/activities/channels/slack.ts';
import { verifySlackSignature } from '../../src/starter/api/verify.ts';
import { SlackStandIn } from '../support/slack-server.ts';

const TOKEN = 'xoxb-1111-2222-secrettokenvalue';
let slack: SlackStandIn | undefined;
afterEach(async () => {
  await slack?.stop();
  slack = undefined;
});

async function setup(token: string = TOKEN) {
  slack = new SlackStandIn({ token: TOKEN, channels: ['#pno-incidents'] });
  const apiUrl = await slack.start();
  return { slack, api: new SlackApi({ apiUrl, token, timeoutMs: 2_000 }) };
}

async function failure(promise: Promise<unknown>): Promise<SlackError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SlackError);
  expect(err).toBeInstanceOf(DeliveryError);
  return err as SlackError;
}

describe('Slack Web API client', () => {
  it('posts text, blocks and a thread reply, and caps what Slack would refuse as too long', async () => {
    const { slack, api } = await setup();
    const first = await api.postMessage({
      channel: '#pno-incidents',
      text: 'x'.repeat(SLACK_TEXT_MAX + 500),
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'y'.repeat(SLACK_SECTION_TEXT_MAX + 10) } }],
    });
    expect(first).toEqual({ channel: '#pno-incidents', ts: expect.stringMatching(/^\d+\.\d+$/) });
    const reply = await api.postMessage({ channel: '#pno-incidents', text: 'update', threadTs: first.ts });
    expect(reply.ts).not.toBe(first.ts);
    const [a, b] = slack.posts;
    expect(a?.text.length).toBe(SLACK_TEXT_MAX);
    expect(a?.text.endsWith('…')).toBe(true);
    expect((a?.blocks?.[0] as { text: { text: string } }).text.text.length).toBe(SLACK_SECTION_TEXT_MAX);
    expect(b).toMatchObject({ threadTs: first.ts, text: 'update', encoding: 'json' });
  });

  it('the stand-in refuses what Slack refuses: unknown thread, malformed blocks', async () => {
    const { api } = await setup();
    expect(
      (await failure(api.postMessage({ channel: '#pno-incidents', text: 'x', threadTs: '1.2' }))).code,
    ).toBe('thread_not_found');
    const bad = await failure(
      api.postMessage({ channel: '#pno-incidents', text: 'x', blocks: [{ kind: 'section' } as never] }),
    );
    expect(bad).toMatchObject({ code: 'invalid_blocks', reason: 'refused', retryable: false });
  });

  it('the stand-in accepts form-encoded calls too (token in the body, blocks as a JSON string)', async () => {
    const { slack } = await setup();
    const form = new URLSearchParams({
      token: TOKEN,
      channel: '#pno-incidents',
      text: 'from a form',
      blocks: JSON.stringify([sectionBlock('*bold*')]),
    });
    const answer = await fetch(`${slack.baseUrl}/api/chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    expect(await answer.json()).toMatchObject({ ok: true, channel: '#pno-incidents' });
    expect(slack.posts[0]).toMatchObject({
      encoding: 'form',
      text: 'from a form',
      blocks: [sectionBlock('*bold*')],
    });
    const plain = await fetch(`${slack.baseUrl}/api/chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${TOKEN}` },
      body: 'hi',
    });
    expect(await plain.json()).toEqual({ ok: false, error: 'invalid_form_data' });
  });

  it('posts an ephemeral message to one user', async () => {
    const { slack, api } = await setup();
    const { messageTs } = await api.postEphemeral({
      channel: '#pno-incidents',
      user: 'U012ABC',
      text: 'only you',
    });
    expect(messageTs).toMatch(/^\d+\.\d+$/);
    expect(slack.ephemerals.items).toEqual([expect.objectContaining({ user: 'U012ABC', text: 'only you' })]);
  });

  it('creates an incident channel, invites, archives; a retried create finds the channel it made', async () => {
    const { slack, api } = await setup();
    const name = roomName({ id: 'INC-1A2B3C4D', title: 'High error rate on pno-physics-bench!' });
    expect(name).toBe('inc-1a2b3c4d-high-error-rate-on-pno-physics-bench');
    const made = await api.createChannel({ name });
    expect(made).toEqual({ channel: expect.stringMatching(/^C/), name, created: true });
    const again = await api.createChannel({ name });
    expect(again).toEqual({ ...made, created: false });
    await api.invite({ channel: made.channel, users: ['U01', 'U02'] });
    await api.invite({ channel: made.channel, users: ['U01'] }); // already_in_channel is not an error
    expect([...(slack.channelsById.get(made.channel)?.members ?? [])]).toEqual(['U01', 'U02']);
    await api.postMessage({ channel: made.channel, text: 'war room open' });
    await api.archive(made.channel);
    await api.archive(made.channel); // already_archived is not an error
    expect(slack.channelsById.get(made.channel)?.archived).toBe(true);
    const archivedPost = await failure(api.postMessage({ channel: made.channel, text: 'late' }));
    expect(archivedPost.code).toBe('is_archived');
    // conversations.list is sent form-encoded, as Slack's clients send read methods
    expect(
      slack.requests.items.some(
        (r) =>
          r.path === '/api/conversations.list' &&
          r.headers['content-type'] === 'application/x-www-form-urlencoded',
      ),
    ).toBe(true);
  });

  it('a name taken by an archived channel is refused and says why', async () => {
    const { slack, api } = await setup();
    for (let i = 0; i < 250; i += 1) slack.addChannel(`other-${i}`); // forces a second page of conversations.list
    slack.addChannel('inc-deadbeef-db-down', { archived: true });
    const err = await failure(api.createChannel({ name: 'inc-deadbeef-db-down' }));
    expect(err).toMatchObject({ code: 'name_taken', retryable: false });
    expect(err.message).toContain('archived');
  });

  it.each([
    ['HTTP 500', true, 'http500' as const, undefined],
    ['HTTP 503 with Retry-After', true, { status: 503, body: { ok: false }, retryAfter: '7' }, 7000],
    [
      'HTTP 429 with Retry-After',
      true,
      { status: 429, body: { ok: false, error: 'ratelimited' }, retryAfter: '3' },
      3000,
    ],
    ['ok:false ratelimited', true, { okFalse: 'ratelimited' }, undefined],
    ['ok:false service_unavailable', true, { okFalse: 'service_unavailable' }, undefined],
    ['ok:false internal_error', false, { okFalse: 'internal_error' }, undefined],
    ['ok:false fatal_error', false, 'ok_false' as const, undefined],
    ['ok:false channel_not_found', false, { okFalse: 'channel_not_found' }, undefined],
    ['no answer (timeout)', true, 'hang' as const, undefined],
  ])('%s → retryable %s', async (_name, retryable, injected, retryAfterMs) => {
    const { slack, api } = await setup();
    slack.failures.push(injected);
    const err = await failure(api.postMessage({ channel: '#pno-incidents', text: 'x' }));
    expect(err.retryable).toBe(retryable);
    expect(err.reason).toBe(retryable ? 'transient' : 'refused');
    expect(err.retryAfterMs).toBe(retryAfterMs);
  });

  it('a wrong token is refused without the token in the message', async () => {
    const { api } = await setup('xoxb-wrong-secret-value');
    const err = await failure(api.postMessage({ channel: '#pno-incidents', text: 'x' }));
    expect(err).toMatchObject({ reason: 'refused', code: 'invalid_auth' });
    expect(err.message).not.toContain('xoxb-wrong-secret-value');
  });

  it('an unset token or API URL is not_configured, not retryable, and sends nothing', async () => {
    const { slack } = await setup();
    const noToken = new SlackApi({
      apiUrl: await Promise.resolve(`${slack.baseUrl}/api`),
      token: () => undefined,
    });
    expect(await failure(noToken.postMessage({ channel: '#x', text: 'x' }))).toMatchObject({
      reason: 'not_configured',
      retryable: false,
    });
    const env: Record<string, string | undefined> = {};
    const noUrl = new SlackApi({ apiUrl: () => env.SLACK_API_URL, token: TOKEN });
    const err = await failure(noUrl.postMessage({ channel: '#x', text: 'x' }));
    expect(err.reason).toBe('not_configured');
    expect(err.message).toContain('SLACK_API_URL');
    expect(slack.requests.length).toBe(0);
  });
});

describe('Slack incoming webhook', () => {
  it('posts {text, blocks}; Slack answers the body "ok"', async () => {
    const { slack } = await setup();
    const hook = new SlackWebhook({ url: slack.webhookUrl, timeoutMs: 2_000 });
    await hook.post({ text: 'hello', blocks: [sectionBlock('*hello*')] });
    expect(slack.webhookPosts.items).toEqual([
      expect.objectContaining({
        text: 'hello',
        blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*hello*', verbatim: true } }],
      }),
    ]);
  });

  it('retries 5xx and 429, refuses 4xx, and never repeats the secret URL', async () => {
    const { slack } = await setup();
    const hook = new SlackWebhook({ url: slack.webhookUrl, timeoutMs: 2_000 });
    slack.failures.push('http500', 'ratelimited', { status: 404, body: 'no_service' });
    const e500 = await failure(hook.post({ text: 'x' }));
    const e429 = await failure(hook.post({ text: 'x' }));
    const e404 = await failure(hook.post({ text: 'x' }));
    expect([e500.retryable, e429.retryable, e404.retryable]).toEqual([true, true, false]);
    expect(e429.retryAfterMs).toBe(1000);
    expect(e404.message).toContain('no_service');
    const wrong = new SlackWebhook({
      url: `${slack.baseUrl}/services/T0/B0/wrongsecretpart`,
      timeoutMs: 2_000,
    });
    const notFound = await failure(wrong.post({ text: 'x' }));
    for (const err of [e500, e429, e404, notFound]) {
      expect(err.message).not.toContain(slack.webhookPath);
      expect(err.message).not.toContain('wrongsecretpart');
    }
    const unset = new SlackWebhook({ url: () => undefined });
    expect((await failure(unset.post({ text: 'x' }))).reason).toBe('not_configured');
  });
});

describe('Slack text', () => {
  it('escapes hostile text so it cannot ping everyone or hide a link', () => {
    expect(escapeSlack('<!channel> deploy & <http://evil|click>')).toBe(
      '&lt;!channel&gt; deploy &amp; &lt;http://evil|click&gt;',
    );
  });

  it('the stand-in receives escaped text intact', async () => {
    const { slack, api } = await setup();
    await api.postMessage({ channel: '#pno-incidents', text: escapeSlack('<!here> <@U123> a>b') });
    expect(slack.posts[0]?.text).toBe('&lt;!here&gt; &lt;@U123&gt; a&gt;b');
  });

  it('caps without splitting an entity, a link or a surrogate pair', () => {
    expect(capSlackText('short')).toBe('short');
    expect(capSlackText('abc &amp; def', 8)).toBe('abc …');
    expect(capSlackText('see <http://example.com|x> now', 12)).toBe('see …');
    expect(capSlackText('ab😀cd', 4)).toBe('ab…');
    expect(capSlackText('a'.repeat(50_000)).length).toBe(SLACK_TEXT_MAX);
  });
});

describe('verifySlackSignature', () => {
  const signingSecret = '8f742231b10e8888abcd99yyyzzz85a5';
  const body = 'payload=%7B%22type%22%3A%22block_actions%22%7D';
  const now = 1_700_000_100_000;
  const timestamp = String(now / 1000 - 30);
  const sign = (secret: string, ts: string, raw: string) =>
    `v0=${createHmac('sha256', secret).update(`v0:${ts}:${raw}`).digest('hex')}`;

  it('accepts a genuine request', () => {
    const signature = sign(signingSecret, timestamp, body);
    expect(verifySlackSignature({ signingSecret, timestamp, body, signature, now })).toBe(true);
    expect(verifySlackSignature({ signingSecret, timestamp, body: Buffer.from(body), signature, now })).toBe(
      true,
    );
  });

  it('refuses a forged signature, a changed body and a malformed header', () => {
    const signature = sign('another-secret', timestamp, body);
    expect(verifySlackSignature({ signingSecret, timestamp, body, signature, now })).toBe(false);
    const genuine = sign(signingSecret, timestamp, body);
    expect(
      verifySlackSignature({ signingSecret, timestamp, body: `${body}x`, signature: genuine, now }),
    ).toBe(false);
    expect(verifySlackSignature({ signingSecret, timestamp, body, signature: 'v0=abc', now })).toBe(false);
  });

  it('refuses a timestamp more than five minutes old or ahead (a replay)', () => {
    for (const ts of [String(now / 1000 - 301), String(now / 1000 + 301)]) {
      const signature = sign(signingSecret, ts, body);
      expect(verifySlackSignature({ signingSecret, timestamp: ts, body, signature, now })).toBe(false);
    }
  });
});
