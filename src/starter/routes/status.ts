import type { FastifyInstance } from 'fastify';
import { sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** The public status page: open incidents only, no internal detail (no people, no alerts). */
export function registerStatusRoutes(app: FastifyInstance, deps: AppDeps): void {
  const openIncidents = async () =>
    (await deps.incidents.listIncidents())
      .filter((i) => i.status !== 'resolved')
      .map(({ id, title, severity, status, createdAt }) => ({ id, title, severity, status, createdAt }));

  app.get('/status.json', async (_request, reply) => {
    try {
      const incidents = await openIncidents();
      return { service: deps.policy.service.name, operational: incidents.length === 0, incidents };
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
  app.get('/status', async (_request, reply) => {
    try {
      const incidents = await openIncidents();
      const rows = incidents
        .map(
          (i) =>
            `<tr><td>${escapeHtml(i.id)}</td><td>${escapeHtml(i.severity)}</td><td>${escapeHtml(i.title)}</td><td>${escapeHtml(i.status)}</td><td>${escapeHtml(i.createdAt)}</td></tr>`,
        )
        .join('');
      const name = escapeHtml(deps.policy.service.name);
      return reply
        .type('text/html; charset=utf-8')
        .send(
          `<!doctype html><html><head><meta charset="utf-8"><title>${name} status</title></head><body><h1>${name} status</h1>` +
            (incidents.length === 0
              ? '<p>All systems operational.</p>'
              : `<table><thead><tr><th>Incident</th><th>Severity</th><th>Title</th><th>Status</th><th>Since</th></tr></thead><tbody>${rows}</tbody></table>`) +
            '</body></html>',
        );
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
}
