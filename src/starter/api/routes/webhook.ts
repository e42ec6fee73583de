import type { FastifyInstance, FastifyRequest } from 'fastify';
import { webhookBodyLimit } from '../../../domain/alertmanager.ts';
import { DEAD_LETTER_SOURCES } from '../../../deadletter-file.ts';
import type { AppDeps } from '../http.ts';
import type { ApiMetrics } from '../metrics.ts';
import { AlertIngest, alertSources, webhookAuth } from './alert-ingest.ts';

/**
 * The webhooks' JSON: the language's own parser, which makes `"__proto__"` an ordinary own key (a label may be
 * called so) and never a prototype; the mapping reads own properties only. Not JSON at all is a 400.
 */
function parseJson(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, body?: unknown) => void,
): void {
  try {
    done(null, JSON.parse(typeof body === 'string' ? body : body.toString('utf8')));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    done(Object.assign(new Error(`the body is not JSON: ${message}`), { statusCode: 400 }), undefined);
  }
}

/**
 * The alert sources, each authenticated, answered and deduplicated alike
 * (see {@link AlertIngest}), each mapped through the policy's `alerts` rules:
 * - `POST /webhooks/alertmanager`: Alertmanager webhook v4;
 * - `POST /webhooks/grafana`: Grafana Alerting's webhook contact point (v1),
 *   its dashboard, panel and silence links kept on the alerts;
 * - `POST /webhooks/generic`: any JSON, read through `sources.generic`.
 *
 * The token is checked before the body is read (`onRequest`). Their body limit is the policy's
 * `webhook.maxBodyBytes`, by default derived from `maxAlertsPerGroup` × `maxAlertBytes`, so no group within
 * the documented limits is a 413; the other routes keep Fastify's 1 MiB.
 */
export function registerWebhookRoutes(app: FastifyInstance, deps: AppDeps, metrics: ApiMetrics): void {
  const ingest = new AlertIngest(deps, metrics, app.log);
  const sources = alertSources(deps.policy);
  const bodyLimit = webhookBodyLimit(deps.policy.webhook);
  const onRequest = webhookAuth(deps, metrics);
  void app.register((scope, _options, done) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, parseJson);
    for (const source of DEAD_LETTER_SOURCES) {
      const toBatch = sources[source];
      scope.post(`/webhooks/${source}`, { onRequest, bodyLimit }, (request, reply) =>
        ingest.handle(request, reply, source, toBatch),
      );
    }
    done();
  });
}
