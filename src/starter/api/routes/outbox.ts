import type { FastifyInstance } from 'fastify';
import { readOutbox } from '../../../outbox-file.ts';
import { ApiError } from '../errors.ts';
import { sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import { escapeHtml } from '../../../markup.ts';

/** What `/outbox` shows at most, newest first. */
const OUTBOX_PAGE_MAX = 500;

/**
 * `GET /outbox`: on a laptop with no provider configured, every message that
 * would have gone out (the worker writes them to INCIDENT_OUTBOX), newest
 * first, as a page or as JSON (`?format=json`, or `Accept: application/json`);
 * `?channel=slack` shows one channel. In production INCIDENT_OUTBOX is unset and
 * this is a 404. The texts are the incidents' own, so everything is escaped.
 */
export function registerOutboxRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get('/outbox', async (request, reply) => {
    if (!deps.outboxFile)
      return sendError(reply, new ApiError('NOT_FOUND', 'the outbox is off (production configuration)'));
    const query = request.query as { format?: unknown; channel?: unknown };
    const channel = typeof query.channel === 'string' && query.channel !== '' ? query.channel : undefined;
    let messages;
    try {
      messages = await readOutbox(deps.outboxFile, {
        limit: OUTBOX_PAGE_MAX,
        ...(channel ? { channel } : {}),
      });
    } catch (err) {
      request.log.error({ err }, 'cannot read the outbox');
      return sendError(reply, toApiError(err));
    }
    const accept = request.headers.accept ?? '';
    const wantsJson =
      query.format === 'json' ||
      (query.format === undefined && accept.includes('application/json') && !accept.includes('text/html'));
    if (wantsJson) return reply.send({ messages });
    const rows = messages
      .map(
        (m) =>
          `<tr><td>${escapeHtml(m.at)}</td><td>${escapeHtml(m.channel)}</td><td>${escapeHtml(m.target)}</td>` +
          `<td>${escapeHtml(m.incidentId)}</td><td>${m.subject !== undefined ? `<strong>${escapeHtml(m.subject)}</strong><br>` : ''}` +
          `<pre>${escapeHtml(m.text)}</pre></td></tr>`,
      )
      .join('');
    return reply
      .type('text/html; charset=utf-8')
      .send(
        '<!doctype html><html><head><meta charset="utf-8"><title>Outbox</title></head><body>' +
          `<h1>Outbox</h1><p>${messages.length} message(s) that would have gone out${channel ? ` on ${escapeHtml(channel)}` : ''}, newest first.</p>` +
          (messages.length === 0
            ? '<p>Nothing yet.</p>'
            : `<table><thead><tr><th>Time</th><th>Channel</th><th>Target</th><th>Incident</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table>`) +
          '</body></html>',
      );
  });
}
