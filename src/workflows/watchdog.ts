import {
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  setCurrentDetails,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { AlertBatch } from '../domain/alert-mapping.ts';
import { cutText } from '../domain/alert-mapping.ts';
import { formatDuration } from '../domain/duration.ts';
import type { Policy } from '../domain/policy.ts';
import { SEVERITIES } from '../domain/severity.ts';
import { incidentIdFrom } from '../contract/incident-id.ts';
import { INCIDENT_WORKFLOW_TYPE, alertsReceivedSignal, searchAttributesOf } from '../contract/messages.ts';
import type { IncidentInput } from '../contract/messages.ts';
import {
  SILENCE_ALERTNAME,
  WATCHDOG_EVENTS_KEPT,
  watchdogHeartbeatSignal,
  watchdogStateQuery,
} from '../contract/watchdog.ts';
import type {
  WatchdogEventKind,
  WatchdogHeartbeat,
  WatchdogIncidentRef,
  WatchdogInput,
  WatchdogSettings,
  WatchdogState,
} from '../contract/watchdog.ts';
import { UndecodableArgument, decodeArgument, rawSignal } from './signal-arguments.ts';

/** Heartbeats per run before it continues as new (each adds a signal and a workflow task to history). */
const HEARTBEATS_BEFORE_CONTINUE = 500;
/** How soon opening the incident is tried again if starting it failed. */
const RETRY_OPEN_MS = 60_000;

/**
 * The dead-man's switch of one Alertmanager receiver (see src/contract/watchdog.ts). It never completes.
 *
 * Alive, it waits on one durable timer until the last heartbeat is `timeout` old; heartbeats that arrive
 * meanwhile only move the deadline (no timer per heartbeat: the timer that fires early is followed by one
 * for what is left). When the timer finds the last heartbeat that old, the pipeline is silent: it opens an
 * incident through the normal path — a declared incident, started as an abandoned child workflow with a
 * deterministic id (started exactly once, and it outlives this run) — and records on it a firing
 * `AlertingPipelineSilent` alert. While silent, nothing more happens until a heartbeat arrives; then the
 * incident is told (that alert resolved: mitigated, as for any alert that clears; a person resolves it as
 * its severity requires). A second silence while that incident is still open fires the alert on it again
 * instead of opening another. History stays bounded: the run continues as new every
 * {@link HEARTBEATS_BEFORE_CONTINUE} heartbeats, carrying its state (the silence deadline, and an incident
 * whose opening failed and is still being tried, included).
 */
export async function watchdogWorkflow(input: WatchdogInput): Promise<void> {
  const startedAt = Date.now();
  let policy: Policy = input.policy;
  const state: WatchdogState = input.carried
    ? { ...input.carried, events: [...input.carried.events] }
    : {
        receiver: input.receiver,
        status: 'alive',
        startedAt: iso(startedAt),
        heartbeats: 0,
        settings: input.settings,
        events: [],
      };
  if (!input.carried) record(state, startedAt, 'started', `watching ${describe(state)}`);
  let beatsThisRun = 0;
  /** The main loop has something to do before its timer: the settings changed, or a silence ended. */
  let wake = false;
  let resumed = false;

  setHandler(rawSignal(watchdogHeartbeatSignal), (raw) => {
    const beat = decodeArgument(raw);
    if (beat instanceof UndecodableArgument || !isHeartbeat(beat)) {
      const problem = beat instanceof UndecodableArgument ? beat.reason : 'not a heartbeat';
      log.warn('malformed watchdog heartbeat dropped', { problem });
      return;
    }
    const now = Date.now();
    state.heartbeats += 1;
    beatsThisRun += 1;
    state.lastHeartbeatAt = iso(now);
    if (beat.policy && typeof beat.policy === 'object') policy = beat.policy;
    const s = beat.settings;
    if (
      s.alertname !== state.settings.alertname ||
      s.timeoutMs !== state.settings.timeoutMs ||
      s.severity !== state.settings.severity
    ) {
      state.settings = { alertname: s.alertname, timeoutMs: s.timeoutMs, severity: s.severity };
      wake = true;
    }
    if (state.status === 'silent') {
      resumed = true;
      wake = true;
    } else {
      state.silentAt = iso(now + state.settings.timeoutMs);
    }
  });
  setHandler(watchdogStateQuery, () => state);

  const lastBeat = () => Date.parse(state.lastHeartbeatAt ?? state.startedAt);
  const limit = input.continueAsNewAfterHeartbeats ?? HEARTBEATS_BEFORE_CONTINUE;
  const continuing = () => beatsThisRun >= limit || workflowInfo().continueAsNewSuggested;

  /** Sends the silence alert to the incident; false when it is closed (it is then marked so). */
  const tell = async (incident: WatchdogIncidentRef, batch: AlertBatch): Promise<boolean> => {
    try {
      await getExternalWorkflowHandle(incident.workflowId).signal(alertsReceivedSignal, batch);
      return true;
    } catch (err) {
      log.info('the watchdog incident is closed', { incident: incident.id, error: messageOf(err) });
      incident.closed = true;
      return false;
    }
  };

  const openIncident = async (now: number): Promise<boolean> => {
    const { alertname, timeoutMs, severity } = state.settings;
    const incidentId = incidentIdFrom(uuid4());
    const title = cutText(
      `Alerting pipeline silent: no ${alertname} from ${state.receiver} for ${formatDuration(timeoutMs)}`,
      200,
    );
    const service = policy.service.id;
    const workflowId = `${workflowInfo().workflowId}-${incidentId}`;
    const incidentInput: IncidentInput = {
      incidentId,
      policy,
      declared: {
        by: 'watchdog',
        title,
        severity,
        service,
        summary:
          `No ${alertname} alert has reached the webhook from Alertmanager receiver ${state.receiver} since ` +
          `${state.silentSince ?? iso(lastBeat())}: Prometheus, Alertmanager, their routing or the way to this ` +
          'webhook is broken, and other alerts may not arrive either. Check them; the incident records ' +
          `when the ${alertname} arrives again.`,
      },
    };
    try {
      await startChild(INCIDENT_WORKFLOW_TYPE, {
        workflowId,
        args: [incidentInput],
        // The incident outlives this run (continue-as-new) and the watchdog itself.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: searchAttributesOf({
          id: incidentId,
          severity,
          status: 'triggered',
          service,
          escalationLevel: 0,
        }),
        memo: { title },
        staticSummary: `${severity} ${title}`,
      });
    } catch (err) {
      log.error('the watchdog could not open its incident', { error: messageOf(err) });
      record(state, now, 'silent', `could not open the incident (${messageOf(err)}); trying again`);
      return false;
    }
    state.incident = { id: incidentId, workflowId, openedAt: iso(now) };
    record(state, now, 'incident_opened', `opened ${incidentId} (${severity}): ${title}`);
    await tell(state.incident, silenceBatch(state, 'firing', now));
    return true;
  };

  const goSilent = async (now: number) => {
    state.status = 'silent';
    state.silentSince = iso(lastBeat());
    delete state.silentAt;
    record(
      state,
      now,
      'silent',
      `no ${state.settings.alertname} since ${state.silentSince} (${formatDuration(now - lastBeat())})`,
    );
    const open = state.incident && !state.incident.closed ? state.incident : undefined;
    if (open && (await tell(open, silenceBatch(state, 'firing', now)))) {
      record(state, now, 'incident_signalled', `${open.id} is still open: its silence alert fires again`);
      state.incidentPending = false;
      return;
    }
    state.incidentPending = !(await openIncident(now));
  };

  const resume = async (now: number) => {
    const since = Date.parse(state.silentSince ?? iso(lastBeat()));
    state.status = 'alive';
    resumed = false;
    state.incidentPending = false;
    record(
      state,
      now,
      'resumed',
      `${state.settings.alertname} arrives again after ${formatDuration(now - since)} of silence`,
    );
    delete state.silentSince;
    const incident = state.incident;
    if (!incident || incident.closed) return;
    const told = await tell(incident, silenceBatch(state, 'resolved', now, since));
    record(
      state,
      now,
      'incident_signalled',
      told
        ? `${incident.id} told: its silence alert resolved (a person resolves the incident)`
        : `${incident.id} is already closed`,
    );
  };

  for (;;) {
    wake = false;
    if (resumed) await resume(Date.now());
    if (continuing()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof watchdogWorkflow>({
        ...input,
        policy,
        settings: state.settings,
        carried: state,
      });
    }
    if (state.status === 'silent') {
      details(state);
      if (state.incidentPending) {
        if (!(await condition(() => wake || continuing(), RETRY_OPEN_MS)))
          state.incidentPending = !(await openIncident(Date.now()));
      } else {
        await condition(() => wake || continuing());
      }
      continue;
    }
    const deadline = lastBeat() + state.settings.timeoutMs;
    const now = Date.now();
    if (now >= deadline) {
      await goSilent(now);
      continue;
    }
    state.silentAt = iso(deadline);
    details(state);
    await condition(() => wake || continuing(), deadline - now);
  }
}

/** The alert the incident records for a silence: firing while silent, resolved (at `now`) when it ends. */
function silenceBatch(
  state: WatchdogState,
  status: 'firing' | 'resolved',
  now: number,
  silentSince = Date.parse(state.silentSince ?? iso(now)),
): AlertBatch {
  const { alertname, severity } = state.settings;
  const receiver = cutText(state.receiver, 256);
  return {
    receiver,
    groupKey: `watchdog:${receiver}`,
    status,
    truncatedAlerts: 0,
    externalURL: '',
    alerts: [
      {
        fingerprint: cutText(`watchdog:${workflowInfo().workflowId}`, 128),
        status,
        severity,
        labels: { alertname: SILENCE_ALERTNAME, receiver, watchdog: alertname, priority: severity },
        annotations: {
          summary:
            status === 'firing'
              ? `No ${alertname} from ${receiver} since ${iso(silentSince)}`
              : `${alertname} from ${receiver} arrives again since ${iso(now)}`,
        },
        startsAt: iso(silentSince),
        ...(status === 'resolved' ? { endsAt: iso(now) } : {}),
      },
    ],
  };
}

function record(state: WatchdogState, at: number, kind: WatchdogEventKind, message: string): void {
  state.events.push({ at: iso(at), kind, message });
  if (state.events.length > WATCHDOG_EVENTS_KEPT)
    state.events.splice(0, state.events.length - WATCHDOG_EVENTS_KEPT);
}

function describe(state: WatchdogState): string {
  return `${state.settings.alertname} from receiver ${state.receiver}: silent after ${formatDuration(state.settings.timeoutMs)}`;
}

function details(state: WatchdogState): void {
  const lines =
    state.status === 'alive'
      ? [
          `**alive**: ${describe(state)}`,
          `last heartbeat ${state.lastHeartbeatAt ?? 'none'}`,
          `silent at ${state.silentAt ?? '?'}`,
        ]
      : [`**SILENT** since ${state.silentSince ?? '?'}: ${describe(state)}`];
  if (state.incident) lines.push(`incident ${state.incident.id}${state.incident.closed ? ' (closed)' : ''}`);
  lines.push(`heartbeats: ${state.heartbeats}`);
  setCurrentDetails(lines.join('\n'));
}

function isHeartbeat(arg: unknown): arg is WatchdogHeartbeat {
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return false;
  const settings = (arg as { settings?: unknown }).settings;
  return isSettings(settings);
}

function isSettings(value: unknown): value is WatchdogSettings {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<Record<keyof WatchdogSettings, unknown>>;
  return (
    typeof s.alertname === 'string' &&
    s.alertname !== '' &&
    typeof s.timeoutMs === 'number' &&
    Number.isFinite(s.timeoutMs) &&
    s.timeoutMs >= 1_000 &&
    (SEVERITIES as readonly unknown[]).includes(s.severity)
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function messageOf(err: unknown): string {
  if (err instanceof Error)
    return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return String(err);
}
