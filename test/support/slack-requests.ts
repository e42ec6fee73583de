import { createHmac } from 'node:crypto';

/** Slack's request-signing headers for `body` (v0 HMAC-SHA256 of `v0:<timestamp>:<body>`). */
export function slackSign(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)) {
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return { 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': signature };
}

/** A `POST /slack/interactions` request for `app.inject`, signed by `sign` (its form body carries `payload`). */
export function slackInteraction(payload: object, sign: (body: string) => Record<string, string>) {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  return {
    method: 'POST' as const,
    url: '/slack/interactions',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...sign(body) },
    payload: body,
  };
}
