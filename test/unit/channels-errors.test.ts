import { describe, expect, it } from 'vitest';
import { resolveCredential, resolveEndpoint } from '../../src/activities/channels/credential.ts';
import { DeliveryError, redact } from '../../src/activities/channels/errors.ts';
import { parseRetryAfter } from '../../src/activities/channels/http.ts';
import { SlackError } from '../../src/activities/channels/slack.ts';
import { truncateText } from '../../src/activities/channels/text.ts';
import { MissingSecretError } from '../../src/secrets.ts';

describe('DeliveryError', () => {
  it('is retryable exactly when transient', () => {
    expect(DeliveryError.transient('pagerduty', 'x', { retryAfterMs: 5 })).toMatchObject({
      reason: 'transient',
      retryable: true,
      retryAfterMs: 5,
    });
    expect(DeliveryError.refused('twilio', 'x').retryable).toBe(false);
    expect(DeliveryError.notConfigured('email', 'x')).toMatchObject({
      reason: 'not_configured',
      retryable: false,
    });
  });

  it('redacts every secret it is given, also URL-encoded', () => {
    const err = new DeliveryError({
      provider: 'webhook',
      reason: 'refused',
      message: 'failed for s3cr3t/+ and s3cr3t%2F%2B',
      secrets: ['s3cr3t/+', undefined, ''],
    });
    expect(err.message).toBe('failed for [redacted] and [redacted]');
    expect(redact('a b', ['a'])).toBe('a b'); // too short to redact without garbling
  });

  it('SlackError stays constructible as before and is a DeliveryError', () => {
    const err = new SlackError('Slack answered HTTP 503', true, 2000);
    expect(err).toBeInstanceOf(DeliveryError);
    expect(err).toMatchObject({
      provider: 'slack',
      reason: 'transient',
      retryable: true,
      retryAfterMs: 2000,
    });
    expect(new SlackError('channel_not_found', false).reason).toBe('refused');
  });
});

describe('credentials and endpoints', () => {
  it('a getter that throws MissingSecretError, or answers nothing, is not_configured naming the variable', () => {
    const missing = () => {
      throw new MissingSecretError('SLACK_BOT_TOKEN', 'channels.slack.botToken');
    };
    expect(() => resolveCredential('slack', 'the bot token', missing)).toThrow(/SLACK_BOT_TOKEN/);
    try {
      resolveCredential('twilio', 'the auth token (TWILIO_AUTH_TOKEN)', () => '');
    } catch (err) {
      expect(err).toMatchObject({ reason: 'not_configured', retryable: false });
      expect((err as Error).message).toContain('TWILIO_AUTH_TOKEN');
    }
  });

  it('a malformed URL is not_configured and is not repeated', () => {
    expect(() => resolveEndpoint('slack', 'SLACK_WEBHOOK_URL', 'not a url/T0/B0/secretpart')).toThrow(
      /SLACK_WEBHOOK_URL is not a valid URL$/,
    );
    expect(() => resolveEndpoint('email', 'SMTP_URL', 'ftp://x', ['smtp:'])).toThrow(/must be a smtp: URL/);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('truncateText', () => {
  it('keeps short text, cuts long text to the limit with a mark', () => {
    expect(truncateText('abc', 3)).toBe('abc');
    expect(truncateText('abcdef', 4)).toBe('abc…');
    expect(truncateText('x'.repeat(2000), 1024)).toHaveLength(1024);
  });
});
