import { afterEach, describe, expect, it } from 'vitest';
import { SlackApi, SlackError } from '../../src/activities/channels/slack.ts';
import { SlackStandIn } from '../support/slack-server.ts';

let slack: SlackStandIn | undefined;
afterEach(async () => slack?.stop());

async function setup(token = 'xoxb-test') {
  slack = new SlackStandIn({ token: 'xoxb-test', channels: ['#pno-incidents'] });
  const apiUrl = await slack.start();
  return { slack, api: new SlackApi({ apiUrl, token, timeoutMs: 2_000 }) };
}

describe('Slack chat.postMessage client', () => {
  it('posts with the bot token and JSON body', async () => {
    const { slack, api } = await setup();
    const posted = await api.postMessage({ channel: '#pno-incidents', text: 'hello' });
    expect(posted.ts).toMatch(/^\d+\.\d+$/);
    expect(slack.posts).toEqual([
      expect.objectContaining({ token: 'xoxb-test', channel: '#pno-incidents', text: 'hello' }),
    ]);
  });

  it.each([
    ['http500', true],
    ['ratelimited', true],
    ['ok_false', false],
    ['hang', true],
  ] as const)('classifies %s as retryable=%s', async (failure, retryable) => {
    const { slack, api } = await setup();
    slack.failures.push(failure);
    const err = await api.postMessage({ channel: '#pno-incidents', text: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlackError);
    expect((err as SlackError).retryable).toBe(retryable);
    if (failure === 'ratelimited') expect((err as SlackError).retryAfterMs).toBe(1000);
  });

  it('a wrong token or unknown channel is permanent, and the token never appears in the error', async () => {
    const { api } = await setup('xoxb-wrong-secret');
    const err = (await api
      .postMessage({ channel: '#pno-incidents', text: 'x' })
      .catch((e: unknown) => e)) as SlackError;
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('invalid_auth');
    expect(err.message).not.toContain('xoxb-wrong-secret');
    const { api: good } = await setup();
    const missing = (await good
      .postMessage({ channel: '#nope', text: 'x' })
      .catch((e: unknown) => e)) as SlackError;
    expect(missing.retryable).toBe(false);
  });
});

describe('Slack without a token', () => {
  it('fails the call permanently, naming the variable, without failing anything else', async () => {
    const api = new SlackApi({
      apiUrl: 'http://127.0.0.1:9/api',
      token: () => {
        throw new Error('environment variable SLACK_BOT_TOKEN is not set');
      },
    });
    const err = (await api.postMessage({ channel: '#x', text: 'x' }).catch((e: unknown) => e)) as SlackError;
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('SLACK_BOT_TOKEN');
  });
});
