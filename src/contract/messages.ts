import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { PlaybookEnvironment } from '../domain/cluster.ts';
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

/** A policy by content: the sha256 (hex) of the canonical JSON of the policy without contacts (src/policy-snapshots.ts). */
export interface PolicyRef {
  hash: string;
}

/**
 * How an incident begins: from an Alertmanager group (alerts arrive by signal) or declared by an engineer.
 * A new start names its policy by hash (`policyRef`), and the run obtains the policy once, at its start
 * (the `incidentPolicy` local activity). A run carries the policy itself (`policy`) when it continues as
 * new, and runs started before policy references carried it too: whenever `policy` is present it is what
 * the run uses, and no activity is called.
 */
export type IncidentInput = LifecycleInput & {
  /** History length after which the run continues as new (tests force a small value). */
  continueAsNewAfterEvents?: number;
} & ({ policy: Policy; policyRef?: PolicyRef } | { policy?: undefined; policyRef: PolicyRef });

/** The policy an incident runs on, as the worker found it for the run's `policyRef`. */
export interface ObtainedPolicy {
  /** Without contacts (src/domain/workflow-policy.ts). */
  policy: Policy;
  /** The hash of `policy`. */
  hash: string;
  /** Set when the requested policy was not found: `policy` is then the worker's current policy. */
  missing?: { requested: string; reason: string };
  /**
   * Asked for with `previousOf`: the incident id of the newest closed run of that workflow id other than that
   * run (a group that fires again after its incident was resolved), when there is one.
   */
  previousIncidentId?: string;
  /** Asked for with `environment`: what the worker's playbooks can read (no cluster, no Prometheus…). */
  playbookEnvironment?: PlaybookEnvironment;
}

export const alertsReceivedSignal = defineSignal<[AlertBatch]>('alertsReceived');
export const stateQuery = defineQuery<IncidentState>('state');
export { NOT_OPENED_YET } from '../domain/incident.ts';
