import { createHash } from 'node:crypto';

/*
 * The workflow ids incidents run under. Not imported by workflow code (it
 * hashes with Node's crypto): workflows read their id from `workflowInfo()`.
 */

/**
 * An Alertmanager group's workflow id: deterministic in receiver + groupKey,
 * so redeliveries and storms of the same group land in one workflow.
 */
export function alertGroupWorkflowId(receiver: string, groupKey: string): string {
  const digest = createHash('sha256').update(`${receiver}\n${groupKey}`).digest('hex').slice(0, 32);
  return `alertgroup-${digest}`;
}

/** The workflow id of an incident an engineer declared. */
export function declaredWorkflowId(incidentId: string): string {
  return `declared-${incidentId}`;
}
