import { z } from 'zod';
import type { MaintenanceWindowRef } from './lifecycle.ts';

/**
 * Maintenance windows: while one covers an incident's service, the incident
 * still opens, is recorded, escalates on the timeline and posts to its
 * channels, but nobody is paged (the lifecycle reads the window from the
 * incident's input, `LifecycleInput.maintenance`).
 *
 * Windows come from two places: the policy file (`maintenance:`, ids
 * `policy-<index>`, fixed until the file changes) and operators
 * (`incident maintenance add`, ids `mw-<8 hex>`, held by the durable
 * maintenance workflow). Who started an incident decides once, when it
 * starts, whether a window covered it: a window added or ended later does
 * not change a running incident, as a policy edit does not.
 *
 * A window covers `[from, to)`, or `[from, endedAt)` once an operator ended
 * it early. `service` is a service id exactly as incidents carry it, or `*`
 * for every service. Times are ISO 8601 strings (plain JSON, so the window
 * travels through workflow history and the policy snapshot unchanged).
 */

/** The service pattern that matches every service. */
export const ALL_SERVICES = '*';

/** How long a window stays on record after it ended (the workflow drops older ones). */
export const ENDED_WINDOW_RETENTION_MS = 7 * 24 * 3_600_000;

export interface MaintenanceWindow {
  id: string;
  /** A service id, or `*` for all. */
  service: string;
  /** ISO start. */
  from: string;
  /** ISO planned end. */
  to: string;
  reason: string;
  /** The operator who made it (absent for policy windows). */
  createdBy?: string;
  /** ISO time an operator ended it before `to`. */
  endedAt?: string;
  endedBy?: string;
}

export type MaintenanceState = 'upcoming' | 'active' | 'ended';

/**
 * The maintenance workflow's update arguments: a window as an operator asks for it (`add`, the
 * `addMaintenanceWindow` update) and ending one early (`end`, the `endMaintenanceWindow` update). Built on
 * first use ({@link maintenanceInputs}), not when the module loads: the workflow bundle evaluates this module
 * for every new workflow run, and only an operator's update needs them.
 */
function buildMaintenanceInputs() {
  const isoDateTime = z.iso.datetime({ offset: true });
  return {
    add: z.strictObject({
      service: z
        .string()
        .trim()
        .min(1, 'a service id, or * for every service')
        .max(200, 'at most 200 characters'),
      from: isoDateTime,
      to: isoDateTime,
      reason: z.string().trim().min(1, 'must not be blank').max(1000, 'at most 1000 characters'),
      createdBy: z.string().trim().min(1).optional(),
    }),
    end: z.strictObject({
      id: z.string().min(1),
      by: z.string().trim().min(1).optional(),
    }),
  };
}

type MaintenanceInputs = ReturnType<typeof buildMaintenanceInputs>;
let built: MaintenanceInputs | undefined;

/** The maintenance updates' argument schemas, built on the first call. */
function maintenanceInputs(): MaintenanceInputs {
  built ??= buildMaintenanceInputs();
  return built;
}

/** A window as an operator asks for it (the `addMaintenanceWindow` update's argument). */
export type MaintenanceWindowInput = z.input<MaintenanceInputs['add']>;

/** Ending a window early (the `endMaintenanceWindow` update's argument). */
export type EndMaintenanceWindowInput = z.input<MaintenanceInputs['end']>;

/** The first problem with a window's times, or undefined: `to` must come after `from`. */
export function windowTimesRefusal(window: { from: string; to: string }): string | undefined {
  const from = Date.parse(window.from);
  const to = Date.parse(window.to);
  if (Number.isNaN(from)) return `from: not a date-time: "${window.from}"`;
  if (Number.isNaN(to)) return `to: not a date-time: "${window.to}"`;
  if (to <= from) return `to: the window must end after it starts (${window.from} → ${window.to})`;
  return undefined;
}

/**
 * Why a new operator window is refused, or undefined: a malformed field, an end
 * not after its start, or an end already past at `now` (a window that would never
 * suppress anything is a typo, not a record).
 */
export function addWindowRefusal(input: unknown, now: number): string | undefined {
  const parsed = maintenanceInputs().add.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${issue?.path.join('.') || 'window'}: ${issue?.message ?? 'invalid'}`;
  }
  const times = windowTimesRefusal(parsed.data);
  if (times) return times;
  if (Date.parse(parsed.data.to) <= now) return `to: the window ends in the past (${parsed.data.to})`;
  return undefined;
}

/** Why ending window `id` is refused, or undefined. */
export function endWindowRefusal(
  windows: readonly MaintenanceWindow[],
  input: unknown,
  now: number,
): string | undefined {
  const parsed = maintenanceInputs().end.safeParse(input);
  if (!parsed.success) return 'id: a maintenance window id such as mw-1a2b3c4d';
  const window = windows.find((w) => w.id === parsed.data.id);
  if (!window) return `no maintenance window ${parsed.data.id}`;
  if (stateAt(window, now) === 'ended') return `maintenance window ${window.id} is already over`;
  return undefined;
}

/** When the window stops covering, as epoch ms: its planned end, or when it was ended early. */
export function effectiveEnd(window: MaintenanceWindow): number {
  const to = Date.parse(window.to);
  if (window.endedAt === undefined) return to;
  return Math.min(to, Date.parse(window.endedAt));
}

export function stateAt(window: MaintenanceWindow, at: number): MaintenanceState {
  if (at >= effectiveEnd(window)) return 'ended';
  return at < Date.parse(window.from) ? 'upcoming' : 'active';
}

/** Whether the window's service pattern covers `service`. */
export function coversService(window: Pick<MaintenanceWindow, 'service'>, service: string): boolean {
  return window.service === ALL_SERVICES || window.service === service;
}

/**
 * The window covering `service` at `at`, as an incident records it; when
 * several do, the one that lasts longest (paging stays off while any of them
 * holds), ties broken by id so every caller picks the same one.
 */
export function activeWindow(
  windows: readonly MaintenanceWindow[],
  service: string,
  at: number,
): MaintenanceWindowRef | undefined {
  let best: MaintenanceWindow | undefined;
  for (const w of windows) {
    if (!coversService(w, service) || stateAt(w, at) !== 'active') continue;
    if (
      !best ||
      effectiveEnd(w) > effectiveEnd(best) ||
      (effectiveEnd(w) === effectiveEnd(best) && w.id < best.id)
    )
      best = w;
  }
  return best && { id: best.id, reason: best.reason, until: new Date(effectiveEnd(best)).toISOString() };
}

/** A new operator window from a valid input (see {@link addWindowRefusal}). */
export function newWindow(id: string, input: MaintenanceWindowInput): MaintenanceWindow {
  const w = maintenanceInputs().add.parse(input);
  return {
    id,
    service: w.service,
    from: new Date(Date.parse(w.from)).toISOString(),
    to: new Date(Date.parse(w.to)).toISOString(),
    reason: w.reason,
    ...(w.createdBy ? { createdBy: w.createdBy } : {}),
  };
}

/** The window ended at `now` (before its planned end). */
export function endWindow(window: MaintenanceWindow, now: number, by?: string): MaintenanceWindow {
  return { ...window, endedAt: new Date(now).toISOString(), ...(by ? { endedBy: by } : {}) };
}

/** The windows still worth keeping at `now`: every one not over for longer than the retention. */
export function pruneWindows(windows: readonly MaintenanceWindow[], now: number): MaintenanceWindow[] {
  return windows.filter((w) => now - effectiveEnd(w) < ENDED_WINDOW_RETENTION_MS);
}

/** The id of the policy file's window at `index` of its `maintenance` list. */
export function policyWindowId(index: number): string {
  return `policy-${index}`;
}

/** The policy file's windows (its `maintenance` list) with their derived ids. */
export function policyWindows(
  list: readonly { service: string; from: string; to: string; reason: string }[] | undefined,
): MaintenanceWindow[] {
  return (list ?? []).map((w, i) => ({
    id: policyWindowId(i),
    service: w.service,
    from: w.from,
    to: w.to,
    reason: w.reason,
  }));
}
