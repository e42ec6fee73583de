import { createHmac } from 'node:crypto';
import { safeEqual } from '../../signing.ts';

/**
 * The providers' request signatures, checked by the API before it believes a
 * callback: Slack interactivity, PagerDuty v3 webhooks, Twilio webhooks. Each
 * is computed over the request exactly as it arrived (the raw body, the URL
 * the provider called), never over a re-serialized parse.
 *
 * Comparisons are constant-time, so a forger cannot learn a valid signature
 * byte by byte from response times; lengths are not secret (every valid
 * signature of a scheme has the same).
 */
/** How far a signed request's timestamp may be from now: Slack's own five minutes, against replays. */
export const SLACK_SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000;

/**
 * Verifies a request Slack signed (interactivity, slash commands, events):
 * `X-Slack-Signature` must be `v0=` + hex HMAC-SHA256 of
 * `v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret,
 * and the timestamp within five minutes of `now` (epoch ms).
 */
export function verifySlackSignature(input: {
  signingSecret: string;
  timestamp: string | number | undefined;
  body: string | Buffer;
  signature: string | undefined;
  now?: number;
}): boolean {
  const seconds = Number(input.timestamp);
  if (!input.signingSecret || !input.signature || !Number.isInteger(seconds)) return false;
  const now = input.now ?? Date.now();
  if (Math.abs(now - seconds * 1000) > SLACK_SIGNATURE_MAX_AGE_MS) return false;
  const hmac = createHmac('sha256', input.signingSecret);
  hmac.update(`v0:${String(input.timestamp)}:`);
  hmac.update(input.body);
  return safeEqual(`v0=${hmac.digest('hex')}`, input.signature);
}

/**
 * Verifies a PagerDuty v3 webhook: `X-PagerDuty-Signature` holds one or more
 * comma-separated `v1=<hex>` signatures (several while a secret is being
 * rotated); the request is genuine when any equals the hex HMAC-SHA256 of
 * the raw body with the subscription's secret.
 */
export function verifyPagerDutySignature(input: {
  secret: string;
  body: string | Buffer;
  header: string | undefined;
}): boolean {
  if (!input.secret || !input.header) return false;
  const expected = `v1=${createHmac('sha256', input.secret).update(input.body).digest('hex')}`;
  let valid = false;
  // Every candidate is compared, so the time taken does not say which one matched.
  for (const candidate of input.header.split(',')) valid = safeEqual(expected, candidate.trim()) || valid;
  return valid;
}

/**
 * Verifies `X-Twilio-Signature` on a webhook Twilio sent: base64
 * HMAC-SHA1, keyed by the auth token, of the full URL Twilio called followed
 * by each POST parameter's name and value, sorted by name (a repeated
 * parameter contributes each of its values, sorted).
 */
export function verifyTwilioSignature(input: {
  authToken: string;
  url: string;
  params: Readonly<Record<string, string | readonly string[]>>;
  signature: string | undefined;
}): boolean {
  if (!input.authToken || !input.signature) return false;
  let data = input.url;
  for (const name of Object.keys(input.params).sort()) {
    const value = input.params[name];
    const values = typeof value === 'string' ? [value] : [...new Set(value)].sort();
    for (const v of values) data += name + v;
  }
  const expected = createHmac('sha1', input.authToken).update(data, 'utf8').digest('base64');
  return safeEqual(expected, input.signature);
}
