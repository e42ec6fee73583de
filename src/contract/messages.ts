import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AlertBatch } from '../domain/alert-mapping.ts';
import type { IncidentState } from '../domain/incident.ts';
import type { LifecycleInput } from '../domain/lifecycle.ts';
import type { Policy } from '../domain/policy.ts';

export * from './search-attributes.ts';
export * from './operations.ts';

/**
 * Every message the incident workflow understands, shared by the worker, the
 * API and the CLI. Signals are what Alertmanager and engineers without our
 * tools send (web UI signal dialog, `temporal workflow signal`): an invalid
 * one is recorded as `rejected` in the timeline. Updates are what our CLI and
 * API use: their validators refuse bad input before it enters history. The
 * engineer operations are in `operations.ts`.
 */

export const INCIDENT_WORKFLOW_TYPE = 'incidentWorkflow';

/** How an incident begins: from an Alertmanager group (alerts arrive by signal) or declared by an engineer. */
export interface IncidentInput extends LifecycleInput {
  policy: Policy;
  /** History length after which the run continues as new (tests force a small value). */
  continueAsNewAfterEvents?: number;
}

export const alertsReceivedSignal = defineSignal<[AlertBatch]>('alertsReceived');
export const stateQuery = defineQuery<IncidentState>('state');
