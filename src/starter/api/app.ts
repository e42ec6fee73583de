import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';
import { sendError, toApiError } from './http.ts';
import type { AppDeps } from './http.ts';
import { createMetrics } from './metrics.ts';
import { registerEngineerRoutes } from './routes/engineers.ts';
import { registerOutboxRoutes } from './routes/outbox.ts';
import { registerPagerDutyRoutes } from './routes/pagerduty.ts';
import { registerSlackRoutes } from './routes/slack.ts';
import { registerSmsRoutes } from './routes/sms.ts';
import { registerStatusRoutes } from './routes/status.ts';
import type { StatusDeps } from './routes/status.ts';
import { registerWebhookRoutes } from './routes/webhook.ts';

export type { AppDeps } from './http.ts';

/** Default `connectionTimeout`: a connection silent for this long is closed. */
export const CONNECTION_TIMEOUT_MS = 60_000;
/** Default `requestTimeout`: a request must be received whole within this. */
export const REQUEST_TIMEOUT_MS = 120_000;

/**
 * Builds the API (Fastify): the alert webhooks (Alertmanager, Grafana, generic
 * JSON), the engineer API, the provider callbacks engineers act through
 * (Slack, PagerDuty, SMS), the public status page, the local outbox, health and
 * metrics. It does not listen; `server.ts` does, and tests use `app.inject`.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    logger: deps.logger ?? false,
    // The alert webhooks set their own, larger limit (webhook.maxBodyBytes); every other route takes 1 MiB.
    bodyLimit: 1_048_576,
    // A client that stops sending (a slow-loris, a stuck proxy) is cut off: no byte for a minute closes the
    // connection; a request, body included, must arrive within two.
    connectionTimeout: deps.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    requestTimeout: deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    // Fastify's request log line has method, url and remote address, never headers (so never a token).
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof ApiError) return sendError(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      metrics.rejected.inc({ reason: 'too_large' });
      const limit = request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit;
      return sendError(
        reply,
        new ApiError('PAYLOAD_TOO_LARGE', `body larger than ${limit ?? 'the limit of'} bytes`),
      );
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      metrics.rejected.inc({ reason: 'media_type' });
      return sendError(reply, new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send application/json'));
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      metrics.rejected.inc({ reason: 'malformed' });
      return sendError(reply, new ApiError('BAD_REQUEST', err.message, { field: '(body)' }));
    }
    const apiError = toApiError(err);
    if (apiError.code === 'INTERNAL') request.log.error({ err }, 'request failed');
    return sendError(reply, apiError);
  });

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  // Ready when Temporal takes work: alerts are then accepted durably, whether or not a worker runs now
  // (a worker outage must not take every API pod out of its Service). The worker has its own probe and gauge.
  app.get('/readyz', async (_request, reply) => {
    const ready = await deps.incidents.readiness();
    return reply
      .code(ready.temporal ? 200 : 503)
      .send({ status: ready.temporal ? 'ready' : 'not ready', ...ready });
  });
  app.get('/healthz/worker', async (_request, reply) => {
    const health = await deps.incidents.workerHealth();
    return reply
      .code(health.polling ? 200 : 503)
      .send({ status: health.polling ? 'polling' : 'no worker polling', ...health });
  });
  metrics.workers.count = async () => (await deps.incidents.workerHealth()).workers;
  app.get('/metrics', async (_request, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  registerWebhookRoutes(app, deps, metrics);
  registerEngineerRoutes(app, deps);
  registerSlackRoutes(app, deps);
  registerPagerDutyRoutes(app, deps);
  registerSmsRoutes(app, deps);
  if (deps.serveStatusPage !== false) registerStatusRoutes(app, deps);
  registerOutboxRoutes(app, deps);
  return app;
}

/**
 * The public status page on a listener of its own (`STATUS_PORT`, `statusPage.port`): `/status`,
 * `/status.json`, `/status.atom` and nothing else, so that exposing it to the internet exposes no webhook,
 * engineer API, callback or metrics. The main listener then leaves the status page out (`serveStatusPage`).
 */
export function buildStatusApp(
  deps: StatusDeps & Pick<AppDeps, 'logger' | 'connectionTimeoutMs' | 'requestTimeoutMs'>,
): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 1024,
    connectionTimeout: deps.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    requestTimeout: deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
  });
  registerStatusRoutes(app, deps);
  return app;
}
