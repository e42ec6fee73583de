import { ApplicationFailure, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { AlertBatch } from '../../domain/alert-mapping.ts';
import { seedIncident, splitAlertBatch } from '../../domain/alert-mapping.ts';
import type { IncidentState, IncidentStatus } from '../../domain/incident.ts';
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
import type { IncidentInput, OperationArgs } from '../../contract/messages.ts';
import { alertBatchWorkflowId, declaredWorkflowId } from '../../contract/workflow-ids.ts';
import {
  findIncidentWorkflow,
  newIncidentId,
  readIncidentState,
  signalWithStartIncident,
} from './temporal.ts';
import { IncidentForbiddenError, IncidentNotFoundError, IncidentRefusedError } from './errors.ts';
import { TemporalMaintenance } from './maintenance.ts';
import type { MaintenanceLookup } from './maintenance.ts';

export { IncidentForbiddenError, IncidentNotFoundError, IncidentRefusedError };

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
  getIncident(id: string): Promise<IncidentState>;
  declare(input: DeclareInput): Promise<IncidentState>;
  operate<K extends OperationName>(
    id: string,
    operation: K,
    argument: OperationArgs<K>,
  ): Promise<IncidentState>;
  readiness(): Promise<{ temporal: boolean; workerPolling: boolean; error?: string }>;
}

const RUN_CACHE_LIMIT = 10_000;

/**
 * The most one alert signal carries (JSON bytes): Temporal refuses a payload over 2 MB and warns over 512 KiB,
 * so a larger group is sent as several signals (`splitAlertBatch`).
 */
export const SIGNAL_MAX_BYTES = 512 * 1024;

export interface TemporalIncidentsOptions {
  deadlines?: { ingestMs: number; readinessMs: number };
  /**
   * Which maintenance window covers a new incident's service (paging suppressed); default: the policy's
   * and the operators' windows through Temporal. It never throws: a store that is down means no window.
   */
  maintenance?: MaintenanceLookup;
}

export class TemporalIncidents implements IncidentGateway {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly policy: Policy;
  /** runId → incident id: a signalled run's id without asking the server again. */
  private readonly runIncident = new Map<string, string>();

  private readonly deadlines: { ingestMs: number; readinessMs: number };
  private readonly maintenance: MaintenanceLookup;

  /**
   * `deadlines` bound each call so that an unreachable Temporal answers a quick
   * 503 instead of the SDK's default retries of about 20 s: Alertmanager gives
   * up on a request after its own timeout, and readiness probes after a second.
   */
  constructor(client: Client, taskQueue: string, policy: Policy, options: TemporalIncidentsOptions = {}) {
    this.client = client;
    this.taskQueue = taskQueue;
    this.policy = policy;
    this.deadlines = options.deadlines ?? { ingestMs: 5_000, readinessMs: 2_000 };
    this.maintenance = options.maintenance ?? new TemporalMaintenance(client, taskQueue, policy);
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
    const input: IncidentInput = { incidentId, policy: this.policy, ...(maintenance ? { maintenance } : {}) };
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

  async listIncidents(filter: { status?: string; severity?: string } = {}): Promise<IncidentSummary[]> {
    const clauses = [`WorkflowType = '${INCIDENT_WORKFLOW_TYPE}'`];
    if (filter.status) clauses.push(`IncidentStatus = '${quote(filter.status)}'`);
    if (filter.severity) clauses.push(`IncidentSeverity = '${quote(filter.severity)}'`);
    // A long incident spans several runs (continue-as-new): one entry per incident, from its newest run,
    // dated by its first.
    const incidents = new Map<string, IncidentSummary & { latestStart: number }>();
    for await (const w of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: 200 })) {
      const attrs = w.typedSearchAttributes;
      const id = attrs.get(IncidentIdAttribute);
      if (!id) continue;
      const started = w.startTime.getTime();
      const known = incidents.get(id);
      const createdAt =
        known && known.createdAt < w.startTime.toISOString() ? known.createdAt : w.startTime.toISOString();
      if (known && known.latestStart > started) {
        known.createdAt = createdAt;
        continue;
      }
      incidents.set(id, {
        id,
        workflowId: w.workflowId,
        title: typeof w.memo?.['title'] === 'string' ? w.memo['title'] : id,
        service: attrs.get(IncidentServiceAttribute) ?? '',
        severity: (attrs.get(IncidentSeverityAttribute) ?? 'P2') as Severity,
        status: (attrs.get(IncidentStatusAttribute) ?? 'triggered') as IncidentStatus,
        createdAt,
        latestStart: started,
      });
    }
    return [...incidents.values()]
      .map(({ latestStart: _latest, ...summary }) => summary)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async getIncident(id: string): Promise<IncidentState> {
    const found = await findIncidentWorkflow(this.client.workflow, id);
    if (!found) throw new IncidentNotFoundError(id);
    return readIncidentState(this.client.workflow, found);
  }

  async declare(input: DeclareInput): Promise<IncidentState> {
    const incidentId = newIncidentId();
    const service = input.service ?? this.policy.service.id;
    const maintenance = await this.maintenance.activeFor(service, Date.now());
    const handle = await this.client.workflow.start(INCIDENT_WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: declaredWorkflowId(incidentId),
      args: [
        {
          incidentId,
          policy: this.policy,
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
    return readIncidentState(this.client.workflow, { workflowId: handle.workflowId, status: 'RUNNING' });
  }

  async operate<K extends OperationName>(
    id: string,
    operation: K,
    argument: OperationArgs<K>,
  ): Promise<IncidentState> {
    const found = await findIncidentWorkflow(this.client.workflow, id);
    if (!found) throw new IncidentNotFoundError(id);
    if (found.status !== 'RUNNING')
      throw new IncidentRefusedError(`incident ${id} is closed (${found.status.toLowerCase()})`);
    try {
      return await this.client.workflow
        .getHandle(found.workflowId)
        .executeUpdate(OPERATIONS[operation].update, { args: [argument] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        const message = err.cause instanceof Error ? err.cause.message : err.message;
        const forbidden =
          err.cause instanceof ApplicationFailure && err.cause.type === REFUSAL_FAILURE_TYPES.forbidden;
        throw forbidden ? new IncidentForbiddenError(message) : new IncidentRefusedError(message);
      }
      throw err;
    }
  }

  async readiness(): Promise<{ temporal: boolean; workerPolling: boolean; error?: string }> {
    try {
      const response = await this.client.withDeadline(Date.now() + this.deadlines.readinessMs, () =>
        this.client.workflowService.describeTaskQueue({
          namespace: this.client.options.namespace,
          taskQueue: { name: this.taskQueue, kind: 1 },
          taskQueueType: 1, // workflow pollers: a worker that runs incidents
        }),
      );
      return { temporal: true, workerPolling: (response.pollers?.length ?? 0) > 0 };
    } catch (err) {
      return { temporal: false, workerPolling: false, error: (err as Error).message };
    }
  }
}

function quote(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '');
}
