import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client, WorkflowClient } from '@temporalio/client';
import { encodeToPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
import proto from '@temporalio/proto';
import type { AlertBatch } from '../../domain/alert-mapping.ts';
import type { IncidentState } from '../../domain/incident.ts';
import type { Severity } from '../../domain/severity.ts';
import {
  INCIDENT_WORKFLOW_TYPE,
  alertsReceivedSignal,
  searchAttributesOf,
  NOT_OPENED_YET,
  stateQuery,
} from '../../contract/messages.ts';
import { incidentIdFrom, isIncidentId } from '../../contract/incident-id.ts';
import type { IncidentInput } from '../../contract/messages.ts';

// @temporalio/proto is CommonJS: Node's ESM loader only sees its default export.
const { temporal } = proto;

/** A fresh incident id: `INC-` and 8 hex characters. */
export function newIncidentId(): string {
  return incidentIdFrom(randomUUID());
}

export interface SignalWithStartResult {
  runId: string;
  /** True when this call started a new run, false when it signalled a running one. */
  started: boolean;
}

export interface StartSeed {
  incidentId: string;
  severity: Severity;
  service: string;
  /** The incident's title, e.g. `HighErrorRate on pno-physics-bench`. */
  summary: string;
}

/**
 * Signal-with-start of an alert group's incident. The SDK's own
 * `signalWithStart` drops the server's `started` flag, which the webhook needs
 * to say "started" or "signalled" without a second round trip, so this sends
 * the same request itself. One RPC per delivery either way.
 */
export async function signalWithStartIncident(
  client: Client,
  taskQueue: string,
  workflowId: string,
  input: IncidentInput,
  seed: StartSeed,
  batch: AlertBatch,
): Promise<SignalWithStartResult> {
  const converter = client.options.loadedDataConverter;
  const searchAttributes = encodeUnifiedSearchAttributes(
    undefined,
    searchAttributesOf({
      id: seed.incidentId,
      severity: seed.severity,
      status: 'triggered',
      service: seed.service,
      escalationLevel: 0,
    }),
  );
  const summary = (await encodeToPayloads(converter, `${seed.severity} ${seed.summary}`))?.[0];
  const response = await client.workflowService.signalWithStartWorkflowExecution({
    namespace: client.options.namespace,
    identity: client.options.identity,
    requestId: randomUUID(),
    workflowId,
    workflowType: { name: INCIDENT_WORKFLOW_TYPE },
    taskQueue: { kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL, name: taskQueue },
    input: { payloads: await encodeToPayloads(converter, input) },
    signalName: alertsReceivedSignal.name,
    signalInput: { payloads: await encodeToPayloads(converter, batch) },
    workflowIdReusePolicy:
      temporal.api.enums.v1.WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
    workflowIdConflictPolicy:
      temporal.api.enums.v1.WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
    searchAttributes: { indexedFields: searchAttributes },
    userMetadata: summary ? { summary } : undefined,
    memo: { fields: { title: (await encodeToPayloads(converter, seed.summary))?.[0] ?? {} } },
  });
  return { runId: response.runId, started: response.started === true };
}

/** Finds an incident's workflow by its id (search attribute), newest run first. */
export async function findIncidentWorkflow(
  workflow: WorkflowClient,
  incidentId: string,
): Promise<{ workflowId: string; runId: string; status: string } | undefined> {
  if (!isIncidentId(incidentId)) return undefined;
  // Several runs carry the id when a long incident continued as new: the newest one is the incident now.
  let newest: { workflowId: string; runId: string; status: string; started: number } | undefined;
  for await (const execution of workflow.list({ query: `IncidentId = '${incidentId}'`, pageSize: 100 })) {
    const started = execution.startTime.getTime();
    if (!newest || started > newest.started) {
      newest = {
        workflowId: execution.workflowId,
        runId: execution.runId,
        status: execution.status.name,
        started,
      };
    }
  }
  return newest && { workflowId: newest.workflowId, runId: newest.runId, status: newest.status };
}

/** The incident's state: the live `state` query while it runs, its result once it closed. */
export async function readIncidentState(
  workflow: WorkflowClient,
  ref: { workflowId: string; runId?: string; status?: string },
): Promise<IncidentState> {
  const handle = workflow.getHandle(ref.workflowId, ref.runId);
  const status = ref.status ?? (await handle.describe()).status.name;
  if (status === 'COMPLETED') return (await handle.result()) as IncidentState;
  // Running, or a run that continued as new (a long incident, or one resolved just before its group fired
  // again): the run's own state, replayed by a worker when it is closed. A run in its first moments (obtaining
  // its policy) has no state yet: asked again for a few seconds.
  for (let attempt = 0; ; attempt++) {
    try {
      return await handle.query(stateQuery);
    } catch (err) {
      const opening = err instanceof Error && `${err.message} ${String(err.cause)}`.includes(NOT_OPENED_YET);
      if (!opening || attempt >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export { WorkflowNotFoundError };
