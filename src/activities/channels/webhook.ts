import { resolveCredential, resolveEndpoint } from './credential.ts';
import type { Credential } from './credential.ts';
import { DEFAULT_TIMEOUT_MS, excerpt, post, statusFailure } from './http.ts';
import { hmacSha256Hex, safeEqual } from '../../signing.ts';

/**
 * The generic outbound webhook: POST JSON `{type, incident, at}` to a
 * configured URL, signed so the receiver can tell it is ours:
 * `X-Incident-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed by
 * WEBHOOK_SECRET. 2xx is success; 429 and 5xx are retried; any other status
 * (4xx, a redirect) is refused.
 */
export const WEBHOOK_SIGNATURE_HEADER = 'x-incident-signature';

export interface WebhookEvent {
  /** What happened: `incident.triggered`, `incident.escalated`, `incident.resolved`, ... */
  type: string;
  /** The incident, as the receiver should see it. */
  incident: unknown;
  /** ISO 8601 time of the event. */
  at: string;
}

/** What the activities need from the webhook. */
export interface WebhookClient {
  send(event: WebhookEvent): Promise<{ status: number }>;
}

export interface SignedWebhookOptions {
  url: Credential;
  /** WEBHOOK_SECRET; an unsigned webhook is never sent. */
  secret: Credential;
  timeoutMs?: number;
}

export class SignedWebhook implements WebhookClient {
  private readonly url: Credential;
  private readonly secret: Credential;
  private readonly timeoutMs: number;

  constructor(options: SignedWebhookOptions) {
    this.url = options.url;
    this.secret = options.secret;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async send(event: WebhookEvent): Promise<{ status: number }> {
    const url = resolveEndpoint('webhook', 'the webhook URL', this.url);
    const secret = resolveCredential('webhook', 'the signing secret (WEBHOOK_SECRET)', this.secret);
    const body = JSON.stringify({ type: event.type, incident: event.incident, at: event.at });
    // The URL may carry a token in its path or query, like Slack's: it is redacted too.
    const secrets = [secret, url.href, url.search.length > 1 ? url.search : undefined];
    const answer = await post({
      provider: 'webhook',
      url,
      headers: {
        'content-type': 'application/json',
        [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(secret, body),
        'x-incident-event': event.type,
      },
      body,
      timeoutMs: this.timeoutMs,
      secrets,
    });
    if (answer.status >= 200 && answer.status < 300) return { status: answer.status };
    throw statusFailure('webhook', answer, excerpt(answer.text), { secrets });
  }
}

/** The `X-Incident-Signature` value for a raw body. */
export function webhookSignature(secret: string, body: string | Buffer): string {
  return `sha256=${hmacSha256Hex(secret, body)}`;
}

/** What a receiver runs: is this `X-Incident-Signature` ours for this raw body? */
export function verifyWebhookSignature(input: {
  secret: string;
  body: string | Buffer;
  header: string | undefined;
}): boolean {
  if (!input.secret || !input.header) return false;
  return safeEqual(webhookSignature(input.secret, input.body), input.header.trim());
}
