import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Policy } from '../domain/policy.ts';
import type { Severity } from '../domain/severity.ts';

/**
 * The alerting pipeline's dead-man's switch. Prometheus fires an alert that never stops (`Watchdog`,
 * `expr: vector(1)`), Alertmanager routes it to the webhook and repeats it; the webhook recognises it by the
 * policy's `watchdog.alertname` and, instead of opening an incident, signals-with-start one long-running
 * watchdog workflow per Alertmanager receiver (`watchdogWorkflowId`). When no heartbeat arrives for the
 * policy's `watchdog.timeout`, the watchdog opens an incident: whatever broke (Prometheus, Alertmanager,
 * their routing, the network to the webhook), alerts no longer reach anyone.
 */

export const WATCHDOG_WORKFLOW_TYPE = 'watchdogWorkflow';

/** What the policy's `watchdog` section says, as the API read it when it sent a heartbeat. */
export interface WatchdogSettings {
  alertname: string;
  timeoutMs: number;
  severity: Severity;
}

/** One delivery that carried Watchdog alerts. */
export interface WatchdogHeartbeat {
  receiver: string;
  /** When the API received it (ISO), for the record; the workflow dates heartbeats by its own clock. */
  receivedAt: string;
  /** How many firing Watchdog alerts it carried (Prometheus servers in HA pairs each send one). */
  alerts: number;
  settings: WatchdogSettings;
  /**
   * The API's policy, sent with the first heartbeat an API process sends to a watchdog (and in the start
   * input): the incident a running watchdog opens follows the policy as deployed, not as it was when the
   * watchdog first started, without the whole policy in every heartbeat's history.
   */
  policy?: Policy;
}

export interface WatchdogIncidentRef {
  id: string;
  workflowId: string;
  openedAt: string;
  /** Set once the incident was found closed (a signal to it failed): the next silence opens a new one. */
  closed?: boolean;
}

export type WatchdogEventKind = 'started' | 'silent' | 'incident_opened' | 'incident_signalled' | 'resumed';

export interface WatchdogEvent {
  at: string;
  kind: WatchdogEventKind;
  message: string;
}

/** What the watchdog knows (the `watchdogState` query, and what continue-as-new carries). */
export interface WatchdogState {
  receiver: string;
  /** `alive`: heartbeats arrive within the timeout; `silent`: the last one is older than the timeout. */
  status: 'alive' | 'silent';
  startedAt: string;
  lastHeartbeatAt?: string;
  /** Heartbeats since the watchdog first started (all runs). */
  heartbeats: number;
  /** When the current silence began (the last heartbeat before it), while silent. */
  silentSince?: string;
  /** When it will be declared silent if nothing arrives (while alive). */
  silentAt?: string;
  /** The last incident the watchdog opened. */
  incident?: WatchdogIncidentRef;
  /**
   * While silent: opening the silence's incident failed and is tried again every minute. Part of the state so
   * that a run continuing as new meanwhile keeps trying (absent in states carried before it was kept here).
   */
  incidentPending?: boolean;
  settings: WatchdogSettings;
  /** The last {@link WATCHDOG_EVENTS_KEPT} changes, oldest first. */
  events: WatchdogEvent[];
}

export const WATCHDOG_EVENTS_KEPT = 50;

export interface WatchdogInput {
  receiver: string;
  settings: WatchdogSettings;
  policy: Policy;
  /** Carried over by continue-as-new. */
  carried?: WatchdogState;
  /** Heartbeats after which a run continues as new (bounded history; tests force a small value). */
  continueAsNewAfterHeartbeats?: number;
}

export const watchdogHeartbeatSignal = defineSignal<[WatchdogHeartbeat]>('watchdogHeartbeat');
export const watchdogStateQuery = defineQuery<WatchdogState>('watchdogState');

/** The alert the watchdog's incident records: firing while the pipeline is silent, resolved when it is back. */
export const SILENCE_ALERTNAME = 'AlertingPipelineSilent';
