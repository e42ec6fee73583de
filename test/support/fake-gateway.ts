import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import type {
  DeclareInput,
  IncidentGateway,
  IncidentSummary,
  IngestResult,
  ListedIncident,
  Readiness,
  WorkerHealth,
} from '../../src/starter/client/incidents.ts';
import { listingOf } from '../../src/contract/listing.ts';
import type { OperationName } from '../../src/domain/operations.ts';
import { IncidentNotFoundError, IncidentRefusedError } from '../../src/starter/client/incidents.ts';
import { alertBatchWorkflowId } from '../../src/contract/workflow-ids.ts';

/** An in-memory IncidentGateway that records what the API asked of Temporal. */
export class FakeGateway implements IncidentGateway {
  readonly batches: AlertBatch[] = [];
  readonly operations: { id: string; operation: OperationName; argument: object }[] = [];
  readonly declared: DeclareInput[] = [];
  failWith: Error | undefined;
  /** Incidents that list/get/operate know; operate refuses on an unknown id only when this has some. */
  readonly incidents = new Map<string, IncidentState>();
  /** The workflow validator's answer to an operation: a refusal reason, or undefined to accept it. */
  refuse: ((id: string, operation: OperationName, argument: object) => string | undefined) | undefined;
  ready: Readiness = { temporal: true };
  workers: WorkerHealth = { taskQueue: 'incident-response', polling: true, workers: 1 };
  /** Every `getIncident` asked (a workflow query or result in the real gateway). */
  readonly queried: string[] = [];
  /** Incidents whose run has no listing memo (began before it): visibility knows only their attributes. */
  readonly withoutListing = new Set<string>();
  private readonly groups = new Map<string, string>();

  ingestAlerts(batch: AlertBatch): Promise<IngestResult> {
    if (this.failWith) return Promise.reject(this.failWith);
    this.batches.push(batch);
    const workflowId = alertBatchWorkflowId(batch);
    const known = this.groups.get(workflowId);
    if (known) return Promise.resolve({ id: known, workflowId, action: 'signalled' });
    if (!batch.alerts.some((a) => a.status === 'firing')) {
      return Promise.resolve({ id: null, workflowId, action: 'ignored' });
    }
    const id = `INC-${this.groups.size.toString(16).padStart(8, '0')}`;
    this.groups.set(workflowId, id);
    return Promise.resolve({ id, workflowId, action: 'started' });
  }
  listIncidents(): Promise<IncidentSummary[]> {
    return Promise.resolve(
      [...this.incidents.values()]
        .map(({ id, workflowId, title, service, severity, status, createdAt }) => ({
          id,
          workflowId,
          title,
          service,
          severity,
          status,
          createdAt,
        }))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
    );
  }
  listRecent(closedSince: Date): Promise<ListedIncident[]> {
    return this.listIncidents().then((summaries) =>
      summaries.flatMap((summary) => {
        const state = this.incidents.get(summary.id);
        if (!state) return [];
        if (state.status === 'resolved' && Date.parse(state.resolvedAt ?? '') < closedSince.getTime())
          return [];
        return [{ ...summary, ...(this.withoutListing.has(state.id) ? {} : { listing: listingOf(state) }) }];
      }),
    );
  }
  getIncident(id: string): Promise<IncidentState> {
    this.queried.push(id);
    const state = this.incidents.get(id);
    return state ? Promise.resolve(state) : Promise.reject(new IncidentNotFoundError(id));
  }
  declare(input: DeclareInput): Promise<IncidentState> {
    this.declared.push(input);
    return Promise.resolve({ id: 'INC-00000000' } as IncidentState);
  }
  operate(id: string, operation: OperationName, argument: object): Promise<IncidentState> {
    if (this.failWith) return Promise.reject(this.failWith);
    if (this.incidents.size > 0 && !this.incidents.has(id))
      return Promise.reject(new IncidentNotFoundError(id));
    const refusal = this.refuse?.(id, operation, argument);
    if (refusal !== undefined) return Promise.reject(new IncidentRefusedError(refusal));
    this.operations.push({ id, operation, argument });
    return Promise.resolve(this.incidents.get(id) ?? ({ id } as IncidentState));
  }
  readiness() {
    return Promise.resolve(this.ready);
  }
  workerHealth() {
    return Promise.resolve(this.workers);
  }
}
