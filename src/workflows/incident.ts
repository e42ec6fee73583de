import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Delivery, DeliveryResult, createActivities } from '../activities/index.ts';
import type {
  AcknowledgeInput,
  AssignCommanderInput,
  ChangeSeverityInput,
  EscalateInput,
  IncidentState,
  MitigateInput,
  PostUpdateInput,
  ResolveInput,
  SecurityEvaluationInput,
} from '../domain/incident.ts';
import type { Outgoing } from './incident-run.ts';
import { IncidentRun } from './incident-run.ts';
import {
  IncidentEscalationLevelAttribute,
  IncidentIdAttribute,
  IncidentServiceAttribute,
  IncidentSeverityAttribute,
  IncidentStatusAttribute,
  acknowledgeSignal,
  acknowledgeUpdate,
  alertsReceivedSignal,
  assignCommanderUpdate,
  changeSeverityUpdate,
  escalateSignal,
  escalateUpdate,
  mitigateUpdate,
  postUpdateSignal,
  postUpdateUpdate,
  recordSecurityEvaluationUpdate,
  resolveSignal,
  resolveUpdate,
  stateQuery,
} from './messages.ts';
import type { IncidentInput } from './messages.ts';

/**
 * Messages go out in one `deliver` activity per step of the incident, beside
 * the main loop: they retry with backoff for a few minutes and never block the
 * incident, and what finally fails is recorded on the timeline instead of
 * failing the workflow. A regular activity, so a pending page is visible in
 * the web UI while it retries.
 */
const DELIVERY_ATTEMPTS = 8;
const { deliver, findPreviousIncident } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: DELIVERY_ATTEMPTS,
  },
});

/** Continue-as-new well before Temporal's history limits; tests force a small value. */
const HISTORY_EVENTS_BEFORE_CONTINUE = 5_000;

type Operation = Parameters<IncidentRun['refusal']>[0];

/**
 * The lifecycle of one incident: opened by an alert group or a declaration,
 * escalated on durable timers, acted on by engineers, closed when resolved.
 */
export async function incidentWorkflow(input: IncidentInput): Promise<IncidentState> {
  const run = new IncidentRun(input, workflowInfo().workflowId);
  const inFlight = new Set<Promise<void>>();

  const dispatch = () => {
    const outgoing = run.outbox.splice(0);
    const state = run.state;
    if (outgoing.length === 0 || !state) return;
    const p = deliverAll(state.id, outgoing).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const deliverAll = async (incidentId: string, outgoing: Outgoing[]): Promise<void> => {
    const deliveries: Delivery[] = outgoing.map((out) =>
      out.kind === 'post'
        ? {
            kind: 'post',
            channel: input.policy.channels.slack.channels[out.channelKey] ?? out.channelKey,
            text: out.text,
          }
        : {
            kind: 'notify',
            notification: out.notification,
            person:
              out.notification.person === null ? undefined : input.policy.people[out.notification.person],
            text: out.text,
          },
    );
    let results: DeliveryResult[];
    try {
      results = await deliver({ incidentId, deliveries, maxAttempts: DELIVERY_ATTEMPTS });
    } catch (err) {
      // Only a worker-side fault gets here (per-message failures come back as results).
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      log.warn('delivery failed', { incidentId, error: cause });
      results = outgoing.map(() => ({ ok: false, error: cause }));
    }
    const now = Date.now();
    outgoing.forEach((out, i) => run.delivered(out, now, results[i] ?? { ok: false, error: 'no result' }));
    publish();
  };
  // Upserts are commands (and visibility writes): only send what changed since the last publish.
  // The API set these at start (alert-born incidents), so the first publish sends nothing it need not.
  const startAttributes = workflowInfo().typedSearchAttributes;
  let published = [
    startAttributes.get(IncidentIdAttribute),
    startAttributes.get(IncidentSeverityAttribute),
    startAttributes.get(IncidentStatusAttribute),
    startAttributes.get(IncidentServiceAttribute),
    startAttributes.get(IncidentEscalationLevelAttribute),
  ].join('|');
  let publishedTitle =
    typeof workflowInfo().memo?.['title'] === 'string' ? String(workflowInfo().memo?.['title']) : '';
  const publish = () => {
    const state = run.state;
    if (!state) return;
    const key = [state.id, state.severity, state.status, state.service, state.escalationLevel].join('|');
    if (state.title !== publishedTitle) {
      publishedTitle = state.title;
      upsertMemo({ title: state.title });
    }
    if (key === published) return;
    published = key;
    upsertSearchAttributes([
      { key: IncidentIdAttribute, value: state.id },
      { key: IncidentSeverityAttribute, value: state.severity },
      { key: IncidentStatusAttribute, value: state.status },
      { key: IncidentServiceAttribute, value: state.service },
      { key: IncidentEscalationLevelAttribute, value: state.escalationLevel },
    ]);
    setCurrentDetails(
      [
        `**${state.id}** ${state.severity} · ${state.status} · escalation level ${state.escalationLevel}`,
        state.acknowledgedBy ? `acknowledged by ${state.acknowledgedBy}` : 'not acknowledged',
        state.commander ? `commander ${state.commander}` : '',
        `alerts: ${state.alerts.filter((a) => a.status === 'firing').length} firing / ${state.alerts.length}`,
        state.nextUpdateDue ? `next update due ${state.nextUpdateDue}` : '',
      ]
        .filter((line) => line !== '')
        .join('\n'),
    );
  };
  /** Every engineer operation: validated, applied, side effects dispatched, state returned. */
  const operate = <T>(op: Operation, apply: (input: T, now: number) => void) => ({
    validate: (arg: T) => {
      const refusal = run.refusal(op, arg);
      if (refusal) throw ApplicationFailure.nonRetryable(refusal, 'Refused');
    },
    handle: (arg: T): IncidentState => {
      apply(arg, Date.now());
      dispatch();
      publish();
      return run.state as IncidentState;
    },
    signal: (arg: T) => {
      const refusal = run.refusal(op, arg);
      const now = Date.now();
      if (refusal) {
        if (run.state) run.record(now, 'rejected', actorOf(arg), `${op} refused: ${refusal}`);
        else log.warn('signal before the incident opened', { op });
        return;
      }
      apply(arg, now);
      dispatch();
      publish();
    },
  });

  const acknowledge = operate<AcknowledgeInput>('acknowledge', (a, now) => run.acknowledge(a, now));
  const postUpdate = operate<PostUpdateInput>('postUpdate', (a, now) => run.postUpdate(a, now));
  const escalate = operate<EscalateInput>('escalate', (a, now) => run.escalate(a, now));
  const resolve = operate<ResolveInput>('resolve', (a, now) => run.resolve(a, now));
  const severity = operate<ChangeSeverityInput>('changeSeverity', (a, now) => run.changeSeverity(a, now));
  const commander = operate<AssignCommanderInput>('assignCommander', (a, now) => run.assignCommander(a, now));
  const security = operate<SecurityEvaluationInput>('recordSecurityEvaluation', (a, now) =>
    run.recordSecurityEvaluation(a, now),
  );
  const mitigate = operate<MitigateInput>('mitigate', (a, now) => run.mitigate(a, now));

  setHandler(stateQuery, () => {
    if (!run.state) throw new Error('the incident has not opened yet');
    return run.state;
  });
  setHandler(alertsReceivedSignal, (batch) => {
    run.receiveAlerts(batch, Date.now());
    dispatch();
    publish();
  });
  setHandler(acknowledgeSignal, acknowledge.signal);
  setHandler(postUpdateSignal, postUpdate.signal);
  setHandler(escalateSignal, escalate.signal);
  setHandler(resolveSignal, resolve.signal);
  setHandler(acknowledgeUpdate, acknowledge.handle, { validator: acknowledge.validate });
  setHandler(postUpdateUpdate, postUpdate.handle, { validator: postUpdate.validate });
  setHandler(escalateUpdate, escalate.handle, { validator: escalate.validate });
  setHandler(resolveUpdate, resolve.handle, { validator: resolve.validate });
  setHandler(changeSeverityUpdate, severity.handle, { validator: severity.validate });
  setHandler(assignCommanderUpdate, commander.handle, { validator: commander.validate });
  setHandler(recordSecurityEvaluationUpdate, security.handle, { validator: security.validate });
  setHandler(mitigateUpdate, mitigate.handle, { validator: mitigate.validate });

  for (const batch of input.pendingBatches ?? []) run.receiveAlerts(batch, Date.now());
  run.openDeclared(Date.now());
  // An alert-born incident opens on its first batch, which arrives with the start (signal-with-start).
  await condition(() => run.opened);
  dispatch();
  publish();
  if (!input.carried && !input.previousIncidentId && run.state?.source.kind === 'alertmanager') {
    // A group that fires again after its incident was resolved runs again under the same workflow id:
    // link the new incident to the one before. Best effort, beside the main loop.
    const info = workflowInfo();
    const link = findPreviousIncident({ workflowId: info.workflowId, runId: info.firstExecutionRunId })
      .then((previous) => {
        if (previous) run.linkPrevious(previous, Date.now());
      })
      .catch(() => undefined)
      .finally(() => inFlight.delete(link));
    inFlight.add(link);
  }

  while (!run.resolved) {
    const now = Date.now();
    run.tick(now);
    dispatch();
    publish();
    if (run.resolved) break;
    if (workflowInfo().historyLength >= continueAfter(input) || workflowInfo().continueAsNewSuggested) {
      // Every handler has already applied its change to the state, so the state is complete to carry;
      // only side effects still in flight must finish, or their outcome would be lost.
      await condition(() => inFlight.size === 0 && allHandlersFinished());
      if (run.resolved) break;
      await continueAsNew<typeof incidentWorkflow>({
        ...input,
        carried: { state: run.state as IncidentState, runtime: run.runtime },
      });
    }
    const wakeAt = run.nextWakeAt(now);
    run.dirty = false;
    if (wakeAt === undefined) await condition(() => run.dirty);
    else await condition(() => run.dirty, Math.max(1, wakeAt - now));
  }
  publish();
  // Resolution notices go out before the run closes; waiting here is what keeps them from being lost.
  await condition(() => inFlight.size === 0 && allHandlersFinished());
  const resolved = run.state as IncidentState;
  if (run.afterResolution.length > 0) {
    // The group fired again before this run closed: its next incident continues under the same workflow id.
    await continueAsNew<typeof incidentWorkflow>({
      incidentId: `INC-${uuid4().replaceAll('-', '').slice(0, 8)}`,
      policy: input.policy,
      previousIncidentId: resolved.id,
      pendingBatches: run.afterResolution,
    });
  }
  return resolved;
}

function actorOf(arg: unknown): string {
  return typeof arg === 'object' && arg !== null && typeof (arg as { by?: unknown }).by === 'string'
    ? (arg as { by: string }).by
    : 'unknown';
}

function continueAfter(input: IncidentInput): number {
  return input.continueAsNewAfterEvents ?? HISTORY_EVENTS_BEFORE_CONTINUE;
}
