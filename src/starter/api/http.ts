import { safeEqual } from '../../signing.ts';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { Policy } from '../../domain/policy.ts';
import { ApiError } from './errors.ts';
import {
  IncidentForbiddenError,
  IncidentNotFoundError,
  IncidentRefusedError,
  WorkerUnavailableError,
  RecordIncompleteError,
  isTemporalUnavailable,
} from '../client/errors.ts';
import type { IncidentGateway } from '../client/incidents.ts';
import type { WatchdogGateway } from '../client/watchdog.ts';
import type { ApiMetrics } from './metrics.ts';
import type { SlackInteractionClient } from './slack-responder.ts';

/* What every route shares: the app's dependencies, auth, and error answers. */

export interface AppDeps {
  policy: Policy;
  incidents: IncidentGateway;
  /**
   * Heartbeats of the alerting pipeline's dead-man's switch (policy `watchdog`, routes/watchdog.ts). Unset (tests
   * that send no Watchdog alert), a delivery with a firing Watchdog alert is a 500 that the sender retries.
   */
  watchdog?: WatchdogGateway;
  /** The resolved webhook bearer token (never logged). */
  webhookToken: string;
  /** Resolved basic-auth credentials the webhook also accepts, when the policy configures them. */
  webhookBasicAuth?: { username: string; password: string };
  /** Engineer bearer tokens, resolved from each person's `tokenEnv`: token → handle. */
  engineerTokens: ReadonlyMap<string, string>;
  /** Verifies Slack interactivity requests (SLACK_SIGNING_SECRET); unset, every one is refused (401). */
  slackSigningSecret?: string;
  /** Answers Slack interactions (response_url, modals); built from the policy's Slack settings. */
  slack?: SlackInteractionClient;
  /** Verifies PagerDuty v3 webhooks (PAGERDUTY_WEBHOOK_SECRET); unset, every one is refused (401). */
  pagerDutyWebhookSecret?: string;
  /** Verifies Twilio's inbound SMS webhooks (TWILIO_AUTH_TOKEN); unset, every one is refused (401). */
  twilioAuthToken?: string;
  /**
   * The API's external base URL (INCIDENT_PUBLIC_URL, default `http://<HOST>:<PORT>`): Twilio signs the URL
   * it called, which behind a proxy is not the one this process sees.
   */
  publicUrl?: string;
  /** The local outbox's JSON Lines file (INCIDENT_OUTBOX); unset in production, where `/outbox` is 404. */
  outboxFile?: string;
  /**
   * The dead-letter file (src/deadletter-file.ts): valid alert deliveries that could not be ingested are kept
   * there and answered 202. Unset (tests), such a delivery is a 500 that the sender retries.
   */
  deadLetterFile?: string;
  /** A connection with no byte received or sent for this long is closed (default 60 s). */
  connectionTimeoutMs?: number;
  /** A request must be received whole, body included, within this (default 120 s). */
  requestTimeoutMs?: number;
  logger?: boolean | object;
  metrics?: ApiMetrics;
  /**
   * Whether this listener serves the public status page (default true). False when it has its own
   * (`STATUS_PORT`, `statusPage.port`: {@link buildStatusApp}), so the public one reaches nothing else.
   */
  serveStatusPage?: boolean;
}

/** Constant-time comparison of a presented secret with the expected one (never equal to an empty one). */
function sameSecret(presented: string, expected: string): boolean {
  return expected !== '' && safeEqual(expected, presented);
}

/** Whether the Authorization header carries the expected bearer token. */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  return header?.startsWith('Bearer ') === true && sameSecret(header.slice('Bearer '.length), expected);
}

/** Whether the Authorization header carries the expected basic-auth credentials. */
export function basicMatches(
  header: string | undefined,
  expected: { username: string; password: string },
): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  return sameSecret(decoded, `${expected.username}:${expected.password}`);
}

/** The path of the first bad field in a zod error, as `alerts.0.labels.severity`. */
export function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)';
  return { field, message: `${field}: ${issue?.message ?? 'invalid'}` };
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).send(err.toJSON());
}

/** Maps gateway failures to the API's errors. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof IncidentNotFoundError) return new ApiError('NOT_FOUND', err.message);
  if (err instanceof IncidentForbiddenError) return new ApiError('FORBIDDEN', err.message);
  if (err instanceof IncidentRefusedError) return new ApiError('REFUSED', err.message);
  if (err instanceof WorkerUnavailableError)
    return new ApiError('WORKER_UNAVAILABLE', err.message, { retryAfterSeconds: 10 });
  if (err instanceof RecordIncompleteError)
    return new ApiError('RECORD_INCOMPLETE', err.message, { retryAfterSeconds: 5 });
  if (isTemporalUnavailable(err)) {
    return new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
      retryAfterSeconds: 5,
    });
  }
  return new ApiError('INTERNAL', 'internal error');
}
