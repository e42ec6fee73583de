import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AlertBatch } from '../domain/alert-mapping.ts';
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
import type { Policy } from '../domain/policy.ts';
import type { Impact, Severity } from '../domain/severity.ts';

export * from './search-attributes.ts';

/**
 * Every message the incident workflow understands, shared by the worker, the
 * API and the CLI. Signals are what Alertmanager and engineers without our
 * tools send (web UI signal dialog, `temporal workflow signal`): an invalid
 * one is recorded as `rejected` in the timeline. Updates are what our CLI and
 * API use: their validators refuse bad input before it enters history.
 */

export const INCIDENT_WORKFLOW_TYPE = 'incidentWorkflow';

/** How an incident begins: from an Alertmanager group (alerts arrive by signal) or declared by an engineer. */
export interface IncidentInput {
  incidentId: string;
  policy: Policy;
  /** Set for a declared incident; alert-born incidents take their seed from the first alert batch. */
  declared?: {
    by: string;
    title: string;
    severity: Severity;
    service?: string;
    impact?: Impact;
    securityRelated?: boolean;
    summary?: string;
  };
  previousIncidentId?: string;
  /** Alert batches that arrived after the previous incident of this group was resolved: they open this one. */
  pendingBatches?: AlertBatch[];
  /** History length after which the run continues as new (tests force a small value). */
  continueAsNewAfterEvents?: number;
  /** Carried over by continue-as-new. */
  carried?: { state: IncidentState; runtime: unknown };
}

export const alertsReceivedSignal = defineSignal<[AlertBatch]>('alertsReceived');
export const acknowledgeSignal = defineSignal<[AcknowledgeInput]>('acknowledge');
export const postUpdateSignal = defineSignal<[PostUpdateInput]>('postUpdate');
export const escalateSignal = defineSignal<[EscalateInput]>('escalate');
export const resolveSignal = defineSignal<[ResolveInput]>('resolve');

export const acknowledgeUpdate = defineUpdate<IncidentState, [AcknowledgeInput]>('acknowledge');
export const postUpdateUpdate = defineUpdate<IncidentState, [PostUpdateInput]>('postUpdate');
export const escalateUpdate = defineUpdate<IncidentState, [EscalateInput]>('escalate');
export const changeSeverityUpdate = defineUpdate<IncidentState, [ChangeSeverityInput]>('changeSeverity');
export const assignCommanderUpdate = defineUpdate<IncidentState, [AssignCommanderInput]>('assignCommander');
export const recordSecurityEvaluationUpdate = defineUpdate<IncidentState, [SecurityEvaluationInput]>(
  'recordSecurityEvaluation',
);
export const mitigateUpdate = defineUpdate<IncidentState, [MitigateInput]>('mitigate');
export const resolveUpdate = defineUpdate<IncidentState, [ResolveInput]>('resolve');

export const stateQuery = defineQuery<IncidentState>('state');
