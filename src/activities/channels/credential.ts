import { DeliveryError, PROVIDER_LABEL } from './errors.ts';
import type { DeliveryProvider } from './errors.ts';

/**
 * A credential or endpoint as a client's constructor takes it: the value, or
 * how to get it at call time. A getter lets the worker start without a secret
 * (a laptop has no PagerDuty key): the missing value then fails each send
 * with `not_configured` instead of failing the worker. A getter may throw
 * (`MissingSecretError` names the unset variable) or return nothing.
 */
export type Credential = string | (() => string | undefined);

/** The credential's value now, or a `not_configured` DeliveryError naming what is missing. */
export function resolveCredential(provider: DeliveryProvider, what: string, credential: Credential): string {
  let value: string | undefined;
  try {
    value = typeof credential === 'function' ? credential() : credential;
  } catch (err) {
    throw DeliveryError.notConfigured(
      provider,
      `${PROVIDER_LABEL[provider]} is not configured: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (value === undefined || value.trim() === '')
    throw DeliveryError.notConfigured(
      provider,
      `${PROVIDER_LABEL[provider]} is not configured: ${what} is not set`,
    );
  return value;
}

/**
 * An endpoint URL, checked: a malformed one is `not_configured`, and the
 * message never repeats it (a Slack webhook URL is itself a secret).
 */
export function resolveEndpoint(
  provider: DeliveryProvider,
  what: string,
  credential: Credential,
  protocols: readonly string[] = ['http:', 'https:'],
): URL {
  const value = resolveCredential(provider, what, credential);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw DeliveryError.notConfigured(
      provider,
      `${PROVIDER_LABEL[provider]} is not configured: ${what} is not a valid URL`,
    );
  }
  if (!protocols.includes(url.protocol))
    throw DeliveryError.notConfigured(
      provider,
      `${PROVIDER_LABEL[provider]} is not configured: ${what} must be a ${protocols.join(' or ')} URL`,
    );
  return url;
}
