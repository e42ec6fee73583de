import { createHash } from 'node:crypto';
import type { AlertBatch } from '../domain/alert-mapping.ts';

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

/**
 * A batch's workflow id: from the receiver and group key as they were sent (`identity`, when ingestion had to
 * cut the stored ones), so two long group keys that share their first 8 KiB are still two incidents.
 */
export function alertBatchWorkflowId(batch: Pick<AlertBatch, 'receiver' | 'groupKey' | 'identity'>): string {
  const { receiver, groupKey } = batch.identity ?? batch;
  return alertGroupWorkflowId(receiver, groupKey);
}

/** The workflow id of an incident an engineer declared. */
export function declaredWorkflowId(incidentId: string): string {
  return `declared-${incidentId}`;
}

/**
 * The watchdog workflow of an Alertmanager receiver (src/workflows/watchdog.ts): one per receiver, so every
 * delivery of its Watchdog alert lands in the same one. A receiver name that is not a short plain word is
 * hashed (receivers are free text).
 */
export function watchdogWorkflowId(receiver: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(receiver)) return `watchdog-${receiver}`;
  return `watchdog-${createHash('sha256').update(receiver).digest('hex').slice(0, 32)}`;
}
