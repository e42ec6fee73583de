import { defineQuery, defineSignal } from '@temporalio/workflow';
import type {
  ApprovalDecision,
  InvestigationResult,
  PlaybookName,
  PlaybookResult,
  PlaybookStep,
  PlaybookStepReport,
} from '../domain/playbook.ts';

export { investigationRunId, playbookRunId } from '../domain/playbook.ts';
export type { PlaybookStepReport } from '../domain/playbook.ts';

/**
 * What an incident and its playbook runs (child workflows) say to each other. A run reports each step
 * and its outcome to the incident by signal, addressed by workflow id only, so the reports reach the
 * incident's current run even after it continued as new; the incident forwards an engineer's approval to
 * the run. Engineers never talk to a run directly: they act on the incident (`runPlaybook`,
 * `cancelPlaybook`, `approveAction` in the operation table), whose validators check them.
 */

/** The workflow type of each playbook (the function names exported by src/workflows). */
export const PLAYBOOK_WORKFLOW_TYPES: Readonly<Record<PlaybookName, string>> = {
  serviceOutage: 'serviceOutagePlaybook',
  highErrorRate: 'highErrorRatePlaybook',
  performanceDegradation: 'performanceDegradationPlaybook',
};
export const INVESTIGATION_WORKFLOW_TYPE = 'initialInvestigation';

export const playbookStepSignal = defineSignal<[PlaybookStepReport]>('playbookStep');
/** Steps in a batch: runs report before each wait and with their outcome, not one signal a step. */
export const playbookStepsSignal = defineSignal<[PlaybookStepReport[]]>('playbookSteps');
export const playbookFinishedSignal = defineSignal<[PlaybookResult]>('playbookFinished');
export const investigationFinishedSignal = defineSignal<[InvestigationResult]>('investigationFinished');
/** Sent by the incident to its run: an engineer's answer to the pending approval. */
export const approvalSignal = defineSignal<[ApprovalDecision]>('approval');
/** A run's steps so far (the web UI's query tab). */
export const playbookStepsQuery = defineQuery<PlaybookStep[]>('steps');
