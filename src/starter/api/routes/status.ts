import type { FastifyInstance } from 'fastify';
import type { IncidentState } from '../../../domain/incident.ts';
import type { Policy } from '../../../domain/policy.ts';
import type { Severity } from '../../../domain/severity.ts';
import { sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { IncidentListing } from '../../../contract/listing.ts';
import type { ListedIncident } from '../../client/incidents.ts';
import { escapeHtml, escapeXml } from '../../../markup.ts';

/**
 * The public status page: `/status` (HTML), `/status.json`, `/status.atom`.
 * It shows what a customer may know and nothing else: the incidents an engineer marked public (an update
 * posted with `public: true`), or of a severity the policy makes public (`statusPage.publicSeverities`,
 * default none), open or resolved in the last 7 days, with their public updates, and each component's
 * status from them. Never a security-related incident (nor its effect on a component), never people,
 * alerts or root causes (the root cause is internal; a resolved incident's public line is its last public
 * update, else "Resolved").
 *
 * It reads visibility alone (`listRecent`: search attributes and the memo the incident workflow keeps,
 * src/contract/listing.ts), one list call per refresh whatever the number of incidents, and so keeps
 * answering while no worker runs. Only a run from before the listing memo is asked for its state.
 */

const CACHE_MS = 5_000;
const RESOLVED_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;
/** Runs without a listing memo (begun before it) asked for their state per refresh, newest first. */
const MAX_STATE_LOOKUPS = 100;

export type ComponentStatus = 'operational' | 'degraded_performance' | 'partial_outage' | 'major_outage';
const COMPONENT_STATUS_ORDER: readonly ComponentStatus[] = [
  'operational',
  'degraded_performance',
  'partial_outage',
  'major_outage',
];
const STATUS_OF_SEVERITY: Record<Severity, ComponentStatus> = {
  P0: 'major_outage',
  P1: 'partial_outage',
  P2: 'degraded_performance',
  P3: 'degraded_performance',
};
const COMPONENT_LABEL: Record<ComponentStatus, string> = {
  operational: 'Operational',
  degraded_performance: 'Degraded performance',
  partial_outage: 'Partial outage',
  major_outage: 'Major outage',
};

interface PublicUpdate {
  at: string;
  message: string;
  eta?: string;
}

interface PublicIncident {
  id: string;
  title: string;
  service: string;
  severity: Severity;
  status: string;
  createdAt: string;
  /** The latest update an engineer marked public. */
  update?: PublicUpdate;
  /** Every public update, oldest first. */
  updates: PublicUpdate[];
  resolvedAt?: string;
  /** For a resolved incident: its last public update, else "Resolved". */
  resolution?: string;
}

interface StatusSnapshot {
  open: PublicIncident[];
  resolved: PublicIncident[];
  components: { name: string; status: ComponentStatus }[];
  updatedAt: string;
}

/** What the page may know of an incident, from its listing memo or (a run from before it) its state. */
interface Candidate {
  id: string;
  title: string;
  service: string;
  severity: Severity;
  status: string;
  createdAt: string;
  securityRelated: boolean;
  resolvedAt?: string;
  publicUpdateCount: number;
  publicUpdates: PublicUpdate[];
}

function fromListing(incident: ListedIncident & { listing: IncidentListing }): Candidate {
  const { listing } = incident;
  return {
    id: incident.id,
    title: incident.title,
    service: incident.service,
    severity: incident.severity,
    status: incident.status,
    createdAt: listing.createdAt,
    securityRelated: listing.securityRelated,
    ...(listing.resolvedAt !== undefined ? { resolvedAt: listing.resolvedAt } : {}),
    publicUpdateCount: listing.publicUpdateCount,
    publicUpdates: listing.publicUpdates,
  };
}

function fromState(state: IncidentState): Candidate {
  const updates = state.publicUpdates ?? [];
  return {
    id: state.id,
    title: state.title,
    service: state.service,
    severity: state.severity,
    status: state.status,
    createdAt: state.createdAt,
    securityRelated: state.securityRelated,
    ...(state.resolvedAt !== undefined ? { resolvedAt: state.resolvedAt } : {}),
    publicUpdateCount: updates.length,
    publicUpdates: updates,
  };
}

/** Public: marked so by an engineer (a public update), or of a severity the policy shows; never security-related. */
function isPublic(policy: Policy, incident: Candidate): boolean {
  if (incident.securityRelated) return false;
  return incident.publicUpdateCount > 0 || policy.statusPage.publicSeverities.includes(incident.severity);
}

function publicView(incident: Candidate): PublicIncident {
  const updates = incident.publicUpdates.map(({ at, message, eta }) => ({
    at,
    message,
    ...(eta !== undefined ? { eta } : {}),
  }));
  const update = updates.at(-1);
  const view: PublicIncident = {
    id: incident.id,
    title: incident.title,
    service: incident.service,
    severity: incident.severity,
    status: incident.status,
    createdAt: incident.createdAt,
    updates,
    ...(update ? { update } : {}),
  };
  if (incident.status === 'resolved') {
    if (incident.resolvedAt) view.resolvedAt = incident.resolvedAt;
    view.resolution = update?.message ?? 'Resolved';
  }
  return view;
}

/** Each component's status: the worst among the open incidents on its services (P0 major … P2/P3 degraded). */
export function componentStatuses(
  policy: Policy,
  open: readonly { service: string; severity: Severity }[],
): { name: string; status: ComponentStatus }[] {
  return policy.statusPage.components.map((component) => {
    let worst = 0;
    for (const incident of open) {
      if (!component.services.includes(incident.service)) continue;
      worst = Math.max(worst, COMPONENT_STATUS_ORDER.indexOf(STATUS_OF_SEVERITY[incident.severity]));
    }
    return { name: component.name, status: COMPONENT_STATUS_ORDER[worst] ?? 'operational' };
  });
}

async function loadSnapshot(deps: StatusDeps, now: number): Promise<StatusSnapshot> {
  const listed = await deps.incidents.listRecent(new Date(now - RESOLVED_WINDOW_MS));
  const legacy = listed.filter((i) => !i.listing).slice(0, MAX_STATE_LOOKUPS);
  const states = await Promise.all(
    legacy.map((summary) => deps.incidents.getIncident(summary.id).catch(() => undefined)),
  );
  const candidates = [
    ...listed
      .filter((i): i is ListedIncident & { listing: IncidentListing } => i.listing !== undefined)
      .map(fromListing),
    // An incident whose state cannot be read is left out: it might be security-related.
    ...states.filter((s): s is IncidentState => s !== undefined).map(fromState),
  ];
  const shown = candidates.filter((c) => isPublic(deps.policy, c));
  const open = shown.filter((c) => c.status !== 'resolved').map(publicView);
  const resolved = shown
    .filter(
      (c) =>
        c.status === 'resolved' &&
        c.resolvedAt !== undefined &&
        now - Date.parse(c.resolvedAt) <= RESOLVED_WINDOW_MS,
    )
    .map(publicView)
    .sort((a, b) => (b.resolvedAt ?? '').localeCompare(a.resolvedAt ?? ''));
  open.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return {
    open,
    resolved,
    components: componentStatuses(deps.policy, open),
    updatedAt: new Date(now).toISOString(),
  };
}

/** One feed entry per public event of an incident: opened, each public update, resolved. */
interface FeedEntry {
  id: string;
  incidentId: string;
  title: string;
  at: string;
  text: string;
}

function feedEntries(snapshot: StatusSnapshot): FeedEntry[] {
  const entries: FeedEntry[] = [];
  for (const incident of [...snapshot.open, ...snapshot.resolved]) {
    entries.push({
      id: `${incident.id}/opened`,
      incidentId: incident.id,
      title: `Investigating: ${incident.title}`,
      at: incident.createdAt,
      text: `We are investigating: ${incident.title}.`,
    });
    incident.updates.forEach((u, i) =>
      entries.push({
        id: `${incident.id}/update/${i + 1}`,
        incidentId: incident.id,
        title: `Update: ${incident.title}`,
        at: u.at,
        text: u.eta ? `${u.message} (ETA ${u.eta})` : u.message,
      }),
    );
    if (incident.resolvedAt)
      entries.push({
        id: `${incident.id}/resolved`,
        incidentId: incident.id,
        title: `Resolved: ${incident.title}`,
        at: incident.resolvedAt,
        text: incident.resolution ?? 'Resolved',
      });
  }
  return entries.sort((a, b) => b.at.localeCompare(a.at));
}

/** An Atom (RFC 4287) feed of the status page's entries; every text escaped. */
function atomFeed(policy: Policy, snapshot: StatusSnapshot, selfUrl: string): string {
  const entries = feedEntries(snapshot);
  const tag = (id: string) => `tag:${escapeXml(policy.service.id)},2024:${escapeXml(id)}`;
  const updated = entries[0]?.at ?? snapshot.updatedAt;
  const name = escapeXml(policy.service.name);
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n' +
    '<feed xmlns="http://www.w3.org/2005/Atom">' +
    `<id>${tag('status')}</id>` +
    `<title>${name} status</title>` +
    `<updated>${escapeXml(updated)}</updated>` +
    `<author><name>${name}</name></author>` +
    `<link rel="self" type="application/atom+xml" href="${escapeXml(selfUrl)}"/>` +
    entries
      .map(
        (e) =>
          '<entry>' +
          `<id>${tag(e.id)}</id>` +
          `<title>${escapeXml(`${e.incidentId} ${e.title}`)}</title>` +
          `<updated>${escapeXml(e.at)}</updated>` +
          `<content type="text">${escapeXml(e.text)}</content>` +
          '</entry>',
      )
      .join('') +
    '</feed>\n'
  );
}

function statusHtml(policy: Policy, snapshot: StatusSnapshot): string {
  const name = escapeHtml(policy.service.name);
  const components =
    snapshot.components.length === 0
      ? ''
      : `<h2>Components</h2><table><tbody>${snapshot.components
          .map(
            (c) =>
              `<tr><td>${escapeHtml(c.name)}</td><td class="${c.status}">${escapeHtml(COMPONENT_LABEL[c.status])}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  const openRows = snapshot.open
    .map(
      (i) =>
        `<tr><td>${escapeHtml(i.id)}</td><td>${escapeHtml(i.severity)}</td><td>${escapeHtml(i.title)}</td><td>${escapeHtml(i.status)}</td><td>${escapeHtml(i.createdAt)}</td><td>${escapeHtml(i.update ? `${i.update.message}${i.update.eta ? ` (ETA ${i.update.eta})` : ''}` : '')}</td></tr>`,
    )
    .join('');
  const resolvedRows = snapshot.resolved
    .map(
      (i) =>
        `<tr><td>${escapeHtml(i.id)}</td><td>${escapeHtml(i.title)}</td><td>${escapeHtml(i.resolvedAt ?? '')}</td><td>${escapeHtml(i.resolution ?? 'Resolved')}</td></tr>`,
    )
    .join('');
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${name} status</title>` +
    `<link rel="alternate" type="application/atom+xml" href="status.atom"></head><body><h1>${name} status</h1>` +
    (snapshot.open.length === 0
      ? '<p>All systems operational.</p>'
      : `<table><thead><tr><th>Incident</th><th>Severity</th><th>Title</th><th>Status</th><th>Since</th><th>Latest update</th></tr></thead><tbody>${openRows}</tbody></table>`) +
    components +
    (snapshot.resolved.length === 0
      ? ''
      : `<h2>Resolved in the last 7 days</h2><table><thead><tr><th>Incident</th><th>Title</th><th>Resolved</th><th>Resolution</th></tr></thead><tbody>${resolvedRows}</tbody></table>`) +
    '</body></html>'
  );
}

/** What the status page needs: the policy, visibility through the gateway, its public URL (Atom self link). */
export type StatusDeps = Pick<AppDeps, 'policy' | 'incidents' | 'publicUrl'>;

export function registerStatusRoutes(app: FastifyInstance, deps: StatusDeps): void {
  // A public page may be polled hard: its answer is kept for a few seconds instead of asking Temporal each time.
  let cached: { until: number; snapshot: Promise<StatusSnapshot> } | undefined;
  const snapshot = (): Promise<StatusSnapshot> => {
    const now = Date.now();
    if (!cached || cached.until < now) {
      const loading = loadSnapshot(deps, now);
      cached = { until: now + CACHE_MS, snapshot: loading };
      loading.catch(() => {
        cached = undefined;
      });
    }
    return cached.snapshot;
  };

  app.get('/status.json', async (_request, reply) => {
    try {
      const s = await snapshot();
      return {
        service: deps.policy.service.name,
        operational: s.open.length === 0,
        components: s.components,
        incidents: s.open,
        resolved: s.resolved,
      };
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
  app.get('/status', async (_request, reply) => {
    try {
      return reply.type('text/html; charset=utf-8').send(statusHtml(deps.policy, await snapshot()));
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
  app.get('/status.atom', async (_request, reply) => {
    try {
      const self = `${(deps.publicUrl ?? '').replace(/\/+$/, '')}/status.atom`;
      return reply
        .type('application/atom+xml; charset=utf-8')
        .send(atomFeed(deps.policy, await snapshot(), self));
    } catch (err) {
      return sendError(reply, toApiError(err));
    }
  });
}
