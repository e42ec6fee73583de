import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { Policy } from '../domain/policy.ts';
import { ApiError, isTemporalUnavailable } from './errors.ts';
import { IncidentNotFoundError, IncidentRefusedError } from './incidents.ts';
import type { IncidentGateway } from './incidents.ts';
import type { ApiMetrics } from './metrics.ts';

/* What every route shares: the app's dependencies, auth, and error answers. */

export interface AppDeps {
  policy: Policy;
  incidents: IncidentGateway;
  /** The resolved webhook bearer token (never logged). */
  webhookToken: string;
  /** Engineer bearer tokens, resolved from each person's `tokenEnv`: token → handle. */
  engineerTokens: ReadonlyMap<string, string>;
  /** Webhook requests handled at once before answering 503 (Alertmanager retries 5xx). */
  maxInFlight?: number;
  logger?: boolean | object;
  metrics?: ApiMetrics;
}

/** Constant-time comparison of a presented bearer token with the expected one. */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  if (!header?.startsWith('Bearer ') || expected === '') return false;
  const presented = Buffer.from(header.slice('Bearer '.length));
  const wanted = Buffer.from(expected);
  // Compare equal-length buffers so the time does not depend on where they differ.
  const same = presented.length === wanted.length;
  return timingSafeEqual(same ? presented : wanted, wanted) && same;
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
  if (err instanceof IncidentRefusedError) return new ApiError('REFUSED', err.message);
  if (isTemporalUnavailable(err)) {
    return new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
      retryAfterSeconds: 5,
    });
  }
  return new ApiError('INTERNAL', 'internal error');
}
