/**
 * The one error every channel throws. Whoever sends (the `deliver` activity)
 * needs one answer from a failure: try again later, or give up and report it.
 *
 * - `not_configured`: a credential or endpoint is missing or malformed (an
 *   environment variable is unset). Retrying cannot help until an operator
 *   acts, so it is not retryable.
 * - `refused`: the provider understood the request and said no (bad channel,
 *   invalid phone number, 5yz SMTP reply, PagerDuty's 400). Not retryable.
 * - `transient`: the provider was unreachable, timed out, rate-limited us or
 *   failed on its side (5xx, 429, 4yz SMTP). Retryable, after `retryAfterMs`
 *   when the provider said how long to wait.
 *
 * Messages carry the provider's own error text, so an operator can act on
 * them, and never a credential: every secret a client knows is redacted from
 * the message before the error is built.
 */
export type DeliveryFailureReason = 'not_configured' | 'refused' | 'transient';

/** The transports, by the name errors and logs use for them. */
export type DeliveryProvider = 'slack' | 'email' | 'pagerduty' | 'twilio' | 'webhook' | 'outbox';

/** How messages name each provider. */
export const PROVIDER_LABEL: Readonly<Record<DeliveryProvider, string>> = {
  slack: 'Slack',
  email: 'SMTP',
  pagerduty: 'PagerDuty',
  twilio: 'Twilio',
  webhook: 'Webhook',
  outbox: 'Outbox',
};

export interface DeliveryErrorOptions {
  provider: DeliveryProvider;
  reason: DeliveryFailureReason;
  message: string;
  /** How long the provider asked us to wait (Retry-After), for transient failures. */
  retryAfterMs?: number;
  /** The provider's error code, when it gave one: `channel_not_found`, `21211`, `550`. */
  code?: string;
  /** The HTTP status, for HTTP providers. */
  status?: number;
  /** Secrets the message must not contain (tokens, passwords, secret URLs). */
  secrets?: readonly (string | undefined)[];
  cause?: unknown;
}

/** A failed delivery, saying whether trying again can help. */
export class DeliveryError extends Error {
  readonly provider: DeliveryProvider;
  readonly reason: DeliveryFailureReason;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly code: string | undefined;
  readonly status: number | undefined;

  constructor(options: DeliveryErrorOptions) {
    super(
      redact(options.message, options.secrets ?? []),
      options.cause ? { cause: options.cause } : undefined,
    );
    this.name = 'DeliveryError';
    this.provider = options.provider;
    this.reason = options.reason;
    this.retryable = options.reason === 'transient';
    this.retryAfterMs = options.retryAfterMs;
    this.code = options.code;
    this.status = options.status;
  }

  /** A missing or malformed credential or endpoint: an operator must act. */
  static notConfigured(provider: DeliveryProvider, message: string): DeliveryError {
    return new DeliveryError({ provider, reason: 'not_configured', message });
  }

  /** The provider said no; the same request would be refused again. */
  static refused(provider: DeliveryProvider, message: string, extra: Partial<DeliveryErrorOptions> = {}) {
    return new DeliveryError({ ...extra, provider, reason: 'refused', message });
  }

  /** Unreachable, overloaded or rate-limited: the same request may succeed later. */
  static transient(provider: DeliveryProvider, message: string, extra: Partial<DeliveryErrorOptions> = {}) {
    return new DeliveryError({ ...extra, provider, reason: 'transient', message });
  }
}

/** Secrets shorter than this are not redacted: replacing "a" everywhere would garble the message. */
const MIN_SECRET_LENGTH = 3;

/** Replaces every occurrence of each secret (also URL-encoded) with `[redacted]`. */
export function redact(message: string, secrets: readonly (string | undefined)[]): string {
  let out = message;
  const forms = secrets
    .filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)
    .flatMap((s) => [s, encodeURIComponent(s)])
    .sort((a, b) => b.length - a.length);
  for (const secret of forms) out = out.split(secret).join('[redacted]');
  return out;
}
