import type { FastifyInstance } from 'fastify';
import { sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const CACHE_MS = 5_000;

interface PublicIncident {
  id: string;
  title: string;
  severity: string;
  status: string;
  createdAt: string;
  /** The latest update an engineer marked public. */
  update?: { at: string; message: string; eta?: string };
}

async function loadOpenIncidents(deps: AppDeps): Promise<PublicIncident[]> {
  const open = (await deps.incidents.listIncidents()).filter((i) => i.status !== 'resolved');
  return Promise.all(
    open.map(async ({ id, title, severity, status, createdAt }) => {
      const state = await deps.incidents.getIncident(id).catch(() => undefined);
      const update = state?.publicUpdates?.at(-1);
      return { id, title, severity, status, createdAt, ...(update ? { update } : {}) };
    }),
  );
}

/** The public status page: open incidents and their public updates, no internal detail (no people, no alerts). */
export function registerStatusRoutes(app: FastifyInstance, deps: AppDeps): void {
  // A public page may be polled hard: its answer is kept for a few seconds instead of asking Temporal each time.
  let cached: { until: number; incidents: Promise<PublicIncident[]> } | undefined;
  const openIncidents = (): Promise<PublicIncident[]> => {
    const now = Date.now();
    if (!cached || cached.until < now) {
      const incidents = loadOpenIncidents(deps);
      cached = { until: now + CACHE_MS, incidents };
      incidents.catch(() => {
        cached = undefined;
      });
    }
    return cached.incidents;
  };

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
            `<tr><td>${escapeHtml(i.id)}</td><td>${escapeHtml(i.severity)}</td><td>${escapeHtml(i.title)}</td><td>${escapeHtml(i.status)}</td><td>${escapeHtml(i.createdAt)}</td><td>${escapeHtml(i.update ? `${i.update.message}${i.update.eta ? ` (ETA ${i.update.eta})` : ''}` : '')}</td></tr>`,
        )
        .join('');
      const name = escapeHtml(deps.policy.service.name);
      return reply
        .type('text/html; charset=utf-8')
        .send(
          `<!doctype html><html><head><meta charset="utf-8"><title>${name} status</title></head><body><h1>${name} status</h1>` +
            (incidents.length === 0
              ? '<p>All systems operational.</p>'
              : `<table><thead><tr><th>Incident</th><th>Severity</th><th>Title</th><th>Status</th><th>Since</th><th>Latest update</th></tr></thead><tbody>${rows}</tbody></table>`) +
            '</body></html>',
        );
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
}
