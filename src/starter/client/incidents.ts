import {
  ApplicationFailure,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { AlertBatch } from '../../domain/alert-mapping.ts';
import { seedIncident, splitAlertBatch } from '../../domain/alert-mapping.ts';
import type { IncidentState, IncidentStatus } from '../../domain/incident.ts';
import { fullIncident, isAnswer, missingFromRecord } from '../../domain/incident-record.ts';
import type { IncidentRecordFile } from '../../incident-record-file.ts';
import type { Declaration } from '../../domain/lifecycle.ts';
import type { OperationName } from '../../domain/operations.ts';
import type { Policy } from '../../domain/policy.ts';
import type { Severity } from '../../domain/severity.ts';
import {
  INCIDENT_WORKFLOW_TYPE,
  IncidentIdAttribute,
  IncidentServiceAttribute,
  IncidentSeverityAttribute,
  IncidentStatusAttribute,
  OPERATIONS,
  REFUSAL_FAILURE_TYPES,
  alertsReceivedSignal,
  searchAttributesOf,
} from '../../contract/messages.ts';
import type { IncidentInput, OperationArgs, PolicyRef } from '../../contract/messages.ts';
import { policyRefOf, writePolicySnapshot } from '../../policy-snapshots.ts';
import { alertBatchWorkflowId, declaredWorkflowId } from '../../contract/workflow-ids.ts';
import { readListing } from '../../contract/listing.ts';
import type { IncidentListing } from '../../contract/listing.ts';
import {
  findIncidentWorkflow,
  newIncidentId,
  readIncidentState,
  signalWithStartIncident,
} from './temporal.ts';
import {
  IncidentForbiddenError,
  IncidentNotFoundError,
  RecordIncompleteError,
  IncidentRefusedError,
  WorkerUnavailableError,
  grpcCodeOf,
  isNoPollerError,
  isTemporalUnavailable,
  noWorkerMessage,
} from './errors.ts';
import { TemporalMaintenance } from './maintenance.ts';
import type { MaintenanceLookup } from './maintenance.ts';
import { within } from '../../within.ts';

export { IncidentForbiddenError, IncidentNotFoundError, IncidentRefusedError, WorkerUnavailableError };

/** An incident as `incident list` shows it. */
export interface IncidentSummary {
  id: string;
  workflowId: string;
  title: string;
  service: string;
  severity: Severity;
  status: IncidentStatus;
  createdAt: string;
}

/**
 * An incident as visibility knows it (search attributes, memo, start time), with the facts its workflow
 * keeps in its memo for listings (`listing`, absent for runs from before the memo: ask the workflow).
 */
export interface ListedIncident extends IncidentSummary {
  listing?: IncidentListing;
}

/** Whether a worker polls the incidents' task queue (workflow tasks: what runs incidents and answers engineers). */
export interface WorkerHealth {
  taskQueue: string;
  /** At least one worker polled within {@link POLLER_FRESH_MS}. */
  polling: boolean;
  /** Workers (poller identities) seen polling within {@link POLLER_FRESH_MS}. */
  workers: number;
  /** When the most recent poll began, if Temporal said. */
  lastPollAt?: string;
  /** Temporal could not be asked: nothing is known about the workers. */
  error?: string;
}

/** Whether Temporal accepts new work in the namespace (the API's readiness). */
export interface Readiness {
  temporal: boolean;
  error?: string;
}

export interface IngestResult {
  id: string | null;
  workflowId: string;
  action: 'started' | 'signalled' | 'ignored';
}

export type DeclareInput = Declaration;

/** What the API and the CLI need from Temporal; tests substitute their own. */
export interface IncidentGateway {
  ingestAlerts(batch: AlertBatch): Promise<IngestResult>;
  listIncidents(filter?: { status?: string; severity?: string }): Promise<IncidentSummary[]>;
  /**
   * The open incidents and those whose workflow closed since `closedSince`, newest run of each, read from
   * visibility alone (no workflow is asked: it answers while no worker runs). What the status page reads.
   */
  listRecent(closedSince: Date): Promise<ListedIncident[]>;
  /** `full`: with everything a bounded incident's runs let go to the record store (`show --full`). */
  getIncident(id: string, options?: { full?: boolean }): Promise<IncidentState>;
  declare(input: DeclareInput): Promise<IncidentState>;
  operate<K extends OperationName>(
    id: string,
    operation: K,
    argument: OperationArgs<K>,
  ): Promise<IncidentState>;
  /** Temporal answers for the namespace and it accepts new workflows (the API's `/readyz`). */
  readiness(): Promise<Readiness>;
  /** Whether a worker polls the task queue (`/healthz/worker`, `incident_workers_polling`); never throws. */
  workerHealth(): Promise<WorkerHealth>;
  /**
   * The incidents task queue's backlog of workflow tasks, as Temporal reports it (DescribeTaskQueue with
   * stats): what the webhook's backpressure reads, polled and cached there. Throws when Temporal cannot say.
   */
  taskQueueBacklog?(): Promise<TaskQueueBacklog>;
}

/** Workflow tasks waiting on the incidents task queue (not counting sticky queues), as Temporal estimates them. */
export interface TaskQueueBacklog {
  count: number;
  /** Age of the oldest waiting task, in seconds (0 when none waits). */
  ageSeconds: number;
}

/**
 * How recent a worker's last poll must be for it to count as polling. Temporal lists a task queue's pollers
 * for minutes after they stop, with the time each last began a poll; a live worker begins one at least every
 * minute (a long poll ends empty after 60 s), so 90 s tells a stopped worker from a waiting one.
 */
export const POLLER_FRESH_MS = 90_000;

/** Each call's bound: how long an engineer waits before a clear 503 / exit 3 instead of a hung request. */
export interface GatewayDeadlines {
  /** The webhook's signal-with-start (Alertmanager's own timeout is 10 s). */
  ingestMs: number;
  /** `/readyz`, `/healthz/worker`, the worker gauge and the check before an engineer's call. */
  readinessMs: number;
  /** An engineer's call (list, show, declare, every operation): lookup, query or update together. */
  operationMs: number;
}

const DEFAULT_DEADLINES: GatewayDeadlines = { ingestMs: 5_000, readinessMs: 2_000, operationMs: 10_000 };

const RUN_CACHE_LIMIT = 10_000;

/**
 * The most one alert signal carries (JSON bytes): Temporal refuses a payload over 2 MB and warns over 512 KiB,
 * so a larger group is sent as several signals (`splitAlertBatch`).
 */
export const SIGNAL_MAX_BYTES = 512 * 1024;

export interface TemporalIncidentsOptions {
  deadlines?: Partial<GatewayDeadlines>;
  /**
   * Which maintenance window covers a new incident's service (paging suppressed); default: the policy's
   * and the operators' windows through Temporal. It never throws: a store that is down means no window.
   */
  maintenance?: MaintenanceLookup;
  /**
   * The policy snapshot directory (src/policy-snapshots.ts) where this gateway writes its policy, by hash,
   * before the first incident it starts: new incidents name their policy by hash, and a worker on another
   * policy file finds this one there. Unset: nothing is written (the worker must know the policy itself,
   * else the incident runs on the worker's policy, and its timeline says so).
   */
  policySnapshotDir?: string;
  /**
   * How long a start waits for that snapshot's first write (default 1 s): a disk that hangs (a stalled network
   * volume) delays no delivery past it; the incident starts meanwhile, as after a failed write.
   */
  policyWriteWaitMs?: number;
  /** Writes the snapshot (tests substitute a disk that hangs). */
  writePolicy?: (dir: string, policy: Policy) => Promise<unknown>;
  /**
   * The incident record store (src/incident-record-file.ts) the worker appends to: what `getIncident(id,
   * {full: true})` adds to a bounded incident's state. Unset: a full read of an incident that let entries go
   * is refused (never answered with part of the record as if it were all).
   */
  records?: IncidentRecordFile;
}

export class TemporalIncidents implements IncidentGateway {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly policy: Policy;
  /** runId → incident id: a signalled run's id without asking the server again. */
  private readonly runIncident = new Map<string, string>();

  private readonly deadlines: GatewayDeadlines;
  private readonly maintenance: MaintenanceLookup;
  /** What new incidents carry instead of the policy: its content hash (the snapshot without contacts). */
  private readonly policyRef: PolicyRef;
  private readonly policySnapshotDir: string | undefined;
  private readonly policyWriteWaitMs: number;
  private readonly writePolicy: (dir: string, policy: Policy) => Promise<unknown>;
  private readonly records: IncidentRecordFile | undefined;
  private policyPublished: Promise<void> | undefined;
  /** The write a start already waited `policyWriteWaitMs` for. */
  private policyWaitedOut: Promise<void> | undefined;

  /**
   * `deadlines` bound each call so that an unreachable Temporal answers a quick
   * 503 instead of the SDK's default retries of about 20 s: Alertmanager gives
   * up on a request after its own timeout, and readiness probes after a second. An engineer's call that
   * needs the incident's workflow (a query, an update) would otherwise wait for a worker for ever: it is
   * refused at once when no worker polls, and bounded by `operationMs` when one does but does not answer.
   */
  constructor(client: Client, taskQueue: string, policy: Policy, options: TemporalIncidentsOptions = {}) {
    this.client = client;
    this.taskQueue = taskQueue;
    this.policy = policy;
    this.deadlines = { ...DEFAULT_DEADLINES, ...options.deadlines };
    this.maintenance = options.maintenance ?? new TemporalMaintenance(client, taskQueue, policy);
    this.policyRef = policyRefOf(policy);
    this.policySnapshotDir = options.policySnapshotDir;
    this.policyWriteWaitMs = options.policyWriteWaitMs ?? 1_000;
    this.writePolicy = options.writePolicy ?? writePolicySnapshot;
    this.records = options.records;
  }

  /**
   * The reference a new incident starts with, its snapshot written first (once; a failed write is said on
   * stderr and tried again at the next start, and the incident starts anyway: a worker on the same policy
   * needs no file, and any other says on the incident's timeline which policy it used instead). A write that
   * takes longer than `policyWriteWaitMs` is waited for no longer (by this start or any later one): said
   * once, and left to finish.
   */
  private async newIncidentPolicy(): Promise<PolicyRef> {
    const dir = this.policySnapshotDir;
    if (!dir) return this.policyRef;
    const published = (this.policyPublished ??= this.writePolicy(dir, this.policy).then(
      () => undefined,
      (err: unknown) => {
        this.policyPublished = undefined;
        console.warn(
          `policy snapshot ${this.policyRef.hash} not written to ${dir}: ${err instanceof Error ? err.message : String(err)}`,
        );
      },
    ));
    if (published === this.policyWaitedOut) return this.policyRef;
    if (
      !(await within(
        published.then(() => true),
        this.policyWriteWaitMs,
        false,
      ))
    ) {
      this.policyWaitedOut = published;
      console.warn(
        `policy snapshot ${this.policyRef.hash} still being written to ${dir} after ${this.policyWriteWaitMs} ms: ` +
          'incidents start without waiting for it',
      );
    }
    return this.policyRef;
  }

  ingestAlerts(batch: AlertBatch): Promise<IngestResult> {
    return this.client.withDeadline(Date.now() + this.deadlines.ingestMs, () => this.ingest(batch));
  }

  private async ingest(batch: AlertBatch): Promise<IngestResult> {
    const workflowId = alertBatchWorkflowId(batch);
    // Temporal refuses a payload over 2 MB: a large group goes as several signals, the first of which opens
    // the incident as the whole group would (its most severe alert, the one that picks the rule).
    const [first = batch, ...rest] = splitAlertBatch(batch, SIGNAL_MAX_BYTES);
    const signalRest = async () => {
      for (const part of rest)
        await this.client.workflow.getHandle(workflowId).signal(alertsReceivedSignal, part);
    };
    if (!batch.alerts.some((a) => a.status === 'firing')) {
      // Resolved alerts update a running incident but never open one.
      const handle = this.client.workflow.getHandle(workflowId);
      try {
        const description = await handle.describe();
        if (description.status.name !== 'RUNNING') return { id: null, workflowId, action: 'ignored' };
        await handle.signal(alertsReceivedSignal, first);
        await signalRest();
        return {
          id: await this.incidentOfRun(workflowId, description.runId),
          workflowId,
          action: 'signalled',
        };
      } catch (err) {
        if ((err as Error).name === 'WorkflowNotFoundError')
          return { id: null, workflowId, action: 'ignored' };
        throw err;
      }
    }
    const seed = seedIncident(this.policy, first);
    const incidentId = newIncidentId();
    // Read by the run only if this call starts one (a running incident keeps the window it opened with).
    const maintenance = await this.maintenance.activeFor(seed.service, Date.now());
    const input: IncidentInput = {
      incidentId,
      policyRef: await this.newIncidentPolicy(),
      ...(maintenance ? { maintenance } : {}),
    };
    const result = await signalWithStartIncident(
      this.client,
      this.taskQueue,
      workflowId,
      input,
      { incidentId, severity: seed.severity, service: seed.service, summary: seed.title },
      first,
    );
    await signalRest();
    if (result.started) {
      this.remember(result.runId, incidentId);
      return { id: incidentId, workflowId, action: 'started' };
    }
    return { id: await this.incidentOfRun(workflowId, result.runId), workflowId, action: 'signalled' };
  }

  private remember(runId: string, incidentId: string): void {
    if (this.runIncident.size >= RUN_CACHE_LIMIT) {
      const oldest = this.runIncident.keys().next();
      if (!oldest.done) this.runIncident.delete(oldest.value);
    }
    this.runIncident.set(runId, incidentId);
  }

  private async incidentOfRun(workflowId: string, runId: string): Promise<string | null> {
    const cached = this.runIncident.get(runId);
    if (cached) return cached;
    const description = await this.client.workflow.getHandle(workflowId, runId).describe();
    const id = description.typedSearchAttributes.get(IncidentIdAttribute) ?? null;
    if (id) this.remember(runId, id);
    return id;
  }

  listIncidents(filter: { status?: string; severity?: string } = {}): Promise<IncidentSummary[]> {
    const clauses = [`WorkflowType = '${INCIDENT_WORKFLOW_TYPE}'`];
    if (filter.status) clauses.push(`IncidentStatus = '${quote(filter.status)}'`);
    if (filter.severity) clauses.push(`IncidentSeverity = '${quote(filter.severity)}'`);
    return this.withinDeadline(async () =>
      (await this.listNewest(clauses.join(' AND '))).map(
        ({ entry: { listing: _listing, ...summary } }) => summary,
      ),
    );
  }

  listRecent(closedSince: Date): Promise<ListedIncident[]> {
    const query =
      `WorkflowType = '${INCIDENT_WORKFLOW_TYPE}' AND ` +
      `(ExecutionStatus = 'Running' OR CloseTime >= '${closedSince.toISOString()}')`;
    return this.withinDeadline(async () =>
      (await this.listNewest(query))
        // Open, or closed resolved: a run terminated by an operator before resolution is neither.
        .filter(({ running, entry }) => running || entry.status === 'resolved')
        .map(({ entry }) => entry),
    );
  }

  /**
   * One entry per incident from visibility, newest first. A long incident spans several runs
   * (continue-as-new): the entry is its newest run's, dated by its memo's `createdAt`, else its first run.
   */
  private async listNewest(query: string): Promise<{ entry: ListedIncident; running: boolean }[]> {
    const incidents = new Map<
      string,
      { entry: ListedIncident; running: boolean; latestStart: number; earliestStart: number }
    >();
    for await (const w of this.client.workflow.list({ query, pageSize: 200 })) {
      const entry = listedIncident(w);
      if (!entry) continue;
      const started = w.startTime.getTime();
      const known = incidents.get(entry.id);
      const earliestStart = Math.min(started, known?.earliestStart ?? started);
      if (known && known.latestStart > started) {
        known.earliestStart = earliestStart;
        continue;
      }
      incidents.set(entry.id, {
        entry,
        running: w.status.name === 'RUNNING',
        latestStart: started,
        earliestStart,
      });
    }
    return [...incidents.values()]
      .map(({ entry, running, earliestStart }) => ({
        entry: { ...entry, createdAt: entry.listing?.createdAt ?? new Date(earliestStart).toISOString() },
        running,
      }))
      .sort((a, b) => b.entry.createdAt.localeCompare(a.entry.createdAt));
  }

  getIncident(id: string, options: { full?: boolean } = {}): Promise<IncidentState> {
    return this.engineerCall(id, async () => {
      const found = await findIncidentWorkflow(this.client.workflow, id);
      if (!found) throw new IncidentNotFoundError(id);
      // A completed run's state is its result, which needs no worker; any other is a query.
      if (found.status !== 'COMPLETED') await this.requireWorker();
      const state = await readIncidentState(this.client.workflow, found);
      return options.full ? await this.withRecord(state) : state;
    });
  }

  /** The whole incident: its bounded state with what its runs let go (a state that kept everything is whole). */
  private async withRecord(state: IncidentState): Promise<IncidentState> {
    if (!state.record) return state;
    if (!this.records)
      throw new Error(
        'the incident record store is not configured here (INCIDENT_RECORDS_DIR): only the latest entries can be shown',
      );
    const archived = await this.records.read(state.id);
    const missing = Object.entries(missingFromRecord(state, archived));
    if (missing.length > 0)
      throw new RecordIncompleteError(
        `the incident record store (${this.records.dir}) lacks entries ${state.id}'s runs let go ` +
          `(${missing.map(([section, n]) => `${section}: ${n}`).join(', ')}): ` +
          'is INCIDENT_RECORDS_DIR the directory the worker writes (shared with it)? Entries just let go may still be ' +
          'on their way: ask again in a moment',
      );
    return fullIncident(state, archived);
  }

  declare(input: DeclareInput): Promise<IncidentState> {
    let declared: string | undefined;
    return this.engineerCall(
      () => declared,
      async () => {
        // Nothing is started while no worker could open the incident and page: the engineer hears so at once.
        await this.requireWorker();
        const incidentId = newIncidentId();
        const service = input.service ?? this.policy.service.id;
        const maintenance = await this.maintenance.activeFor(service, Date.now());
        const handle = await this.client.workflow.start(INCIDENT_WORKFLOW_TYPE, {
          taskQueue: this.taskQueue,
          workflowId: declaredWorkflowId(incidentId),
          args: [
            {
              incidentId,
              policyRef: await this.newIncidentPolicy(),
              declared: { ...input, service },
              ...(maintenance ? { maintenance } : {}),
            } satisfies IncidentInput,
          ],
          typedSearchAttributes: searchAttributesOf({
            id: incidentId,
            severity: input.severity,
            status: 'triggered',
            service,
            escalationLevel: 0,
          }),
          memo: { title: input.title },
          staticSummary: `${input.severity} ${input.title}`,
        });
        declared = incidentId;
        return readIncidentState(this.client.workflow, { workflowId: handle.workflowId, status: 'RUNNING' });
      },
    );
  }

  operate<K extends OperationName>(
    id: string,
    operation: K,
    argument: OperationArgs<K>,
  ): Promise<IncidentState> {
    return this.engineerCall(id, async () => {
      const found = await findIncidentWorkflow(this.client.workflow, id);
      if (!found) throw new IncidentNotFoundError(id);
      if (found.status !== 'RUNNING')
        throw new IncidentRefusedError(`incident ${id} is closed (${found.status.toLowerCase()})`);
      // An update sent while no worker polls would wait, and be applied whenever one comes back: refuse it.
      await this.requireWorker();
      try {
        const answer = await this.client.workflow
          .getHandle(found.workflowId)
          .executeUpdate(OPERATIONS[operation].update, { args: [argument] });
        // Bounded runs answer a summary (every answer is in history): the state itself is one query away.
        if (!isAnswer(answer)) return answer;
        // Its own run, by id: a resolving update may close it and its group's next incident may follow.
        return await readIncidentState(this.client.workflow, found);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const message = err.cause instanceof Error ? err.cause.message : err.message;
          const forbidden =
            err.cause instanceof ApplicationFailure && err.cause.type === REFUSAL_FAILURE_TYPES.forbidden;
          throw forbidden ? new IncidentForbiddenError(message) : new IncidentRefusedError(message);
        }
        throw err;
      }
    });
  }

  async readiness(): Promise<Readiness> {
    try {
      // The cheapest call that says Temporal can take work: the frontend answers with the namespace's record,
      // and the namespace is registered (a deprecated or deleted one refuses new workflows).
      const response = await this.client.withDeadline(Date.now() + this.deadlines.readinessMs, () =>
        this.client.workflowService.describeNamespace({ namespace: this.client.options.namespace }),
      );
      const state = response.namespaceInfo?.state ?? NAMESPACE_STATE_REGISTERED;
      if (state !== NAMESPACE_STATE_REGISTERED)
        return {
          temporal: false,
          error: `namespace ${this.client.options.namespace} is not registered (state ${String(state)}): it refuses new workflows`,
        };
      return { temporal: true };
    } catch (err) {
      return { temporal: false, error: (err as Error).message };
    }
  }

  async workerHealth(): Promise<WorkerHealth> {
    try {
      const response = await this.client.withDeadline(Date.now() + this.deadlines.readinessMs, () =>
        this.client.workflowService.describeTaskQueue({
          namespace: this.client.options.namespace,
          taskQueue: { name: this.taskQueue, kind: 1 },
          taskQueueType: 1, // workflow pollers: a worker that runs incidents
        }),
      );
      const now = Date.now();
      let workers = 0;
      let last: number | undefined;
      for (const poller of response.pollers ?? []) {
        const at = poller.lastAccessTime
          ? Number(poller.lastAccessTime.seconds ?? 0) * 1000 +
            Math.floor((poller.lastAccessTime.nanos ?? 0) / 1e6)
          : undefined;
        // Temporal keeps a poller listed for minutes after its last poll: only a recent one is polling.
        if (at === undefined || now - at <= POLLER_FRESH_MS) workers++;
        if (at !== undefined && (last === undefined || at > last)) last = at;
      }
      return {
        taskQueue: this.taskQueue,
        polling: workers > 0,
        workers,
        ...(last !== undefined ? { lastPollAt: new Date(last).toISOString() } : {}),
      };
    } catch (err) {
      return { taskQueue: this.taskQueue, polling: false, workers: 0, error: (err as Error).message };
    }
  }

  async taskQueueBacklog(): Promise<TaskQueueBacklog> {
    const response = await this.client.withDeadline(Date.now() + this.deadlines.readinessMs, () =>
      this.client.workflowService.describeTaskQueue({
        namespace: this.client.options.namespace,
        taskQueue: { name: this.taskQueue, kind: 1 },
        taskQueueType: 1, // workflow tasks: a new incident's first task waits here for a worker
        reportStats: true,
      }),
    );
    const stats = response.stats;
    // Not a backlog of 0: unknown (the bound is not acted on, the gauge is NaN, the API says why).
    if (!stats)
      throw new Error('Temporal did not report the task queue’s statistics (reportStats unsupported?)');
    const age = stats.approximateBacklogAge;
    return {
      count: Number(String(stats.approximateBacklogCount ?? 0)),
      ageSeconds: age ? Number(String(age.seconds ?? 0)) + (age.nanos ?? 0) / 1e9 : 0,
    };
  }

  /** Refuses at once (503 / exit 3) when Temporal says no worker polls; when it cannot say, goes ahead. */
  private async requireWorker(): Promise<void> {
    const health = await this.workerHealth();
    if (!health.polling && health.error === undefined)
      throw new WorkerUnavailableError(noWorkerMessage(this.taskQueue));
  }

  private withinDeadline<T>(fn: () => Promise<T>): Promise<T> {
    return this.client.withDeadline(Date.now() + this.deadlines.operationMs, fn);
  }

  /**
   * An engineer's call, bounded by `operationMs`. When it fails for want of a worker (Temporal's "no poller
   * seen", or no answer in time while Temporal itself answers), the error says so: a
   * {@link WorkerUnavailableError} naming the task queue.
   */
  private async engineerCall<T>(
    incident: string | (() => string | undefined),
    fn: () => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.deadlines.operationMs;
    try {
      return await this.client.withDeadline(deadline, fn);
    } catch (err) {
      if (err instanceof WorkerUnavailableError) throw err;
      if (isNoPollerError(err))
        throw new WorkerUnavailableError(noWorkerMessage(this.taskQueue), { cause: err });
      const timedOut =
        err instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
        grpcCodeOf(err) === 4 /* DEADLINE_EXCEEDED */ ||
        (isTemporalUnavailable(err) && Date.now() >= deadline);
      if (!timedOut) throw err;
      // Temporal answers but the workflow did not: is any worker polling?
      const health = await this.workerHealth();
      if (health.error !== undefined) throw err;
      const id = typeof incident === 'function' ? incident() : incident;
      const what = id ? `incident ${id}` : 'the incident';
      if (!health.polling) throw new WorkerUnavailableError(noWorkerMessage(this.taskQueue), { cause: err });
      throw new WorkerUnavailableError(
        `${what} did not answer within ${this.deadlines.operationMs / 1000} s: a worker polls task queue ` +
          `${this.taskQueue} but did not run it (overloaded, or stopped in the last ${POLLER_FRESH_MS / 1000} s). ` +
          'A change may still be applied when a worker runs it: check the incident before repeating it.',
        { cause: err },
      );
    }
  }
}

/** `NAMESPACE_STATE_REGISTERED` of temporal.api.enums.v1.NamespaceState. */
const NAMESPACE_STATE_REGISTERED = 1;

/** An incident as its run's visibility record shows it; undefined for a run without an incident id. */
function listedIncident(w: WorkflowExecutionInfo): ListedIncident | undefined {
  const attrs = w.typedSearchAttributes;
  const id = attrs.get(IncidentIdAttribute);
  if (!id) return undefined;
  const listing = readListing(w.memo, id);
  return {
    id,
    workflowId: w.workflowId,
    title: typeof w.memo?.['title'] === 'string' ? w.memo['title'] : id,
    service: attrs.get(IncidentServiceAttribute) ?? '',
    severity: (attrs.get(IncidentSeverityAttribute) ?? 'P2') as Severity,
    status: (attrs.get(IncidentStatusAttribute) ?? 'triggered') as IncidentStatus,
    createdAt: w.startTime.toISOString(),
    ...(listing ? { listing } : {}),
  };
}

function quote(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '');
}
