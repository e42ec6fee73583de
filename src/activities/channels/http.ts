import { DeliveryError, PROVIDER_LABEL } from './errors.ts';
import type { DeliveryProvider } from './errors.ts';

/**
 * The one HTTP client of the channels: a POST with a deadline that covers the
 * whole exchange (connect, headers and body), no redirects (a real provider
 * API never redirects a POST; following one would resend the body, and its
 * credentials, elsewhere), and network failures turned into transient
 * DeliveryErrors that carry only the cause's message.
 */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export interface PostOptions {
  provider: DeliveryProvider;
  url: URL;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Redacted from any error message (tokens, passwords, secret URLs). */
  secrets: readonly (string | undefined)[];
}

export const DEFAULT_TIMEOUT_MS = 10_000;

export async function post(options: PostOptions): Promise<HttpAnswer> {
  const { provider, secrets } = options;
  try {
    const response = await fetch(options.url, {
      method: 'POST',
      headers: options.headers,
      body: options.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
      throw DeliveryError.transient(
        provider,
        `${PROVIDER_LABEL[provider]} did not answer within ${options.timeoutMs} ms`,
        {
          cause: err,
        },
      );
    throw DeliveryError.transient(
      provider,
      `${PROVIDER_LABEL[provider]} unreachable: ${describeNetworkError(err)}`,
      {
        secrets: [...secrets, options.url.href],
      },
    );
  }
}

/** fetch() fails with "fetch failed"; the useful part (ECONNREFUSED 127.0.0.1:9) is in its cause. */
function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return err.message;
}

/** `Retry-After` as delta-seconds or an HTTP date, in milliseconds from now. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The retry rule every HTTP provider shares: 429 and 5xx may succeed later
 * (after Retry-After when given); any other status is a refusal.
 */
export function statusFailure(
  provider: DeliveryProvider,
  answer: HttpAnswer,
  detail: string,
  extra: { code?: string; secrets?: readonly (string | undefined)[] } = {},
): DeliveryError {
  const message = `${PROVIDER_LABEL[provider]} answered HTTP ${answer.status}${detail ? `: ${detail}` : ''}`;
  const options = { ...extra, status: answer.status };
  if (answer.status === 429 || answer.status >= 500) {
    const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'));
    return DeliveryError.transient(provider, message, { ...options, retryAfterMs });
  }
  return DeliveryError.refused(provider, message, options);
}

/** The body as JSON, or undefined when it is not JSON (an HTML error page from a proxy). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A short, single-line excerpt of a body that is not the JSON the provider documents. */
export function excerpt(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
