import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.ts';
import type { IncidentState } from '../domain/incident.ts';
import { IncidentLifecycle } from '../domain/lifecycle.ts';
import type { Outgoing } from '../domain/lifecycle.ts';
import { deliveriesFor } from '../domain/delivery.ts';
import type { Policy } from '../domain/policy.ts';
import { withoutContacts } from '../domain/workflow-policy.ts';
import type { DeliveryResult } from '../domain/delivery.ts';
import type { OperationName, OperationRefusal } from '../domain/operations.ts';
import { incidentIdFrom } from '../contract/incident-id.ts';
import {
  OPERATION_LIST,
  REFUSAL_FAILURE_TYPES,
  NOT_OPENED_YET,
  alertsReceivedSignal,
  incidentSearchAttributes,
  searchAttributesOf,
  stateQuery,
} from '../contract/messages.ts';
import type { IncidentInput, PolicyRef } from '../contract/messages.ts';
import { LISTING_MEMO_KEY, listingOf, readListing } from '../contract/listing.ts';
import {
  INVESTIGATION_WORKFLOW_TYPE,
  PLAYBOOK_WORKFLOW_TYPES,
  approvalSignal,
  investigationFinishedSignal,
  playbookFinishedSignal,
  playbookStepSignal,
  playbookStepsSignal,
} from '../contract/playbooks.ts';
import type {
  InvestigationInput,
  InvestigationResult,
  PlaybookCommand,
  PlaybookResult,
} from '../domain/playbook.ts';
import { INVESTIGATION_CANCELLED, investigationWithoutReads } from '../domain/investigation-plan.ts';
import type { Investigation } from '../domain/investigation-plan.ts';
import type { AlertBatch } from '../domain/alert-mapping.ts';
import type { PlaybookStepReport } from '../contract/playbooks.ts';
import type { RawValue } from '@temporalio/common';
import { UndecodableArgument, decodeArgument, rawSignal } from './signal-arguments.ts';
import {
  CARRY_BUDGET_BYTES,
  STATE_BOUNDS,
  answerOf,
  serialisedBytes,
  viewOf,
} from '../domain/incident-record.ts';
import type { ArchivedEntry } from '../domain/incident-record.ts';

/**
 * Messages go out in one `deliver` activity per step of the incident, beside
 * the main loop: they retry with backoff for a few minutes and never block the
 * incident, and what finally fails is recorded on the timeline instead of
 * failing the workflow. A regular activity, so a pending page is visible in
 * the web UI while it retries.
 */
const DELIVERY_ATTEMPTS = 8;
/**
 * What a bounded run lets go goes to the incident's record store: retried until it is written (the run
 * holds the entries meanwhile, and does not continue as new before), so nothing is lost to a disk hiccup.
 */
const { archiveIncidentRecord } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
/** One activity's worth of entries (its input is one payload: well under Temporal's 2 MB). */
const ARCHIVE_CHUNK_BYTES = 512 * 1024;
/**
 * The initial investigation (src/activities/playbooks/investigate.ts): read-only, so a retry reads again.
 * Its reads retry within it (`playbooks.attempts`); these attempts are for a worker that died meanwhile.
 */
const { investigate } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '5 minutes',
  // It heartbeats after each read: a dead worker is noticed in 30 s, and a resolution's cancel reaches it.
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 3,
  },
});
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

/**
 * The run's policy by the hash its start named, once, at its start (src/policy-snapshots.ts): a local
 * activity (no task round trip), whose result is recorded in the run's history. It answers the worker's
 * current policy for a hash it does not know, so its retries are only for a worker-side fault.
 */
const { incidentPolicy } = proxyLocalActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** Continue-as-new well before Temporal's history limits; tests force a small value. */
const HISTORY_EVENTS_BEFORE_CONTINUE = 5_000;

/**
 * Fixes that change the commands a running incident issues, each behind
 * `patched()`: an incident whose history began before a fix replays (and
 * goes on) without it. Decided once, when the run starts, so one run never
 * mixes paths; a run that continues as new decides afresh (its history is new).
 * The ids are permanent: remove one only with `deprecatePatch`, once no
 * history without its marker can still be replayed.
 */
const PATCHES = {
  /** An engineer's mitigation starts the P2/P3 quiet period; only an alert that starts firing reopens. */
  quietAfterMitigation: 'quiet-period-after-engineer-mitigation',
  /** A raised severity posts to the new severity's channels. */
  postsOnSeverityRaise: 'posts-on-severity-raise',
  /** Escalation deadlines keep firing while the run waits for deliveries before continuing as new. */
  tickWhileDraining: 'tick-while-draining-before-continue-as-new',
  /** PagerDuty acknowledge/resolve, generic webhook events, the incident's own Slack channel. */
  channelEvents: 'channel-events',
  /** The mapping's playbook (else the initial investigation) runs as a child workflow; engineers run, cancel, approve. */
  playbooks: 'playbooks-run-as-children',
  /** Signals meet the policy's permissions (update validators always do: their refusals are not in history). */
  signalPermissions: 'engineer-permissions',
  /** The memo keeps what listings and the status page read (src/contract/listing.ts), upserted when it changes. */
  listingMemo: 'listing-memo',
  /** Bounded state, what it lets go appended to the incident's record store; flap damping. */
  boundedState: 'bounded-state-and-flap-damping',
  /** A bounded run lets its alerts go in batches, not one archive activity per new alert. */
  alertsInBatches: 'alerts-let-go-in-batches',
  /**
   * Every fix above at once, with one marker instead of nine (each `patched()` also upserts the
   * `TemporalChangeVersion` search attribute: an event and a visibility write); the initial investigation
   * as one `investigate` activity instead of a child workflow and its signals; the previous incident looked
   * up by the local activity that obtains the policy instead of an activity of its own. A run with this
   * marker decides no other patch. The price of a new incident, in tasks, events and visibility writes.
   */
  leanStart: 'lean-incident-start',
  /**
   * An initial investigation (the activity) cancelled because the incident was resolved is said on the
   * timeline and ends `completed`, summary "cancelled", instead of staying `running` for ever.
   */
  investigationCancelRecorded: 'investigation-cancel-recorded',
} as const;

/**
 * The fixes `leanStart` decides at once, as they were when it was recorded: closed, never added to (a fix after
 * it calls `patched()` itself, see {@link incidentWorkflow}'s `decide`).
 */
type FoldedPatch =
  | 'quietAfterMitigation'
  | 'postsOnSeverityRaise'
  | 'tickWhileDraining'
  | 'channelEvents'
  | 'playbooks'
  | 'signalPermissions'
  | 'listingMemo'
  | 'boundedState'
  | 'alertsInBatches';

/**
 * The lifecycle of one incident: opened by an alert group or a declaration,
 * escalated on durable timers, acted on by engineers, closed when resolved.
 */
export async function incidentWorkflow(input: IncidentInput): Promise<IncidentState> {
  const lean = patched(PATCHES.leanStart);
  // Only the nine fixes folded into `leanStart` when it was recorded: a later fix calls `patched()` itself, even
  // in lean runs (a lean history recorded before it must replay without it).
  const decide = (id: FoldedPatch) => lean || patched(PATCHES[id]);
  const behaviour = {
    quietAfterMitigation: decide('quietAfterMitigation'),
    postsOnSeverityRaise: decide('postsOnSeverityRaise'),
    channelEvents: decide('channelEvents'),
    playbooks: decide('playbooks'),
    signalPermissions: decide('signalPermissions'),
    boundedState: decide('boundedState'),
    alertsInBatches: decide('alertsInBatches'),
  };
  const tickWhileDraining = decide('tickWhileDraining');
  const keepsListing = decide('listingMemo');
  // The policy: in the input when the run continued as new (or started before policy references: their
  // histories never take the activity's path), else obtained once by the hash the start named. Without
  // people's contacts, whichever it is (an old input has them; nothing in a run reads them), so that no
  // run carries them on through continue-as-new.
  //
  // While that activity runs the lifecycle does not exist yet: the state query and the engineers' updates are
  // registered first, so that a `show` then hears "not opened yet" (the client retries) and an update waits for
  // the incident instead of being rejected for want of a handler. Signals wait in the SDK's buffer.
  const opening: { run?: IncidentLifecycle } = {};
  setHandler(stateQuery, () => {
    const state = opening.run?.state;
    if (!state) throw new Error(NOT_OPENED_YET);
    return viewOf(state);
  });
  const answer = (op: OperationName, arg: unknown) => {
    apply(op, arg, Date.now());
    // Bounded runs answer a summary: every update's answer is in history (the caller reads the state by query).
    const state = run.state as IncidentState;
    return state.record ? answerOf(state) : state;
  };
  for (const op of OPERATION_LIST) {
    setHandler(
      op.update,
      (arg) => {
        if (opening.run?.opened) return answer(op.name, arg);
        // Accepted before the incident opened (its validator could not judge): judged once it has.
        return (async () => {
          await condition(() => opening.run?.opened === true);
          refuseIfRefused(op.name, arg);
          return answer(op.name, arg);
        })();
      },
      {
        validator: (arg) => {
          if (opening.run?.opened) refuseIfRefused(op.name, arg);
        },
      },
    );
  }
  const refuseIfRefused = (op: OperationName, arg: unknown) => {
    const refusal = run.refusalOf(op, arg);
    // `Forbidden` when the actor's roles do not permit it (the API answers 403), else `Refused`.
    if (refusal) throw ApplicationFailure.nonRetryable(refusal.reason, REFUSAL_FAILURE_TYPES[refusal.kind]);
  };
  // Signals that arrive meanwhile are kept here, in arrival order, and applied once the lifecycle exists
  // (the SDK's own buffer would hand them out in the order their handlers are registered). A run given its
  // policy in its input (continued as new, or from before policy references) opens at once and registers its
  // signal handlers where it always did.
  const waitsForPolicy = input.policy === undefined;
  const arrivedEarly: { name: string; raw: RawValue | undefined }[] = [];
  const signalHandlers = new Map<string, (raw?: RawValue) => void>();
  const onSignal = (definition: { readonly name: string }, handle: (raw?: RawValue) => void) => {
    if (!waitsForPolicy) return setHandler(rawSignal(definition), handle);
    // Every signal must be among those registered early, or it would wait in the SDK's buffer out of order.
    if (!earlySignals.includes(definition.name))
      throw new Error(`signal ${definition.name} is not among the early-registered signals`);
    signalHandlers.set(definition.name, handle);
  };
  const earlySignals = [
    ...OPERATION_LIST.flatMap((op) => (op.signal ? [op.signal.name] : [])),
    ...[playbookStepSignal, playbookStepsSignal, playbookFinishedSignal, investigationFinishedSignal].map(
      (d) => d.name,
    ),
    alertsReceivedSignal.name,
  ];
  if (waitsForPolicy) {
    for (const name of earlySignals) {
      setHandler(rawSignal({ name }), (raw) => {
        const handle = opening.run ? signalHandlers.get(name) : undefined;
        if (handle && arrivedEarly.length === 0) handle(raw);
        else arrivedEarly.push({ name, raw });
      });
    }
  }
  // A new incident (not carried over, not the next of a resolved one) may follow an earlier run of its id.
  const mayFollowAnother = !input.carried && !input.previousIncidentId;
  const { workflowId, namespace, firstExecutionRunId } = workflowInfo();
  const obtained = input.policy
    ? undefined
    : await incidentPolicy({
        hash: (input.policyRef as PolicyRef | undefined)?.hash ?? '',
        ...(lean && mayFollowAnother && !input.declared
          ? { previousOf: { workflowId, runId: firstExecutionRunId } }
          : {}),
        ...(lean ? { environment: true } : {}),
      });
  const policy = withoutContacts(obtained?.policy ?? (input.policy as Policy));
  const run = new IncidentLifecycle(input, policy, { workflowId, namespace, behaviour });
  opening.run = run;
  const inFlight = new Set<Promise<void>>();
  /** Nothing is left to record: every delivery has reported back and every handler has returned. */
  const drained = () => inFlight.size === 0 && allHandlersFinished();

  /**
   * What the run lets go waits here and goes out one activity at a time, each at most ARCHIVE_CHUNK_BYTES, in
   * order: a burst (fifty alert notifications in one workflow task) must not put megabytes of commands in one
   * task completion (gRPC refuses a message over 4 MB). In flight until written, so the run drains it before
   * continuing as new.
   */
  const pendingArchive: ArchivedEntry[] = [];
  let archiving = false;
  const archive = (entries: ArchivedEntry[]) => {
    pendingArchive.push(...entries);
    const state = run.state;
    if (archiving || pendingArchive.length === 0 || !state) return;
    archiving = true;
    const p = (async () => {
      while (pendingArchive.length > 0) {
        const chunk = takeChunk(pendingArchive, ARCHIVE_CHUNK_BYTES);
        await archiveIncidentRecord({ incidentId: state.id, entries: chunk });
      }
    })().finally(() => {
      inFlight.delete(p);
      archiving = false;
      archive([]);
    });
    inFlight.add(p);
  };
  const dispatch = () => {
    archive(run.takeArchive());
    for (const command of run.playbookCommands.splice(0)) {
      const p = execute(command).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    const outgoing = run.outbox.splice(0);
    const state = run.state;
    if (outgoing.length === 0 || !state) return;
    const p = deliverAll(state.id, outgoing).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const deliverAll = async (incidentId: string, outgoing: Outgoing[]): Promise<void> => {
    const deliveries = deliveriesFor(policy, run.state as IncidentState, outgoing, run.link());
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
    outgoing.forEach((out, i) =>
      run.delivered(out, deliveries[i], now, results[i] ?? { ok: false, error: 'no result' }),
    );
    publish();
  };
  // Upserts are commands (and visibility writes): only send what changed since the last publish.
  // The API set these at start (alert-born incidents), so the first publish sends nothing it need not.
  const startAttributes = workflowInfo().typedSearchAttributes;
  let published = incidentSearchAttributes.map((key) => startAttributes.get(key)).join('|');
  let publishedTitle =
    typeof workflowInfo().memo?.['title'] === 'string' ? String(workflowInfo().memo?.['title']) : '';
  let publishedListing = JSON.stringify(readListing(workflowInfo().memo, undefined) ?? null);
  const publish = () => {
    const state = run.state;
    if (!state) return;
    const attributes = searchAttributesOf(state);
    const key = attributes.map((a) => a.value).join('|');
    // One memo upsert for whatever changed (a run without the listing patch upserts only its title, as before).
    const memo: Record<string, unknown> = {};
    if (state.title !== publishedTitle) {
      publishedTitle = state.title;
      memo['title'] = state.title;
    }
    if (keepsListing) {
      const listing = listingOf(state);
      const listed = JSON.stringify(listing);
      if (listed !== publishedListing) {
        publishedListing = listed;
        memo[LISTING_MEMO_KEY] = listing;
      }
    }
    if (Object.keys(memo).length > 0) upsertMemo(memo);
    if (key === published) return;
    published = key;
    upsertSearchAttributes(attributes);
    setCurrentDetails(
      [
        `**${state.id}** ${state.severity} · ${state.status} · escalation level ${state.escalationLevel}`,
        state.acknowledgedBy ? `acknowledged by ${state.acknowledgedBy}` : 'not acknowledged',
        state.commander ? `commander ${state.commander}` : '',
        state.record
          ? `alerts: ${state.record.counts.firing} firing / ${state.record.counts.alerts}`
          : `alerts: ${state.alerts.filter((a) => a.status === 'firing').length} firing / ${state.alerts.length}`,
        state.nextUpdateDue ? `next update due ${state.nextUpdateDue}` : '',
      ]
        .filter((line) => line !== '')
        .join('\n'),
    );
  };
  /**
   * A playbook command: start a run as a child workflow (abandoned when this run continues as new or
   * closes: it reports to the workflow id, so whichever run is current hears it), cancel it, or forward
   * an engineer's approval. A run that ends without reporting (terminated by an operator) is `failed`.
   */
  const execute = async (command: PlaybookCommand): Promise<void> => {
    const now = () => Date.now();
    try {
      if (command.kind === 'investigate' && lean) return await investigateHere(command.runId, command.input);
      if (command.kind === 'cancel' && investigations.has(command.runId)) {
        investigations.get(command.runId)?.cancel();
        return;
      }
      if (command.kind === 'start' || command.kind === 'investigate') {
        const type =
          command.kind === 'start'
            ? PLAYBOOK_WORKFLOW_TYPES[command.input.name]
            : INVESTIGATION_WORKFLOW_TYPE;
        const state = run.state as IncidentState;
        const child = await startChild(type, {
          workflowId: command.runId,
          args: [command.input],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          staticSummary: `${command.kind === 'start' ? `playbook ${command.input.name}` : 'initial investigation'} for ${state.id} ${state.title}`,
        });
        if (command.kind === 'start') {
          child.result().catch((err: unknown) => {
            const current = run.state?.playbook;
            if (current?.runId !== command.runId || current.status !== 'running') return;
            run.playbookFinished(
              {
                runId: command.runId,
                name: command.input.name,
                outcome: 'failed',
                reason: `the run ended without an outcome: ${causeOf(err)}`,
                dryRun: false,
              },
              now(),
            );
            dispatch();
            publish();
          });
        }
      } else if (command.kind === 'cancel') {
        await getExternalWorkflowHandle(command.runId).cancel();
      } else {
        await getExternalWorkflowHandle(command.runId).signal(approvalSignal, command.decision);
      }
    } catch (err) {
      log.warn('playbook command failed', {
        command: command.kind,
        runId: command.runId,
        error: causeOf(err),
      });
      if (!run.state) return;
      if (command.kind === 'start') {
        run.playbookFinished(
          {
            runId: command.runId,
            name: command.input.name,
            outcome: 'failed',
            reason: `could not start: ${causeOf(err)}`,
            dryRun: false,
          },
          now(),
        );
      } else {
        run.record(
          now(),
          'playbook_step',
          'system',
          `${command.kind} of ${command.runId} failed: ${causeOf(err)}`,
        );
      }
      dispatch();
      publish();
    }
  };
  /**
   * The initial investigation as one activity of this run ({@link PATCHES.leanStart}): its steps and findings
   * arrive with its result. Cancelled like a child run when the incident no longer needs it (resolved); one
   * that fails is recorded as incomplete, never as done.
   */
  const investigations = new Map<string, CancellationScope>();
  const investigateHere = async (runId: string, input: InvestigationInput): Promise<void> => {
    const findings = (found: Investigation) => {
      const at = Date.now();
      for (const step of found.steps) run.playbookStep({ runId, step }, at);
      run.investigationFinished(
        {
          runId,
          summary: found.summary,
          steps: found.steps.length,
          ...(found.incomplete ? { incomplete: true } : {}),
          ...(found.cancelled ? { cancelled: true } : {}),
        },
        at,
      );
    };
    // Nothing to read (known from the policy's local activity): the findings at once, no activity, and they go
    // out with the initial report (the dispatch that runs this command sends both).
    const environment = obtained?.playbookEnvironment;
    const unread = environment && investigationWithoutReads(input, environment, Date.now());
    if (unread) return findings(unread);
    const scope = new CancellationScope();
    investigations.set(runId, scope);
    let found: Investigation;
    try {
      found = await scope.run(() => investigate({ ...input, runId }));
    } catch (err) {
      if (isCancellation(err)) {
        // Cancelled by the resolution (the lifecycle's `cancel` command): said, so it does not read as running.
        if (run.state?.status !== 'resolved' || !patched(PATCHES.investigationCancelRecorded)) return;
        found = { steps: [], summary: INVESTIGATION_CANCELLED, incomplete: true, cancelled: true };
      } else {
        found = { steps: [], summary: `investigation incomplete: ${causeOf(err)}`, incomplete: true };
      }
    } finally {
      investigations.delete(runId);
    }
    findings(found);
    dispatch();
  };
  /** Every engineer operation: validated, applied, side effects dispatched, state returned. */
  const apply = (op: OperationName, arg: unknown, now: number) => {
    run.apply(op, arg, now);
    dispatch();
    publish();
  };
  for (const op of OPERATION_LIST) {
    if (op.signal) {
      // One rule with the update's validator; a refused signal is recorded, never thrown (it would fail the task).
      // Its payload is decoded here too (signal-arguments.ts): one the SDK could not decode would fail the task.
      onSignal(op.signal, (raw) => {
        const arg = decodeArgument(raw);
        const refusal: OperationRefusal | undefined =
          arg instanceof UndecodableArgument
            ? { kind: 'refused', reason: arg.reason }
            : run.refusalOf(op.name, arg, 'signal');
        const now = Date.now();
        if (!refusal) apply(op.name, arg, now);
        else if (run.state)
          run.record(
            now,
            'rejected',
            actorOf(arg),
            `${op.name} ${refusal.kind === 'forbidden' ? 'forbidden' : 'refused'}: ${refusal.reason}`,
          );
        else log.warn('signal before the incident opened', { op: op.name });
      });
    }
  }
  /**
   * The other signals come from this code (the API, the playbook runs), but anyone with access to Temporal can
   * send them too: an argument that does not decode, or is not of the signal's shape, is recorded as rejected
   * and dropped, never thrown (a handler's error fails the workflow task, at every retry).
   */
  const fromSystem =
    <T>(name: string, shaped: (arg: unknown) => boolean, handle: (arg: T) => void) =>
    (raw?: RawValue) => {
      const arg = decodeArgument(raw);
      if (!(arg instanceof UndecodableArgument) && shaped(arg)) return handle(arg as T);
      const problem =
        arg instanceof UndecodableArgument ? arg.reason : 'the argument is not what the signal carries';
      log.warn('malformed signal', { signal: name, problem });
      if (run.state) run.record(Date.now(), 'rejected', 'unknown', `${name} refused: ${problem}`);
    };
  onSignal(
    playbookStepSignal,
    fromSystem('playbookStep', isObject, (report: PlaybookStepReport) => {
      if (!run.state) return;
      run.playbookStep(report, Date.now());
      dispatch();
    }),
  );
  onSignal(
    playbookStepsSignal,
    fromSystem('playbookSteps', isObjectList, (reports: PlaybookStepReport[]) => {
      if (!run.state) return;
      const now = Date.now();
      for (const report of reports) run.playbookStep(report, now);
      dispatch();
    }),
  );
  onSignal(
    playbookFinishedSignal,
    fromSystem('playbookFinished', isObject, (result: PlaybookResult) => {
      if (!run.state) return;
      run.playbookFinished(result, Date.now());
      dispatch();
      publish();
    }),
  );
  onSignal(
    investigationFinishedSignal,
    fromSystem('investigationFinished', isObject, (result: InvestigationResult) => {
      if (!run.state) return;
      run.investigationFinished(result, Date.now());
      dispatch();
    }),
  );
  onSignal(
    alertsReceivedSignal,
    fromSystem('alertsReceived', isAlertBatch, (batch: AlertBatch) => {
      run.receiveAlerts(batch, Date.now());
      dispatch();
      publish();
    }),
  );

  // What arrived while the policy was being obtained, in arrival order.
  for (const early of arrivedEarly.splice(0)) signalHandlers.get(early.name)?.(early.raw);
  for (const batch of input.pendingBatches ?? []) run.receiveAlerts(batch, Date.now());
  run.openDeclared(Date.now());
  // An alert-born incident opens on its first batch, which arrives with the start (signal-with-start).
  await condition(() => run.opened);
  if (obtained?.missing) {
    // Deploy skew (an API and a worker on different policies, no shared snapshot): never silently.
    const { requested, reason } = obtained.missing;
    log.warn('incident policy not found', { requested, reason, used: obtained.hash });
    run.record(
      Date.now(),
      'policy_not_found',
      'system',
      `policy ${requested} was not found (${reason}): this incident runs on the worker’s current policy ${obtained.hash}`,
    );
  }
  dispatch();
  publish();
  // A group that fires again after its incident was resolved runs again under the same workflow id:
  // link the new incident to the one before. Best effort, beside the main loop (or already looked up).
  const linksPrevious = mayFollowAnother && run.state?.source.kind === 'alertmanager';
  if (linksPrevious && lean && obtained) {
    if (obtained.previousIncidentId) run.linkPrevious(obtained.previousIncidentId, Date.now());
  } else if (linksPrevious) {
    const link = findPreviousIncident({ workflowId, runId: firstExecutionRunId })
      .then((previous) => {
        if (previous) run.linkPrevious(previous, Date.now());
      })
      .catch(() => undefined)
      .finally(() => inFlight.delete(link));
    inFlight.add(link);
  }

  const continueAsNewWithState = () =>
    continueAsNew<typeof incidentWorkflow>({
      ...input,
      // The policy itself, once per run: the next run needs no snapshot, and keeps this run's policy.
      policy,
      carried: { state: run.state as IncidentState, runtime: run.runtime },
    });
  while (!run.resolved) {
    const now = Date.now();
    run.tick(now);
    dispatch();
    publish();
    if (run.resolved) break;
    // Every handler has already applied its change to the state, so the state is complete to carry;
    // only side effects still in flight must finish, or their outcome would be lost.
    const continuing =
      workflowInfo().historyLength >= continueAfter(input) || workflowInfo().continueAsNewSuggested;
    if (continuing && !tickWhileDraining) {
      // Before the fix: no deadline fired until the deliveries were done (minutes, with Slack degraded).
      await condition(drained);
      if (run.resolved) break;
      await continueAsNewWithState();
    }
    // The carried state must fit one payload: a bounded run lets go of more if it would not (and waits for that).
    if (continuing) archive(run.takeArchive(STATE_BOUNDS, CARRY_BUDGET_BYTES));
    if (continuing && drained()) await continueAsNewWithState();
    const wakeAt = run.nextWakeAt(now);
    run.dirty = false;
    // While deliveries drain before continuing as new, the loop goes on waking for deadlines.
    const wake = continuing ? () => run.dirty || drained() : () => run.dirty;
    if (wakeAt === undefined) await condition(wake);
    else await condition(wake, Math.max(1, wakeAt - now));
  }
  publish();
  // Resolution notices go out before the run closes; waiting here is what keeps them from being lost.
  await condition(drained);
  const resolved = run.state as IncidentState;
  if (run.afterResolution.length > 0) {
    // The group fired again before this run closed: its next incident continues under the same workflow id.
    await continueAsNew<typeof incidentWorkflow>({
      incidentId: incidentIdFrom(uuid4()),
      policy,
      previousIncidentId: resolved.id,
      pendingBatches: run.afterResolution,
    });
  }
  return viewOf(resolved);
}

/** Takes the first entries of `queue` up to `maxBytes` serialised (always at least one). */
function takeChunk(queue: ArchivedEntry[], maxBytes: number): ArchivedEntry[] {
  let count = 0;
  let bytes = 0;
  for (const entry of queue) {
    const size = serialisedBytes(entry);
    if (count > 0 && bytes + size > maxBytes) break;
    count++;
    bytes += size;
  }
  return queue.splice(0, count);
}

function causeOf(err: unknown): string {
  if (err instanceof Error)
    return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return String(err);
}

/** Who a signal says acted, as the timeline records it: a string, cut short (the signal is untrusted). */
function actorOf(arg: unknown): string {
  const by: unknown =
    typeof arg === 'object' && arg !== null && !Array.isArray(arg) ? (arg as { by?: unknown }).by : undefined;
  if (typeof by !== 'string' || by === '') return 'unknown';
  return by.length > 64 ? `${by.slice(0, 64)}…` : by;
}

function isObject(arg: unknown): boolean {
  return typeof arg === 'object' && arg !== null && !Array.isArray(arg);
}

function isObjectList(arg: unknown): boolean {
  return Array.isArray(arg) && arg.every(isObject);
}

function isAlertBatch(arg: unknown): boolean {
  return isObject(arg) && Array.isArray((arg as { alerts?: unknown }).alerts);
}

function continueAfter(input: IncidentInput): number {
  return input.continueAsNewAfterEvents ?? HISTORY_EVENTS_BEFORE_CONTINUE;
}
