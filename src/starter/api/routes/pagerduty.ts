import type { FastifyInstance } from 'fastify';
import { isIncidentId } from '../../../contract/incident-id.ts';
import { personByContact } from '../../../domain/people.ts';
import { act } from '../acting.ts';
import { ApiError } from '../errors.ts';
import { sendError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import { verifyPagerDutySignature } from '../verify.ts';

/**
 * `POST /webhooks/pagerduty`: a PagerDuty v3 webhook subscription
 * (`X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`, several
 * while a secret rotates; anything else is a 401 and changes nothing).
 *
 * `incident.acknowledged` acknowledges our incident: the worker pages with
 * the dedup key `<incident id>:<role>`, which PagerDuty reports back as
 * `event.data.incident_key`. The actor is the person whose policy entry has
 * `pagerduty: <PagerDuty user id>` equal to `event.agent.id`, else the
 * integration actor `pagerduty` (allowed to acknowledge and nothing else).
 *
 * Every other event is answered 200 and ignored. In particular
 * `incident.resolved` is NOT our resolution: PagerDuty resolves one role's
 * page (the worker resolves them itself when the incident ends, and an
 * engineer may resolve a page just to silence it), while resolving the
 * incident needs a root cause and the procedures' checks.
 *
 * PagerDuty retries a non-2xx answer, so anything that a retry cannot change
 * (an unknown incident, one already acknowledged) is a 200 that does nothing
 * more; only an unreachable Temporal is a 503.
 */
interface PagerDutyWebhook {
  event?: {
    event_type?: unknown;
    agent?: { id?: unknown } | null;
    data?: { incident_key?: unknown } | null;
  };
}

export function registerPagerDutyRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.register((scope, _options, done) => {
    // The signature covers the body as sent: keep it raw, parse after verifying.
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, parsed) =>
      parsed(null, body),
    );
    scope.post('/webhooks/pagerduty', async (request, reply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : undefined;
      const header = request.headers['x-pagerduty-signature'];
      const genuine =
        raw !== undefined &&
        verifyPagerDutySignature({
          secret: deps.pagerDutyWebhookSecret ?? '',
          body: raw,
          header: typeof header === 'string' ? header : undefined,
        });
      if (!genuine) return sendError(reply, new ApiError('UNAUTHORIZED', 'not a webhook PagerDuty signed'));
      let webhook: PagerDutyWebhook;
      try {
        webhook = JSON.parse(raw.toString('utf8')) as PagerDutyWebhook;
        if (typeof webhook !== 'object' || webhook === null) throw new Error('not an object');
      } catch {
        return sendError(reply, new ApiError('BAD_REQUEST', 'expected a PagerDuty v3 webhook (JSON)'));
      }
      const type = webhook.event?.event_type;
      if (type !== 'incident.acknowledged')
        return reply.send({ result: 'ignored', event: typeof type === 'string' ? type : null });
      const key = webhook.event?.data?.incident_key;
      const incidentId = typeof key === 'string' ? (key.split(':')[0] ?? '') : '';
      if (!isIncidentId(incidentId))
        return reply.send({
          result: 'ignored',
          reason: 'not a page of ours (no incident id in incident_key)',
        });
      const agent = webhook.event?.agent?.id;
      const by =
        (typeof agent === 'string' && personByContact(deps.policy, 'pagerduty', agent)) || 'pagerduty';
      const outcome = await act(deps.incidents, incidentId, 'acknowledge', { by });
      if (outcome.ok) return reply.send({ result: 'acknowledged', incident: incidentId, by });
      if (outcome.retryable)
        return sendError(
          reply,
          new ApiError('TEMPORAL_UNAVAILABLE', 'Temporal is unreachable; try again', {
            retryAfterSeconds: 5,
          }),
        );
      // Already acknowledged, resolved or unknown: a retry would not change it, so PagerDuty is told "done".
      return reply.send({ result: 'unchanged', incident: incidentId, reason: outcome.reason });
    });
    done();
  });
}
