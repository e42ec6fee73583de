import type { AlertRecord, PlaybookName } from './alert-mapping.ts';
import type { Policy } from './policy.ts';
import type { Channel, Impact, Role, Severity } from './severity.ts';

/**
 * The incident as engineers, the API, the CLI and the web UI see it. Plain
 * JSON: it is the workflow's `state` query result and its continue-as-new
 * carry-over, so nothing here may be a class or a Map.
 */
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
}

export interface SecurityEvaluation {
  by: string;
  at: string;
  finding: string;
  related: boolean;
}

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
  /** The remediation playbook the mapping selected; it runs once playbooks exist (`selected` until then). */
  playbook?: { name: PlaybookName; status: 'selected'; steps: string[] };
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
  timeline: TimelineEntry[];
}

/** Everything an engineer can ask of an incident (also the signals' and updates' arguments). */
export interface AcknowledgeInput {
  by: string;
}
export interface PostUpdateInput {
  by: string;
  message: string;
  actions?: string[];
  focus?: string;
  eta?: string;
  public?: boolean;
}
export interface EscalateInput {
  by: string;
  reason: string;
}
export interface ChangeSeverityInput {
  by: string;
  severity: Severity;
  reason?: string;
}
export interface AssignCommanderInput {
  by: string;
  commander: string;
}
export interface SecurityEvaluationInput {
  by: string;
  finding: string;
  related: boolean;
}
export interface MitigateInput {
  by: string;
  note?: string;
}
export interface ResolveInput {
  by: string;
  rootCause: string;
  prevention?: string;
}

/** Why an engineer's request is refused, or undefined when it is allowed. */
export type Refusal = string | undefined;

function knownPerson(policy: Policy, by: unknown): Refusal {
  if (typeof by !== 'string' || by === '') return 'the acting engineer ("by") is required';
  return by in policy.people ? undefined : `unknown engineer "${by}": not a person in the policy`;
}

function open(state: IncidentState): Refusal {
  return state.status === 'resolved' ? `incident ${state.id} is already resolved` : undefined;
}

function text(value: unknown, field: string, max = 10_000): Refusal {
  if (typeof value !== 'string' || value.trim() === '') return `${field} is required`;
  return value.length > max ? `${field} is longer than ${max} characters` : undefined;
}

export function refuseAcknowledge(policy: Policy, state: IncidentState, input: AcknowledgeInput): Refusal {
  return (
    knownPerson(policy, input?.by) ??
    open(state) ??
    (state.acknowledgedAt !== undefined
      ? `incident ${state.id} was already acknowledged by ${state.acknowledgedBy ?? 'someone'}`
      : undefined)
  );
}

export function refusePostUpdate(policy: Policy, state: IncidentState, input: PostUpdateInput): Refusal {
  return (
    knownPerson(policy, input?.by) ??
    open(state) ??
    text(input.message, 'message') ??
    (input.actions !== undefined &&
    !(Array.isArray(input.actions) && input.actions.every((a) => typeof a === 'string'))
      ? 'actions must be a list of strings'
      : undefined)
  );
}

export function refuseEscalate(policy: Policy, state: IncidentState, input: EscalateInput): Refusal {
  return knownPerson(policy, input?.by) ?? open(state) ?? text(input.reason, 'reason');
}

export function refuseChangeSeverity(
  policy: Policy,
  state: IncidentState,
  input: ChangeSeverityInput,
): Refusal {
  if (!['P0', 'P1', 'P2', 'P3'].includes(input?.severity)) return 'severity must be one of P0, P1, P2, P3';
  return (
    knownPerson(policy, input.by) ??
    open(state) ??
    (input.severity === state.severity ? `incident ${state.id} is already ${state.severity}` : undefined)
  );
}

export function refuseAssignCommander(
  policy: Policy,
  state: IncidentState,
  input: AssignCommanderInput,
): Refusal {
  return (
    knownPerson(policy, input?.by) ??
    open(state) ??
    (typeof input.commander === 'string' && input.commander in policy.people
      ? undefined
      : `unknown commander "${String(input.commander)}": not a person in the policy`)
  );
}

export function refuseSecurityEvaluation(
  policy: Policy,
  state: IncidentState,
  input: SecurityEvaluationInput,
): Refusal {
  return (
    knownPerson(policy, input?.by) ??
    open(state) ??
    text(input.finding, 'finding') ??
    (typeof input.related === 'boolean' ? undefined : 'related must be true or false')
  );
}

export function refuseMitigate(policy: Policy, state: IncidentState, input: MitigateInput): Refusal {
  return (
    knownPerson(policy, input?.by) ??
    open(state) ??
    (state.status === 'mitigated' ? `incident ${state.id} is already mitigated` : undefined)
  );
}

export function refuseResolve(policy: Policy, state: IncidentState, input: ResolveInput): Refusal {
  const basic = knownPerson(policy, input?.by) ?? open(state) ?? text(input.rootCause, 'rootCause');
  if (basic) return basic;
  const rule = policy.escalation.rules[state.severity];
  if (rule?.commanderRequired && state.commander === undefined) {
    return `a ${state.severity} incident needs an incident commander before it is resolved (incident commander <id> <person>)`;
  }
  if (rule?.securityEvaluationRequired && state.securityEvaluation === undefined) {
    return `a ${state.severity} incident needs a security evaluation before it is resolved (incident security <id> --finding <text>)`;
  }
  return undefined;
}

/** The state's values for the procedures' templates. */
export function templateValuesOf(policy: Policy, state: IncidentState): Record<string, string | undefined> {
  return {
    incident_id: state.id,
    title: state.title,
    severity: state.severity,
    status: state.status,
    current_status: state.status,
    service_name: policy.service.name,
    incident_time: state.createdAt,
    impact_description: `${state.impact} business impact: ${state.summary}`,
    affected_systems: state.service,
    initial_findings: state.summary,
    incident_commander: state.commander ?? 'unassigned',
    next_update_time: state.nextUpdateDue,
    incident_thread_link: incidentLink(policy, state),
    how_to_act: `incident ack ${state.id} · incident show ${state.id} · ${incidentLink(policy, state)}`,
  };
}

/** The web UI page of the incident's workflow. */
export function incidentLink(policy: Policy, state: Pick<IncidentState, 'workflowId'>): string {
  return `${policy.links.webUi.replace(/\/$/, '')}/namespaces/default/workflows/${encodeURIComponent(state.workflowId)}`;
}
