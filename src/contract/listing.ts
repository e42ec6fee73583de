import { utf8Length } from '../domain/utf8.ts';
import type { IncidentState } from '../domain/incident.ts';

/**
 * What an incident's listings need, kept in its workflow's memo (key {@link LISTING_MEMO_KEY}) so that
 * `incident list`, `GET /api/incidents` and the public status page read visibility (search attributes, memo,
 * start and close times) instead of querying every workflow: one list call, however many incidents, and
 * answers while no worker runs. The incident workflow upserts it whenever one of these facts changes (runs
 * that began with the `listing-memo` patch; older runs have none and are read by query). Details (`show`,
 * `GET /api/incidents/:id`) still query the workflow.
 *
 * Temporal bounds a workflow's memo (2 KiB warns, 32 KiB fails the workflow task), so the public updates
 * kept here are the latest that fit {@link LISTING_UPDATES_BYTES}, each message cut to
 * {@link LISTING_MESSAGE_CHARS} characters.
 */
export const LISTING_MEMO_KEY = 'listing';
export const LISTING_UPDATES_BYTES = 8 * 1024;
export const LISTING_MESSAGE_CHARS = 2_000;
const LISTING_ETA_CHARS = 200;

export interface ListedPublicUpdate {
  at: string;
  message: string;
  eta?: string;
}

export interface IncidentListing {
  /**
   * The incident the memo describes: a run that continues as new for the group's next incident may carry
   * its predecessor's memo until its first upsert, so a reader trusts the memo only when this matches the
   * run's `IncidentId`.
   */
  id: string;
  createdAt: string;
  securityRelated: boolean;
  resolvedAt?: string;
  /** How many updates an engineer marked public (the status page shows an incident with at least one). */
  publicUpdateCount: number;
  /** The latest public updates that fit the memo's budget, oldest first. */
  publicUpdates: ListedPublicUpdate[];
}

/** The listing of an incident's state; deterministic (the workflow compares it with the last one it upserted). */
export function listingOf(state: IncidentState): IncidentListing {
  const updates: ListedPublicUpdate[] = [];
  let bytes = 0;
  for (let i = state.publicUpdates.length - 1; i >= 0; i--) {
    const update = state.publicUpdates[i];
    if (!update) continue;
    const listed: ListedPublicUpdate = {
      at: update.at,
      message: cut(update.message, LISTING_MESSAGE_CHARS),
      ...(update.eta !== undefined ? { eta: cut(update.eta, LISTING_ETA_CHARS) } : {}),
    };
    const size = utf8Length(JSON.stringify(listed)) + 1;
    // The latest one always fits (a cut message is at most 3 bytes per character); older ones while room is left.
    if (updates.length > 0 && bytes + size > LISTING_UPDATES_BYTES) break;
    bytes += size;
    updates.unshift(listed);
  }
  return {
    id: state.id,
    createdAt: state.createdAt,
    securityRelated: state.securityRelated,
    ...(state.resolvedAt !== undefined ? { resolvedAt: state.resolvedAt } : {}),
    publicUpdateCount: state.publicUpdates.length,
    publicUpdates: updates,
  };
}

/**
 * The listing in a workflow's memo, when it has one of the expected shape and it describes `incidentId`;
 * else undefined (a run from before the memo, or another incident's).
 */
export function readListing(
  memo: Record<string, unknown> | undefined,
  incidentId: string | undefined,
): IncidentListing | undefined {
  const value: unknown = memo && Object.hasOwn(memo, LISTING_MEMO_KEY) ? memo[LISTING_MEMO_KEY] : undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const l = value as Partial<Record<keyof IncidentListing, unknown>>;
  if (
    typeof l.id !== 'string' ||
    (incidentId !== undefined && l.id !== incidentId) ||
    typeof l.createdAt !== 'string' ||
    typeof l.securityRelated !== 'boolean' ||
    (l.resolvedAt !== undefined && typeof l.resolvedAt !== 'string') ||
    typeof l.publicUpdateCount !== 'number' ||
    !Array.isArray(l.publicUpdates)
  )
    return undefined;
  const publicUpdates: ListedPublicUpdate[] = [];
  for (const u of l.publicUpdates as unknown[]) {
    if (typeof u !== 'object' || u === null) return undefined;
    const { at, message, eta } = u as Record<string, unknown>;
    if (typeof at !== 'string' || typeof message !== 'string') return undefined;
    if (eta !== undefined && typeof eta !== 'string') return undefined;
    publicUpdates.push({ at, message, ...(eta !== undefined ? { eta } : {}) });
  }
  return {
    id: l.id,
    createdAt: l.createdAt,
    securityRelated: l.securityRelated,
    ...(l.resolvedAt !== undefined ? { resolvedAt: l.resolvedAt } : {}),
    publicUpdateCount: l.publicUpdateCount,
    publicUpdates,
  };
}

function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  // Never split a surrogate pair.
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}
