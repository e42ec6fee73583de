import type { AlertRecord } from './alert-mapping.ts';
import type { IncidentRecordState } from './incident-record.ts';
import type { PlaybookRecord, PlaybookStep } from './playbook.ts';
import type { Channel, Impact, Role, Severity } from './severity.ts';

/**
 * What a run answers (a refusal, the `state` query's failure) before its incident has opened: the first
 * moments of a run that obtains its policy by hash. Transient: readers ask again.
 */
export const NOT_OPENED_YET = 'the incident has not opened yet';

export type IncidentStatus = 'triggered' | 'acknowledged' | 'mitigated' | 'resolved';

export const TIMELINE_KINDS = [
  'opened',
  'alert',
  'alert_resolved',
  'notified',
  'notification_failed',
  'acknowledged',
  'update',
  'escalated',
  'severity_changed',
  'impact_changed',
  'commander',
  'security_evaluation',
  'playbook_step',
  'mitigated',
  'reopened',
  'resolved',
  'rejected',
  'reminder',
  'paging_suppressed',
  /** The run's policy (by hash) was not found: it runs on the worker's current policy (src/policy-snapshots.ts). */
  'policy_not_found',
] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  actor: string;
  message: string;
}

export interface NotifiedEntry {
  who: string | null;
  role: Role | null;
  level: number;
  at: string;
  channels: Channel[];
  reason: string;
  /** Channels not used because the service was in a maintenance window. */
  suppressed?: Channel[];
}

export interface SecurityEvaluation {
  by: string;
  at: string;
  finding: string;
  related: boolean;
}

/**
 * The incident as engineers, the API, the CLI and the web UI see it. Plain
 * JSON: it is the workflow's `state` query result and its continue-as-new
 * carry-over, so nothing here may be a class or a Map.
 */
export interface IncidentState {
  id: string;
  workflowId: string;
  title: string;
  service: string;
  summary: string;
  severity: Severity;
  impact: Impact;
  securityRelated: boolean;
  status: IncidentStatus;
  createdAt: string;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  mitigatedAt?: string;
  resolvedAt?: string;
  resolvedBy?: string;
  rootCause?: string;
  prevention?: string;
  commander?: string;
  securityEvaluation?: SecurityEvaluation;
  escalationLevel: number;
  /** The alert-mapping rule that shaped this incident (`default` when none matched; `declared` for declared ones). */
  mappingRule: string;
  /**
   * The remediation playbook: the mapping's choice or an engineer's, its run (a child workflow), its steps
   * and outcome. `selected` when it was not started (incidents from before playbooks ran, the kill switch).
   */
  playbook?: PlaybookRecord;
  /** The initial investigation of an incident with no playbook (recent rollouts, related alerts, pods). */
  investigation?: { runId: string; status: 'running' | 'completed'; summary?: string; steps: PlaybookStep[] };
  notified: NotifiedEntry[];
  alerts: AlertRecord[];
  truncatedAlerts: number;
  source: { kind: 'alertmanager'; receiver: string; groupKey: string } | { kind: 'declared'; by: string };
  lastUpdateAt?: string;
  actionsTaken: string[];
  /** Updates an engineer marked public: what the status page shows, newest last. */
  publicUpdates: { at: string; message: string; eta?: string }[];
  nextUpdateDue?: string;
  /** Status to return to when a mitigated incident's alerts fire again. */
  statusBeforeMitigation?: 'triggered' | 'acknowledged';
  postmortemRequired: boolean;
  previousIncidentId?: string;
  /** The maintenance window the service was in when the incident opened: paging is suppressed. */
  maintenance?: { id: string; reason: string; until: string };
  /** Where the incident lives in Slack: its thread per channel (first report's ts) and its own channel. */
  slack?: { threads: Record<string, string>; room?: { id?: string; name: string } };
  timeline: TimelineEntry[];
  /**
   * Bounded runs (src/domain/incident-record.ts): `alerts`, `timeline`, `actionsTaken` and `publicUpdates`
   * then hold the latest entries only; these are the counts of everything and every alert's status. Absent
   * in incidents whose run keeps everything (older runs).
   */
  record?: IncidentRecordState;
}
