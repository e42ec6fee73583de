import type { AlertRecord } from './alert-mapping.ts';
import type { IncidentState } from './incident.ts';
import { utf8Length } from './utf8.ts';

/**
 * An incident's full record, and the bounded part of it its workflow keeps.
 *
 * The workflow's state is its continue-as-new input, its query answer and (before issue 11) every update's
 * result, and Temporal fails a workflow whose payload passes 2 MB. So a run keeps the most recent entries
 * of each growing list and counts; what it lets go is appended to the incident's record store outside the
 * workflow (src/activities/incident-record.ts), from which `incident show --full` and
 * `GET /api/incidents/:id?full=true` rebuild the whole incident ({@link fullIncident}).
 */

/**
 * The lists a run bounds. (`notified` is bounded by the escalation itself: one entry per person per level.)
 */
export const RECORD_SECTIONS = ['timeline', 'alerts', 'actionsTaken', 'publicUpdates'] as const;
export type RecordSection = (typeof RECORD_SECTIONS)[number];

/**
 * One entry let go by the workflow. `index` is its position in its section's whole list (alerts: the
 * order in which alert snapshots were let go), so an append repeated by a retried activity is recognised.
 */
export interface ArchivedEntry {
  section: RecordSection;
  index: number;
  value: unknown;
}

/** How much of each list a run keeps: `keep` entries once it has `keep + slack` (entries go in batches). */
export interface StateBounds {
  timeline: number;
  alerts: number;
  /** The kept alert records' serialised size (an alert may carry up to 64 labels of 4 KiB). */
  alertBytes: number;
  actionsTaken: number;
  publicUpdates: number;
  /** Fingerprints in the alert index; past it, the oldest resolved ones are forgotten. */
  alertIndex: number;
  /** How far past `keep` a list grows before its oldest entries are let go together. */
  slack: number;
}

export const STATE_BOUNDS: StateBounds = {
  timeline: 200,
  alerts: 100,
  alertBytes: 256 * 1024,
  actionsTaken: 100,
  publicUpdates: 50,
  alertIndex: 10_000,
  slack: 100,
};

/**
 * The most a run carries into continue-as-new (serialised): Temporal's limit is 2 MB per payload and
 * warns from 512 KB. Within the bounds above a state stays well under it; past it, the run keeps less.
 */
export const CARRY_BUDGET_BYTES = 1024 * 1024;

/** Counts of everything the incident has had, kept or let go. */
export interface RecordCounts {
  /** Entries ever recorded per list (alerts: distinct fingerprints ever seen). */
  timeline: number;
  alerts: number;
  actionsTaken: number;
  publicUpdates: number;
  /** Alert snapshots let go so far (the `index` of the next). */
  alertsArchived: number;
  /** Alerts firing now. */
  firing: number;
  /** Fingerprints the index forgot (resolved ones, past {@link StateBounds.alertIndex}). */
  forgottenAlerts: number;
  /** Alert-driven notices flap damping kept from the channels. */
  damped?: number;
}

/** What a bounded run keeps of everything: counts, and every alert's status by fingerprint. */
export interface IncidentRecordState {
  counts: RecordCounts;
  /**
   * Fingerprint → status of every alert the incident has had (but the forgotten). A plain object: state is
   * JSON. The run's own bookkeeping: left out of what readers get ({@link viewOf}).
   */
  alertIndex?: Record<string, 'firing' | 'resolved'>;
}

/** The state as readers get it (the `state` query, the run's result): without the run's alert index. */
export function viewOf(state: IncidentState): IncidentState {
  if (!state.record?.alertIndex) return state;
  return { ...state, record: { counts: state.record.counts } };
}

/** The record of a state that kept everything so far (a new incident, or one carried from an older run). */
export function recordOf(state: IncidentState): IncidentRecordState {
  const alertIndex: Record<string, 'firing' | 'resolved'> = {};
  for (const alert of state.alerts) alertIndex[alert.fingerprint] = alert.status;
  const firing = Object.values(alertIndex).filter((status) => status === 'firing').length;
  return {
    counts: {
      timeline: state.timeline.length,
      alerts: Object.keys(alertIndex).length,
      actionsTaken: state.actionsTaken.length,
      publicUpdates: state.publicUpdates.length,
      alertsArchived: 0,
      firing,
      forgottenAlerts: 0,
    },
    alertIndex,
  };
}

/** The serialised size of a value, in bytes. */
export function serialisedBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value) ?? '');
}

/**
 * The whole incident from its bounded state and the entries its run let go: each list is what was let go
 * (in order, each index once) followed by what the state still holds; alerts are every fingerprint's
 * latest snapshot, the state's winning. Counts stay as the state has them.
 */
export function fullIncident(state: IncidentState, archived: readonly ArchivedEntry[]): IncidentState {
  const bySection = new Map<RecordSection, Map<number, unknown>>();
  for (const entry of archived) {
    let section = bySection.get(entry.section);
    if (!section) bySection.set(entry.section, (section = new Map<number, unknown>()));
    if (!section.has(entry.index)) section.set(entry.index, entry.value);
  }
  const archivedOf = <T>(section: RecordSection): T[] =>
    [...(bySection.get(section) ?? new Map<number, unknown>()).entries()]
      .sort(([a], [b]) => a - b)
      .map(([, value]) => value as T);
  // Entries still in the state may also have been let go by an earlier attempt that failed half-way: by index.
  const listOf = <T>(section: Exclude<RecordSection, 'alerts'>, kept: T[]): T[] => {
    const total = state.record?.counts[section] ?? kept.length;
    const firstKept = total - kept.length;
    const before = [...(bySection.get(section) ?? new Map<number, unknown>()).entries()]
      .filter(([index]) => index < firstKept)
      .sort(([a], [b]) => a - b)
      .map(([, value]) => value as T);
    return [...before, ...kept];
  };
  const alerts = new Map<string, AlertRecord>();
  for (const alert of [...archivedOf<AlertRecord>('alerts'), ...state.alerts]) {
    alerts.delete(alert.fingerprint);
    alerts.set(alert.fingerprint, alert);
  }
  return {
    ...state,
    timeline: listOf('timeline', state.timeline),
    actionsTaken: listOf('actionsTaken', state.actionsTaken),
    publicUpdates: listOf('publicUpdates', state.publicUpdates),
    alerts: [...alerts.values()],
  };
}

/**
 * What the record store lacks of what the state says its runs let go, per section (empty: nothing): every
 * list's entries before the first one kept, and every alert snapshot let go, each by its index. Not empty
 * when the store read is not the one the worker writes (a volume not shared), or an append is still on its
 * way: a full read must say so, not answer part as the whole.
 */
export function missingFromRecord(
  state: IncidentState,
  archived: readonly ArchivedEntry[],
): Partial<Record<RecordSection, number>> {
  const counts = state.record?.counts;
  if (!counts) return {};
  const letGo: Record<RecordSection, number> = {
    timeline: counts.timeline - state.timeline.length,
    actionsTaken: counts.actionsTaken - state.actionsTaken.length,
    publicUpdates: counts.publicUpdates - state.publicUpdates.length,
    alerts: counts.alertsArchived,
  };
  const found = new Map<RecordSection, Set<number>>(RECORD_SECTIONS.map((s) => [s, new Set<number>()]));
  for (const entry of archived)
    if (entry.index < letGo[entry.section]) found.get(entry.section)?.add(entry.index);
  const missing: Partial<Record<RecordSection, number>> = {};
  for (const section of RECORD_SECTIONS) {
    const lacking = letGo[section] - (found.get(section)?.size ?? 0);
    if (lacking > 0) missing[section] = lacking;
  }
  return missing;
}

/** What an update answers: enough to say what happened; the state itself is read with the `state` query. */
export interface OperationAnswer {
  id: string;
  workflowId: string;
  title: string;
  severity: IncidentState['severity'];
  status: IncidentState['status'];
  escalationLevel: number;
  /** The latest timeline entry: what the update did (or the last thing that happened). */
  last?: IncidentState['timeline'][number];
}

export function answerOf(state: IncidentState): OperationAnswer {
  const last = state.timeline[state.timeline.length - 1];
  return {
    id: state.id,
    workflowId: state.workflowId,
    title: state.title,
    severity: state.severity,
    status: state.status,
    escalationLevel: state.escalationLevel,
    ...(last ? { last } : {}),
  };
}

/** Whether an update's answer is a summary (bounded runs) rather than the whole state (older runs). */
export function isAnswer(value: IncidentState | OperationAnswer): value is OperationAnswer {
  return !Array.isArray((value as Partial<IncidentState>).timeline);
}

/** `alerts.flapDamping` for policy snapshots taken before it existed. */
export const FLAP_DAMPING_DEFAULT_MS = 10 * 60_000;
