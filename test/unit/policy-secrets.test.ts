import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/domain/policy.ts';
import { hasLiteralUrlPassword, isLiteralSecret } from '../../src/domain/literal-secrets.ts';
import { policyWith } from '../support/policy.ts';

/** The PolicyError that `patch` makes, or undefined when the policy loads. */
function errorOf(patch: Record<string, unknown>): PolicyError | undefined {
  try {
    policyWith(patch);
    return undefined;
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
}

const SLACK_TOKEN = 'xoxb-1111111111-2222222222-abcdefghijklmnopqrstuvwx';

describe('secrets written literally in the policy are refused at load, by key', () => {
  it.each([
    [{ channels: { slack: { botToken: SLACK_TOKEN } } }, 'channels.slack.botToken'],
    [
      { channels: { slack: { webhookUrl: 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX' } } },
      'channels.slack.webhookUrl',
    ],
    [
      { channels: { pagerduty: { routingKey: 'R0123456789abcdef0123456789abcdef' } } },
      'channels.pagerduty.routingKey',
    ],
    [
      { channels: { pagerduty: { routingKeys: { 'security-team': 'Rsecurity0123456789abcdef01234567' } } } },
      'channels.pagerduty.routingKeys.security-team',
    ],
    [
      { channels: { twilio: { authToken: '0123456789abcdef0123456789abcdef' } } },
      'channels.twilio.authToken',
    ],
    [
      { channels: { email: { smtpUrl: 'smtp://mailer:hunter2@relay.example.com:587' } } },
      'channels.email.smtpUrl',
    ],
    [{ channels: { webhook: { secret: 'whsec-not-a-reference' } } }, 'channels.webhook.secret'],
    [{ webhook: { token: 'am-token-in-the-file' } }, 'webhook.token'],
    [
      { webhook: { basicAuth: { username: 'alertmanager', password: 'hunter2' } } },
      'webhook.basicAuth.password',
    ],
    // A fallback is used when the variable is unset: a literal secret all the same.
    [{ channels: { slack: { botToken: `\${SLACK_BOT_TOKEN:-${SLACK_TOKEN}}` } } }, 'channels.slack.botToken'],
    [{ channels: { slack: { botToken: `Bearer \${SLACK_BOT_TOKEN}` } } }, 'channels.slack.botToken'],
    // A password in any URL of the policy.
    [{ service: { healthUrl: 'https://probe:s3cret@api.example.com/health' } }, 'service.healthUrl'],
    [
      { channels: { webhook: { url: 'https://user:pa55@hooks.example.com/incidents' } } },
      'channels.webhook.url',
    ],
  ])('%j → %s', (patch, path) => {
    const err = errorOf(patch);
    expect(err).toBeInstanceOf(PolicyError);
    expect(err?.issues).toEqual([
      expect.objectContaining({ path, message: expect.stringMatching(/literally/) }),
    ]);
    // The error names the key, never the secret.
    for (const secret of [
      SLACK_TOKEN,
      'hunter2',
      's3cret',
      'pa55',
      'whsec-not-a-reference',
      'am-token-in-the-file',
    ])
      expect(err?.message).not.toContain(secret);
  });

  it.each([
    [{ channels: { slack: { botToken: '${SLACK_BOT_TOKEN}' } } }],
    [{ channels: { slack: { botToken: '' } } }],
    [{ channels: { pagerduty: { routingKey: '${PAGERDUTY_ROUTING_KEY:-}' } } }],
    [{ channels: { pagerduty: { routingKeys: { 'security-team': '${PD_KEY_SECURITY}' } } } }],
    [{ channels: { email: { smtpUrl: 'smtp://relay.example.com:25' } } }],
    [{ channels: { email: { smtpUrl: 'smtp://mailer@relay.example.com:25' } } }],
    [{ channels: { email: { smtpUrl: 'smtp://mailer:${SMTP_PASSWORD}@relay.example.com:587' } } }],
    [{ channels: { email: { smtpUrl: '${SMTP_URL:-}' } } }],
    [{ webhook: { basicAuth: { username: 'alertmanager', password: '${AM_WEBHOOK_PASSWORD}' } } }],
  ])('a reference, or no secret at all, loads: %j', (patch) => {
    expect(errorOf(patch)).toBeUndefined();
  });

  it('the shipped policy holds references only', () => {
    expect(errorOf({})).toBeUndefined();
  });

  it('the rules', () => {
    expect(isLiteralSecret('${A}')).toBe(false);
    expect(isLiteralSecret('${A}${B}')).toBe(false);
    expect(isLiteralSecret('${A:-}')).toBe(false);
    expect(isLiteralSecret('${A:-x}')).toBe(true);
    expect(isLiteralSecret('x${A}')).toBe(true);
    expect(isLiteralSecret('${a}')).toBe(true); // not a reference: lower-case names are not variables
    expect(hasLiteralUrlPassword('smtp://u:${P}@h')).toBe(false);
    expect(hasLiteralUrlPassword('${SMTP_URL:-smtp://u:p@h}')).toBe(true);
    expect(hasLiteralUrlPassword('https://h/p?q=a:b@c')).toBe(false);
    expect(hasLiteralUrlPassword('not a url: a:b@c')).toBe(false);
  });
});
