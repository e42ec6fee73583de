import type { AlertBatch, AlertRecord, PlaybookName } from './alert-mapping.ts';
import { seedIncident } from './alert-mapping.ts';
import { responseDueAt } from './business-hours.ts';
import { dueEscalations, escalateNow, openEscalation } from './escalation.ts';
import type { EscalationState, IncidentFacts, Notification } from './escalation.ts';
import { NOT_OPENED_YET } from './incident.ts';
import type { IncidentState, TimelineKind } from './incident.ts';
import { FLAP_DAMPING_DEFAULT_MS, STATE_BOUNDS, recordOf, serialisedBytes } from './incident-record.ts';
import type { ArchivedEntry, IncidentRecordState, StateBounds } from './incident-record.ts';
import { formatDuration } from './duration.ts';
import {
  approvalNeededNotice,
  incidentLink,
  initialReport,
  investigationNotice,
  playbookOutcomeNotice,
  mitigatedNotice,
  notificationText,
  resolutionNotice,
  severityRaisedNotice,
  statusUpdateNotice,
  updateReminder,
} from './notices.ts';
import type { NoticeContext } from './notices.ts';
import { deliveryTimeline, learnFromDelivery, roomName } from './delivery.ts';
import type { Delivery, DeliveryResult, IncidentEventType, Outgoing } from './delivery.ts';
import { parseOperationInput, refusalOf } from './operations.ts';
import type {
  AcknowledgeInput,
  ApproveActionInput,
  CancelPlaybookInput,
  RunPlaybookInput,
  AssignCommanderInput,
  ChangeSeverityInput,
  EscalateInput,
  MitigateInput,
  OperationInput,
  OperationName,
  OperationRefusal,
  PostUpdateInput,
  Refusal,
  ResolveInput,
  SecurityEvaluationInput,
} from './operations.ts';
import type { Policy } from './policy.ts';
import { playbookSettings } from './playbook-settings.ts';
import { PLAYBOOK_ESCALATION, investigationRunId, playbookRunId, playbookTarget } from './playbook.ts';
import type {
  InvestigationResult,
  PendingApproval,
  PlaybookCommand,
  PlaybookResult,
  PlaybookStep,
} from './playbook.ts';
import type { Channel, Impact, Role, Severity } from './severity.ts';
import { moreSevere } from './severity.ts';
import { resolutionChannels, severityRules } from './severity-rules.ts';

/** What an engineer declares an incident with (`incident declare`, `POST /api/incidents`). */
export interface Declaration {
  by: string;
  title: string;
  severity: Severity;
  service?: string;
  impact?: Impact;
  securityRelated?: boolean;
}

/** A maintenance window as an incident records it. */
export interface MaintenanceWindowRef {
  id: string;
  reason: string;
  /** ISO end of the window. */
  until: string;
}

/** What the lifecycle starts from: a new incident (declared, or opened by its first alert batch) or a carried one. */
export interface LifecycleInput {
  incidentId: string;
  /** Set for a declared incident; alert-born incidents take their seed from the first alert batch. */
  declared?: Declaration & { summary?: string };
  previousIncidentId?: string;
  /**
   * The maintenance window the incident's service was in when it opened (decided by whoever started the
   * run, from the policy's and the operators' windows): paging is suppressed, everything else happens.
   */
  maintenance?: MaintenanceWindowRef;
  /** Alert batches that arrived after the previous incident of this group was resolved: they open this one. */
  pendingBatches?: AlertBatch[];
  /** Carried over by continue-as-new. */
  carried?: { state: IncidentState; runtime: unknown };
}

export type { Outgoing } from './delivery.ts';

/** Channels that wake someone up: what a maintenance window suppresses. */
const PAGING_CHANNELS: readonly Channel[] = ['pager', 'sms', 'phone'];

/** Runtime bookkeeping carried across continue-as-new next to the state. */
export interface RunRuntime {
  escalation: EscalationState;
  lastProgressAt?: number;
  /** Since when a mitigated incident has had no firing alert: its auto-resolution counts from here. */
  quietSince?: number;
  nextReminderAt?: number;
  /** The maintenance window's end was acted on: those it kept from being paged have been paged. */
  maintenanceOver?: boolean;
  /** Flap damping: when the channels last heard of an alert-driven change to each status. */
  toldOfStatusAt?: Partial<Record<IncidentState['status'], number>>;
}

/**
 * Switches for fixes that change what a running incident does next. The
 * workflow decides each with `patched()`, so an incident started before a fix
 * replays, and keeps running, on the old path; everything else (unit tests)
 * gets {@link CURRENT_BEHAVIOUR}.
 */
export interface LifecycleBehaviour {
  /**
   * An engineer's mitigation starts the quiet period too (before: only alerts
   * clearing did, so an engineer-mitigated P2/P3 never resolved itself), and a
   * mitigated incident reopens when an alert starts firing, not when one is
   * merely still firing.
   */
  quietAfterMitigation: boolean;
  /**
   * A raised severity posts to the new severity's channels: the initial report
   * where the incident was not posting yet, a severity-raised notice where it was.
   */
  postsOnSeverityRaise: boolean;
  /**
   * The channels' lifecycle traffic: PagerDuty acknowledge/resolve of the paged roles, generic webhook
   * events, the incident's own Slack channel in `channel` mode (an acknowledgment used to send nothing).
   */
  channelEvents: boolean;
  /**
   * Playbooks run: the mapping's playbook starts as a child workflow when the incident opens (else the
   * initial investigation does), engineers run, cancel and approve, and outcomes act on the incident.
   * Before: the playbook was only `selected`.
   */
  playbooks: boolean;
  /**
   * Signals meet the policy's `permissions` too. Updates always do: a validator's refusal never enters
   * history (and validators do not run on replay), so refusing more there changes no running incident.
   * A signal is in history: one that an older run applied (the on-call engineer resolving a P1) must
   * replay as applied, or the run's commands would diverge from its history.
   */
  signalPermissions: boolean;
  /**
   * The state stays bounded (src/domain/incident-record.ts): counts, an index of every alert's status and
   * the latest entries of each list; what the run lets go goes to the incident's record store. And flap
   * damping: the channels hear of an alert-driven state change at most once per `alerts.flapDamping`.
   * Before: every alert and entry stayed in the state, and every flap posted.
   */
  boundedState: boolean;
  /**
   * A bounded run lets its alerts go in batches, as its other lists (before: one at a time past 100 alerts,
   * an archive activity for each new alert).
   */
  alertsInBatches: boolean;
}

export const CURRENT_BEHAVIOUR: Readonly<LifecycleBehaviour> = {
  quietAfterMitigation: true,
  postsOnSeverityRaise: true,
  channelEvents: true,
  playbooks: true,
  signalPermissions: true,
  boundedState: true,
  alertsInBatches: true,
};

/** The playbook operations, refused on incidents whose run began before playbooks could run. */
const PLAYBOOK_OPERATIONS: readonly OperationName[] = ['runPlaybook', 'cancelPlaybook', 'approveAction'];

/** Where the incident runs: its workflow, and the behaviour switches the workflow decided. */
export interface LifecycleContext {
  workflowId: string;
  /** Temporal namespace of the workflow (its web UI links). */
  namespace: string;
  behaviour?: Partial<LifecycleBehaviour>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The incident lifecycle's decisions, without I/O: every handler of the
 * workflow calls one method here, which changes the state and queues what must
 * be said to whom in `outbox`. Escalation timing is the pure engine's
 * (`src/domain/escalation.ts`); this class only applies it.
 */
export class IncidentLifecycle {
  readonly policy: Policy;
  state: IncidentState | undefined;
  runtime: RunRuntime | undefined;
  readonly outbox: Outgoing[] = [];
  /** Child workflows to start, cancel or signal: the workflow drains this after every change. */
  readonly playbookCommands: PlaybookCommand[] = [];
  /** Firing alert batches received after resolution; the workflow opens the next incident with them. */
  readonly afterResolution: AlertBatch[] = [];
  /** Set whenever something happened that the main loop must look at. */
  dirty = false;
  readonly behaviour: Readonly<LifecycleBehaviour>;
  private readonly input: LifecycleInput;
  private readonly workflowId: string;
  private readonly notices: NoticeContext;
  /** An alert was added or changed since the last {@link takeArchive}: the alerts' size is checked again. */
  private alertsGrew = false;

  constructor(input: LifecycleInput, policy: Policy, context: LifecycleContext) {
    this.input = input;
    this.policy = policy;
    this.workflowId = context.workflowId;
    this.notices = { policy, namespace: context.namespace };
    this.behaviour = { ...CURRENT_BEHAVIOUR, ...context.behaviour };
    if (input.carried) {
      this.state = input.carried.state;
      this.runtime = input.carried.runtime as RunRuntime;
      const { state, runtime } = this;
      // Carried from a run before the fix: an engineer-mitigated incident without firing alerts was quiet since.
      if (
        this.behaviour.quietAfterMitigation &&
        state.status === 'mitigated' &&
        state.mitigatedAt !== undefined &&
        runtime.quietSince === undefined &&
        !this.anyAlertFiring()
      ) {
        runtime.quietSince = Date.parse(state.mitigatedAt);
      }
      // Carried from a run that kept everything: from now on it keeps counts, the index and the latest entries.
      if (this.behaviour.boundedState && !state.record) state.record = recordOf(state);
    }
  }

  /** Whether any alert of the incident fires now (bounded runs keep the count; older ones every alert). */
  private anyAlertFiring(): boolean {
    const state = this.mustState();
    return state.record ? state.record.counts.firing > 0 : state.alerts.some((a) => a.status === 'firing');
  }

  /** How many distinct alerts the incident has had. */
  private alertsSeen(): number {
    const state = this.mustState();
    return state.record ? state.record.counts.alerts : state.alerts.length;
  }

  /**
   * Bounded runs: lets go of the oldest entries of each list past its bound (and, when `budgetBytes` is
   * given, of more until the state serialises within it), returning them for the incident's record store.
   * Older runs keep everything: nothing is returned.
   */
  takeArchive(bounds: StateBounds = STATE_BOUNDS, budgetBytes?: number): ArchivedEntry[] {
    const state = this.state;
    const record = state?.record;
    if (!state || !record) return [];
    const out: ArchivedEntry[] = [];
    const trim = (section: 'timeline' | 'actionsTaken' | 'publicUpdates', keep: number, slack: number) => {
      const list: unknown[] = state[section];
      if (list.length <= keep + slack) return;
      const first = record.counts[section] - list.length;
      list
        .splice(0, list.length - keep)
        .forEach((value, i) => out.push({ section, index: first + i, value }));
    };
    const trimAlerts = (keep: number, slack: number, maxBytes: number) => {
      const overCount = state.alerts.length > keep + slack;
      if (!overCount && !this.alertsGrew) return;
      let bytes = serialisedBytes(state.alerts);
      if (!overCount && bytes <= maxBytes && this.behaviour.alertsInBatches) return;
      // In a batch, as the other lists: down to `keep` alerts and, past the byte budget, to three quarters of it.
      const targetBytes =
        this.behaviour.alertsInBatches && bytes > maxBytes && slack > 0
          ? Math.floor(maxBytes * 0.75)
          : maxBytes;
      while (state.alerts.length > 1 && (state.alerts.length > keep || bytes > targetBytes)) {
        const alert = state.alerts.shift() as AlertRecord;
        bytes -= serialisedBytes(alert) + 1;
        out.push({ section: 'alerts', index: record.counts.alertsArchived++, value: alert });
      }
    };
    const pass = (scale: number, slack: number) => {
      trim('timeline', Math.floor(bounds.timeline * scale), slack);
      trim('actionsTaken', Math.floor(bounds.actionsTaken * scale), slack);
      trim('publicUpdates', Math.floor(bounds.publicUpdates * scale), slack);
      trimAlerts(Math.floor(bounds.alerts * scale), slack, Math.floor(bounds.alertBytes * scale));
    };
    pass(1, bounds.slack);
    this.alertsGrew = false;
    this.forgetResolvedAlerts(bounds.alertIndex);
    // Before continuing as new: keep less until the carried state fits (a safety net; the bounds keep it far under).
    for (let scale = 0.5; budgetBytes !== undefined && scale >= 1 / 64; scale /= 2) {
      if (serialisedBytes(state) <= budgetBytes) break;
      this.alertsGrew = true;
      pass(scale, 0);
      this.forgetResolvedAlerts(Math.floor(bounds.alertIndex * scale));
    }
    this.alertsGrew = false;
    return out;
  }

  /** Forgets the oldest resolved fingerprints past `max` (a firing one is never forgotten). */
  private forgetResolvedAlerts(max: number): void {
    const record = this.mustState().record;
    const index = record?.alertIndex;
    if (!record || !index) return;
    let excess = Object.keys(index).length - max;
    if (excess <= 0) return;
    for (const fingerprint of Object.keys(index)) {
      if (excess <= 0) break;
      if (index[fingerprint] !== 'resolved') continue;
      delete index[fingerprint];
      record.counts.forgottenAlerts++;
      excess--;
    }
  }

  /** The incident's page in the Temporal web UI. */
  link(): string {
    return incidentLink(this.notices, this.mustState());
  }

  get opened(): boolean {
    return this.state !== undefined;
  }

  get resolved(): boolean {
    return this.state?.status === 'resolved';
  }

  /** Opens a declared incident at once; an alert-born one opens on its first batch. */
  openDeclared(now: number): void {
    const d = this.input.declared;
    if (!d || this.state) return;
    this.open(now, {
      title: d.title,
      service: d.service ?? this.policy.service.id,
      severity: d.severity,
      impact: d.impact ?? 'medium',
      securityRelated: d.securityRelated ?? false,
      summary: d.summary ?? d.title,
      mappingRule: 'declared',
      source: { kind: 'declared', by: d.by },
      actor: d.by,
    });
  }

  private open(
    now: number,
    seed: Pick<
      IncidentState,
      'title' | 'service' | 'severity' | 'impact' | 'securityRelated' | 'summary' | 'source' | 'mappingRule'
    > & { actor: string; playbook?: PlaybookName; alerts?: AlertRecord[] },
  ): void {
    const { actor, playbook, alerts, ...rest } = seed;
    const state: IncidentState = {
      id: this.input.incidentId,
      workflowId: this.workflowId,
      ...rest,
      status: 'triggered',
      createdAt: iso(now),
      escalationLevel: 0,
      notified: [],
      alerts: [],
      truncatedAlerts: 0,
      actionsTaken: [],
      publicUpdates: [],
      postmortemRequired: severityRules(this.policy, seed.severity).postmortemRequired,
      timeline: [],
    };
    if (this.behaviour.boundedState) state.record = recordOf(state);
    if (this.input.previousIncidentId) state.previousIncidentId = this.input.previousIncidentId;
    if (this.input.maintenance && Date.parse(this.input.maintenance.until) > now) {
      state.maintenance = { ...this.input.maintenance };
    }
    if (playbook) state.playbook = { name: playbook, status: 'selected', steps: [] };
    this.state = state;
    const pbs = this.behaviour.playbooks ? playbookSettings(this.policy) : undefined;
    this.record(
      now,
      'opened',
      actor,
      `${state.severity} ${state.title} opened (${state.summary}; mapping rule ${state.mappingRule}${playbook ? `, playbook ${playbook}` : ''})`,
    );
    if (state.maintenance) {
      this.record(
        now,
        'paging_suppressed',
        'system',
        `maintenance window ${state.maintenance.id} until ${state.maintenance.until} (${state.maintenance.reason}): nobody is paged; everything else is recorded`,
      );
    }
    const slack = this.policy.channels.slack;
    if (
      this.behaviour.channelEvents &&
      slack.mode === 'channel' &&
      (slack.channelFor ?? []).includes(state.severity)
    ) {
      state.slack = { threads: {}, room: { name: roomName(state) } };
      this.outbox.push({ kind: 'room', action: 'create' });
    }
    const opened = openEscalation(this.policy, this.facts());
    this.runtime = { escalation: opened.state };
    this.scheduleNextUpdate(now);
    // Notifications first: the initial report names who was paged.
    this.applyNotifications(opened.notifications, now);
    this.post(
      this.policy.severities[state.severity].posts,
      initialReport(this.notices, state, alerts),
      'initial report',
    );
    this.announce('incident.opened');
    if (pbs && playbook && !pbs.enabled) {
      state.playbook = {
        name: playbook,
        status: 'selected',
        notStarted: 'playbooks.enabled is false',
        steps: [],
      };
      this.record(
        now,
        'playbook_step',
        'system',
        `playbook ${playbook} not started: playbooks are disabled by the policy (playbooks.enabled: false)`,
      );
    } else if (pbs && playbook) {
      this.startPlaybook(playbook, 'automatic', 'system', now);
    } else if (pbs?.enabled) {
      this.startInvestigation(now);
    }
    this.dirty = true;
  }

  // ---- playbooks ---------------------------------------------------------

  private startPlaybook(
    name: PlaybookResult['name'],
    trigger: 'automatic' | 'manual',
    by: string,
    now: number,
  ): void {
    const state = this.mustState();
    const runs = (state.playbook?.runs ?? 0) + 1;
    const runId = playbookRunId(state.id, runs);
    state.playbook = {
      name,
      status: 'running',
      runId,
      trigger,
      requestedBy: by,
      startedAt: iso(now),
      runs,
      steps: [],
    };
    this.record(now, 'playbook_step', by, `playbook ${name} started (${trigger}, run ${runId})`);
    this.playbookCommands.push({
      kind: 'start',
      runId,
      input: {
        incidentId: state.id,
        incidentWorkflowId: this.workflowId,
        name,
        trigger,
        requestedBy: by,
        target: playbookTarget(this.policy),
        settings: playbookSettings(this.policy),
      },
    });
  }

  private startInvestigation(now: number): void {
    const state = this.mustState();
    const runId = investigationRunId(state.id);
    state.investigation = { runId, status: 'running', steps: [] };
    this.record(
      now,
      'playbook_step',
      'system',
      `no playbook for this incident: initial investigation started (${runId})`,
    );
    this.playbookCommands.push({
      kind: 'investigate',
      runId,
      input: {
        incidentId: state.id,
        incidentWorkflowId: this.workflowId,
        target: playbookTarget(this.policy),
        settings: playbookSettings(this.policy),
      },
    });
  }

  runPlaybook(input: RunPlaybookInput, now: number): void {
    this.startPlaybook(input.name, 'manual', input.by, now);
    this.dirty = true;
  }

  cancelPlaybook(input: CancelPlaybookInput, now: number): void {
    const playbook = this.mustState().playbook;
    if (!playbook?.runId) return;
    this.record(
      now,
      'playbook_step',
      input.by,
      `cancel requested for playbook ${playbook.name}${input.reason ? `: ${input.reason}` : ''}`,
    );
    this.playbookCommands.push({ kind: 'cancel', runId: playbook.runId });
    this.dirty = true;
  }

  approveAction(input: ApproveActionInput, now: number): void {
    const playbook = this.mustState().playbook;
    const pending = playbook?.pendingApproval;
    if (!playbook?.runId || !pending) return;
    delete playbook.pendingApproval;
    this.record(
      now,
      'playbook_step',
      input.by,
      `${input.approve ? 'approved' : 'rejected'} step ${pending.stepId}: ${pending.summary}`,
    );
    this.playbookCommands.push({
      kind: 'approve',
      runId: playbook.runId,
      decision: { stepId: input.stepId, approve: input.approve, by: input.by },
    });
    this.dirty = true;
  }

  /** A step reported by a playbook run or the investigation: recorded, and an approval it waits for announced. */
  playbookStep(
    report: { runId: string; step: PlaybookStep; pendingApproval?: PendingApproval | null },
    now: number,
  ): void {
    const state = this.mustState();
    const { step } = report;
    const line = `${step.id} [${step.status}] ${step.summary}${step.changed ? ` (${step.changed.object}: ${step.changed.before} → ${step.changed.after})` : ''}`;
    if (state.investigation?.runId === report.runId) {
      state.investigation.steps.push(step);
      this.record(now, 'playbook_step', 'investigation', line);
      return;
    }
    const playbook = state.playbook;
    if (!playbook || playbook.runId !== report.runId) {
      this.record(
        now,
        'playbook_step',
        report.runId,
        `(from a run that is not the incident's current one) ${line}`,
      );
      return;
    }
    playbook.steps.push(step);
    this.record(now, 'playbook_step', `playbook:${playbook.name}`, line);
    if (report.pendingApproval === null) delete playbook.pendingApproval;
    else if (report.pendingApproval) {
      playbook.pendingApproval = report.pendingApproval;
      if (state.status !== 'resolved') {
        this.post(
          this.policy.severities[state.severity].posts.slice(0, 1),
          approvalNeededNotice(this.notices, state, report.pendingApproval),
          'approval needed',
        );
      }
    }
    this.dirty = true;
  }

  /**
   * A playbook's outcome: `recovered` mitigates the incident; `escalated` and `failed` raise the severity
   * to the procedures' (never lower) and escalate with `playbook_failed`; a `false_alarm` is said in the
   * thread and the incident stays open for a person to close; `monitoring` is said and the run goes on.
   */
  playbookFinished(result: PlaybookResult, now: number): void {
    for (const report of result.reports ?? []) this.playbookStep(report, now);
    const state = this.mustState();
    const playbook = state.playbook;
    if (!playbook || playbook.runId !== result.runId) {
      this.record(
        now,
        'playbook_step',
        result.runId,
        `a run that is not the incident's current one ended ${result.outcome}: ${result.reason}`,
      );
      return;
    }
    playbook.outcome = result.outcome;
    playbook.reason = result.reason;
    playbook.dryRun = result.dryRun;
    if (!result.interim) {
      playbook.status = result.outcome === 'cancelled' ? 'cancelled' : 'completed';
      playbook.finishedAt = iso(now);
      delete playbook.pendingApproval;
    }
    this.record(
      now,
      'playbook_step',
      `playbook:${playbook.name}`,
      `playbook ${playbook.name}${result.dryRun ? ' (dry run)' : ''} ${result.interim ? 'is' : 'ended'} ${result.outcome}: ${result.reason}`,
    );
    this.dirty = true;
    if (state.status === 'resolved' || result.outcome === 'cancelled') return;
    const posts = this.policy.severities[state.severity].posts;
    if (result.outcome === 'recovered') {
      this.post(posts, playbookOutcomeNotice(this.notices, state, result), 'playbook outcome');
      if (state.status !== 'mitigated')
        this.markMitigated(
          now,
          `playbook:${playbook.name}`,
          `playbook ${playbook.name} recovered the service: ${result.reason}`,
        );
      return;
    }
    if ((result.outcome === 'escalated' || result.outcome === 'failed') && result.dryRun) {
      // Nothing was applied, so nothing failed: the plan is for the people already engaged, whose
      // deadlines run on unchanged. (A laptop without a cluster would otherwise page its lead at once.)
      this.post(posts, playbookOutcomeNotice(this.notices, state, result), 'playbook outcome');
      return;
    }
    if (result.outcome === 'escalated' || result.outcome === 'failed') {
      const to = result.escalateTo ?? PLAYBOOK_ESCALATION[playbook.name].severity;
      this.record(now, 'escalated', `playbook:${playbook.name}`, `playbook_failed: ${result.reason}`);
      this.post(posts, playbookOutcomeNotice(this.notices, state, result), 'playbook outcome');
      if (moreSevere(to, state.severity)) {
        this.raiseSeverity(
          to,
          `playbook:${playbook.name}`,
          `playbook ${playbook.name}: ${result.reason}`,
          now,
          'playbook_failed',
        );
      } else {
        this.levelUp('playbook_failed', now);
      }
      return;
    }
    this.post(posts, playbookOutcomeNotice(this.notices, state, result), 'playbook outcome');
  }

  /** The initial investigation's findings, posted in the incident's thread. */
  investigationFinished(result: InvestigationResult, now: number): void {
    const state = this.mustState();
    const investigation = state.investigation;
    if (!investigation || investigation.runId !== result.runId) return;
    investigation.status = 'completed';
    investigation.summary = result.summary;
    const ended = result.cancelled ? 'cancelled' : result.incomplete ? 'incomplete' : 'done';
    this.record(
      now,
      'playbook_step',
      'investigation',
      `initial investigation ${ended} (${result.steps} steps)`,
    );
    if (state.status !== 'resolved') {
      this.post(
        this.policy.severities[state.severity].posts.slice(0, 1),
        investigationNotice(this.notices, state, result.summary),
        'initial investigation',
      );
    }
    this.dirty = true;
  }

  /** Posts to the given channels, and to the incident's own channel when it has one. */
  private post(channelKeys: readonly string[], text: string, purpose: string): void {
    const room = this.state?.slack?.room ? ['room'] : [];
    for (const channelKey of [...channelKeys, ...room])
      this.outbox.push({ kind: 'post', channelKey, text, purpose });
  }

  /** Tells the generic webhook of a step of the incident. */
  private announce(type: IncidentEventType): void {
    if (this.behaviour.channelEvents && (this.policy.channels.webhook?.url ?? '') !== '')
      this.outbox.push({ kind: 'event', type });
  }

  /** Acknowledges or resolves the PagerDuty alert of every role paged by pager. */
  private pagerFollowUp(action: 'acknowledge' | 'resolve'): void {
    if (!this.behaviour.channelEvents) return;
    const roles = new Set<Role>();
    for (const n of this.mustState().notified) {
      if (n.role && n.channels.includes('pager') && !(n.suppressed ?? []).includes('pager'))
        roles.add(n.role);
    }
    if (roles.size > 0) this.outbox.push({ kind: 'pager', action, roles: [...roles] });
  }

  /** The incident's facts as the escalation engine needs them. */
  facts(): IncidentFacts {
    const s = this.mustState();
    const facts: IncidentFacts = {
      severity: s.severity,
      impact: s.impact,
      securityRelated: s.securityRelated,
      createdAt: Date.parse(s.createdAt),
    };
    if (s.acknowledgedAt) facts.acknowledgedAt = Date.parse(s.acknowledgedAt);
    if (s.status === 'mitigated' && s.mitigatedAt) facts.mitigatedAt = Date.parse(s.mitigatedAt);
    if (s.resolvedAt) facts.resolvedAt = Date.parse(s.resolvedAt);
    if (this.runtime?.lastProgressAt !== undefined) facts.lastProgressAt = this.runtime.lastProgressAt;
    return facts;
  }

  private mustState(): IncidentState {
    if (!this.state) throw new Error('incident not opened yet');
    return this.state;
  }

  private mustRuntime(): RunRuntime {
    if (!this.runtime) throw new Error('incident not opened yet');
    return this.runtime;
  }

  record(now: number, kind: TimelineKind, actor: string, message: string): void {
    const state = this.mustState();
    state.timeline.push({ at: iso(now), kind, actor, message });
    if (state.record) state.record.counts.timeline++;
  }

  linkPrevious(previousIncidentId: string, now: number): void {
    const state = this.mustState();
    state.previousIncidentId = previousIncidentId;
    this.record(
      now,
      'opened',
      'system',
      `the same alert group fired before: previous incident ${previousIncidentId}`,
    );
  }

  // ---- alerts -------------------------------------------------------------

  receiveAlerts(batch: AlertBatch, now: number): void {
    if (!this.state) {
      const seed = seedIncident(this.policy, batch);
      this.open(now, {
        ...seed,
        source: { kind: 'alertmanager', receiver: batch.receiver, groupKey: batch.groupKey },
        actor: 'alertmanager',
        alerts: batch.alerts,
      });
      // What the webhook cut to store the group (a long group key, alerts over the limit): said once, at opening.
      if (batch.sanitised && batch.sanitised.length > 0)
        this.record(
          now,
          'alert',
          'alertmanager',
          `alert group sanitised on ingestion: ${batch.sanitised.join('; ')}`,
        );
    }
    const state = this.mustState();
    if (state.status === 'resolved') {
      // Arrived between resolution and the run's close: kept, to open the group's next incident.
      if (batch.alerts.some((a) => a.status === 'firing')) this.afterResolution.push(batch);
      return;
    }
    state.truncatedAlerts = Math.max(state.truncatedAlerts, batch.truncatedAlerts);
    let startedFiring = false;
    for (const alert of batch.alerts) startedFiring = this.recordAlert(alert, now) || startedFiring;
    this.afterAlertsChanged(now, startedFiring);
    this.dirty = true;
  }

  /** Records one alert; true when it started firing (new and firing, or firing again). */
  private recordAlert(alert: AlertRecord, now: number): boolean {
    const state = this.mustState();
    if (state.record) return this.recordIndexedAlert(alert, now);
    const known = state.alerts.find((a) => a.fingerprint === alert.fingerprint);
    if (!known) state.alerts.push(alert);
    else if (known.status !== alert.status) Object.assign(known, alert);
    else return false;
    return this.alertChanged(alert, known === undefined, now);
  }

  /**
   * {@link recordAlert} in a bounded run: the index says what the alert was; the state keeps its latest
   * record among the most recently changed (older ones go to the record store).
   */
  private recordIndexedAlert(alert: AlertRecord, now: number): boolean {
    const state = this.mustState();
    const record = state.record as IncidentRecordState;
    const index = (record.alertIndex ??= {});
    const was = Object.hasOwn(index, alert.fingerprint) ? index[alert.fingerprint] : undefined;
    if (was === alert.status) return false;
    index[alert.fingerprint] = alert.status;
    if (was === undefined) record.counts.alerts++;
    if (alert.status === 'firing') record.counts.firing++;
    else if (was === 'firing') record.counts.firing--;
    const kept = state.alerts.findIndex((a) => a.fingerprint === alert.fingerprint);
    if (kept >= 0) state.alerts.splice(kept, 1);
    state.alerts.push(alert);
    this.alertsGrew = true;
    return this.alertChanged(alert, was === undefined, now);
  }

  /** A new alert or one whose status changed: its timeline entry, and the severity it may raise. */
  private alertChanged(alert: AlertRecord, isNew: boolean, now: number): boolean {
    const state = this.mustState();
    const name = alert.labels['alertname'] ?? alert.fingerprint;
    if (isNew) {
      // What the webhook cut or cleaned in this alert (a label over 4 KiB, a NUL) goes with its first entry.
      const sanitised =
        alert.sanitised && alert.sanitised.length > 0
          ? `; sanitised on ingestion: ${alert.sanitised.join('; ')}`
          : '';
      this.record(
        now,
        'alert',
        'alertmanager',
        `${name} ${alert.status} (${alert.severity}, ${alert.fingerprint})${sanitised}`,
      );
    } else {
      this.record(
        now,
        alert.status === 'resolved' ? 'alert_resolved' : 'alert',
        'alertmanager',
        `${name} ${alert.status} (${alert.fingerprint})`,
      );
    }
    if (alert.status === 'firing' && moreSevere(alert.severity, state.severity)) {
      this.raiseSeverity(alert.severity, 'alertmanager', `alert ${name} is ${alert.severity}`, now);
    }
    return alert.status === 'firing';
  }

  private afterAlertsChanged(now: number, startedFiring: boolean): void {
    const state = this.mustState();
    if (this.alertsSeen() === 0) return;
    const firing = this.anyAlertFiring();
    const runtime = this.mustRuntime();
    if (!this.behaviour.quietAfterMitigation) {
      // Before the fix: only alerts clearing mitigated (and started the quiet period), and only that reopened.
      if (!firing && state.status !== 'mitigated') {
        this.markMitigated(now, 'alertmanager', 'all alerts resolved');
        runtime.quietSince = now;
      } else if (firing && state.status === 'mitigated' && runtime.quietSince !== undefined) {
        this.reopen(now);
      }
      return;
    }
    if (!firing && state.status !== 'mitigated') {
      this.markMitigated(now, 'alertmanager', 'all alerts resolved');
    } else if (!firing && state.status === 'mitigated') {
      // Mitigated by an engineer while alerts still fired: the quiet period starts now they have cleared.
      runtime.quietSince ??= now;
    } else if (startedFiring && state.status === 'mitigated') {
      // A redelivery of what was already firing when an engineer mitigated it does not count.
      this.reopen(now);
    }
  }

  private reopen(now: number): void {
    const state = this.mustState();
    state.status = state.statusBeforeMitigation ?? 'triggered';
    delete state.mitigatedAt;
    delete this.mustRuntime().quietSince;
    this.record(now, 'reopened', 'alertmanager', `alerts firing again: back to ${state.status}`);
  }

  /**
   * Flap damping (bounded runs): whether the channels may hear of the alerts taking the incident to
   * `status` now, i.e. they have not heard of it within `alerts.flapDamping`; notes the telling.
   */
  private toldOfStatus(status: IncidentState['status'], now: number): boolean {
    if (!this.behaviour.boundedState) return true;
    const runtime = this.mustRuntime();
    const interval = this.policy.alerts.flapDamping ?? FLAP_DAMPING_DEFAULT_MS;
    const last = runtime.toldOfStatusAt?.[status];
    if (interval > 0 && last !== undefined && now - last < interval) return false;
    runtime.toldOfStatusAt = { ...runtime.toldOfStatusAt, [status]: now };
    return true;
  }

  private markMitigated(now: number, actor: string, why: string): void {
    const state = this.mustState();
    if (state.status === 'triggered' || state.status === 'acknowledged')
      state.statusBeforeMitigation = state.status;
    state.status = 'mitigated';
    state.mitigatedAt = iso(now);
    if (this.behaviour.quietAfterMitigation && !this.anyAlertFiring()) {
      this.mustRuntime().quietSince = now;
    }
    if (actor === 'alertmanager' && !this.toldOfStatus('mitigated', now)) {
      const record = state.record as IncidentRecordState;
      record.counts.damped = (record.counts.damped ?? 0) + 1;
      this.record(
        now,
        'mitigated',
        actor,
        `${why} (flapping: not posted again within ${formatDuration(this.policy.alerts.flapDamping ?? FLAP_DAMPING_DEFAULT_MS)})`,
      );
      return;
    }
    this.record(now, 'mitigated', actor, why);
    const text = mitigatedNotice(this.notices, state, why, this.autoResolves());
    this.post(this.policy.severities[state.severity].posts, text, 'mitigated notice');
    this.announce('incident.mitigated');
  }

  private autoResolves(): boolean {
    return severityRules(this.policy, this.mustState().severity).autoResolve;
  }

  // ---- engineers ---------------------------------------------------------

  acknowledge(input: AcknowledgeInput, now: number): void {
    const state = this.mustState();
    state.status = state.status === 'mitigated' ? 'mitigated' : 'acknowledged';
    if (state.status === 'mitigated') state.statusBeforeMitigation = 'acknowledged';
    state.acknowledgedAt = iso(now);
    state.acknowledgedBy = input.by;
    this.record(now, 'acknowledged', input.by, `acknowledged by ${this.nameOf(input.by)}`);
    this.pagerFollowUp('acknowledge');
    this.announce('incident.acknowledged');
    this.dirty = true;
  }

  postUpdate(input: PostUpdateInput, now: number): void {
    const state = this.mustState();
    this.mustRuntime().lastProgressAt = now;
    state.lastUpdateAt = iso(now);
    state.actionsTaken.push(...(input.actions ?? []));
    if (state.record) state.record.counts.actionsTaken += (input.actions ?? []).length;
    if (input.public === true) {
      if (state.record) state.record.counts.publicUpdates++;
      state.publicUpdates.push({
        at: iso(now),
        message: input.message,
        ...(input.eta ? { eta: input.eta } : {}),
      });
    }
    this.scheduleNextUpdate(now);
    this.record(now, 'update', input.by, input.message);
    const text = statusUpdateNotice(this.notices, state, input, now);
    this.post(this.policy.severities[state.severity].posts, text, 'status update');
    this.announce('incident.updated');
    this.dirty = true;
  }

  escalate(input: EscalateInput, now: number): void {
    this.record(now, 'escalated', input.by, `manual escalation: ${input.reason}`);
    this.levelUp('manual', now);
  }

  changeSeverity(input: ChangeSeverityInput, now: number): void {
    const state = this.mustState();
    if (moreSevere(input.severity, state.severity)) {
      this.raiseSeverity(input.severity, input.by, input.reason ?? 'raised by an engineer', now);
    } else {
      const from = state.severity;
      state.severity = input.severity;
      this.record(
        now,
        'severity_changed',
        input.by,
        `severity lowered ${from} → ${input.severity}${input.reason ? `: ${input.reason}` : ''}`,
      );
    }
    this.dirty = true;
  }

  private raiseSeverity(
    to: IncidentState['severity'],
    actor: string,
    why: string,
    now: number,
    reason: 'severity_increase' | 'playbook_failed' = 'severity_increase',
  ): void {
    const state = this.mustState();
    const from = state.severity;
    state.severity = to;
    if (severityRules(this.policy, to).postmortemRequired) state.postmortemRequired = true;
    this.record(now, 'severity_changed', actor, `severity raised ${from} → ${to}: ${why}`);
    this.levelUp(reason, now);
    if (this.behaviour.postsOnSeverityRaise) {
      const following = new Set(this.policy.severities[from].posts);
      const posts = this.policy.severities[to].posts;
      this.post(
        posts.filter((key) => !following.has(key)),
        initialReport(this.notices, state),
        'initial report',
      );
      this.post(
        posts.filter((key) => following.has(key)),
        severityRaisedNotice(this.notices, state, from, why),
        'severity raised',
      );
    }
  }

  assignCommander(input: AssignCommanderInput, now: number): void {
    this.mustState().commander = input.commander;
    this.record(now, 'commander', input.by, `${this.nameOf(input.commander)} is incident commander`);
    this.dirty = true;
  }

  recordSecurityEvaluation(input: SecurityEvaluationInput, now: number): void {
    const state = this.mustState();
    state.securityEvaluation = { by: input.by, at: iso(now), finding: input.finding, related: input.related };
    state.securityRelated = state.securityRelated || input.related;
    this.record(
      now,
      'security_evaluation',
      input.by,
      `${input.related ? 'security-related' : 'not security-related'}: ${input.finding}`,
    );
    // Becoming security-related brings the security team's matrix deadline into play: wake the loop.
    this.dirty = true;
  }

  mitigate(input: MitigateInput, now: number): void {
    this.markMitigated(now, input.by, input.note ?? `mitigated by ${this.nameOf(input.by)}`);
    this.dirty = true;
  }

  resolve(input: ResolveInput, now: number): void {
    const state = this.mustState();
    state.status = 'resolved';
    state.resolvedAt = iso(now);
    state.resolvedBy = input.by;
    state.rootCause = input.rootCause;
    if (input.prevention) state.prevention = input.prevention;
    this.record(now, 'resolved', input.by, `resolved: ${input.rootCause}`);
    const text = resolutionNotice(this.notices, state, input, now);
    this.post(resolutionChannels(this.policy, state.severity), text, 'resolution notice');
    this.pagerFollowUp('resolve');
    this.announce('incident.resolved');
    // A playbook or investigation still running has nothing left to fix: it is cancelled.
    if (state.playbook?.status === 'running' && state.playbook.runId)
      this.playbookCommands.push({ kind: 'cancel', runId: state.playbook.runId });
    if (state.investigation?.status === 'running')
      this.playbookCommands.push({ kind: 'cancel', runId: state.investigation.runId });
    // The room stays open for the post-mortem when one is required; otherwise its work is done.
    if (state.slack?.room && !state.postmortemRequired) this.outbox.push({ kind: 'room', action: 'archive' });
    this.dirty = true;
  }

  /** Why an engineer's request is refused (undefined when allowed): update validators and signal handlers alike. */
  refusal(op: OperationName, input: unknown): Refusal {
    return this.refusalOf(op, input)?.reason;
  }

  /**
   * {@link refusal} with its kind (`forbidden`: the actor's roles do not permit it). `via: 'signal'` on a
   * run that began before signals met the permissions leaves them out (see `signalPermissions`).
   */
  refusalOf(
    op: OperationName,
    input: unknown,
    via: 'update' | 'signal' = 'update',
  ): OperationRefusal | undefined {
    if (!this.behaviour.playbooks && PLAYBOOK_OPERATIONS.includes(op))
      return {
        kind: 'refused',
        reason: 'this incident began before playbooks could run: run the playbook by hand',
      };
    if (!this.state) return { kind: 'refused', reason: NOT_OPENED_YET };
    const permissions = via === 'update' || this.behaviour.signalPermissions;
    return refusalOf(this.policy, this.state, op, input, { permissions });
  }

  /** Applies an engineer's operation that {@link refusal} allowed. */
  apply(op: OperationName, input: unknown, now: number): void {
    const operations: { [K in OperationName]: (input: OperationInput<K>, now: number) => void } = {
      acknowledge: (i, t) => this.acknowledge(i, t),
      postUpdate: (i, t) => this.postUpdate(i, t),
      escalate: (i, t) => this.escalate(i, t),
      changeSeverity: (i, t) => this.changeSeverity(i, t),
      assignCommander: (i, t) => this.assignCommander(i, t),
      recordSecurityEvaluation: (i, t) => this.recordSecurityEvaluation(i, t),
      mitigate: (i, t) => this.mitigate(i, t),
      resolve: (i, t) => this.resolve(i, t),
      runPlaybook: (i, t) => this.runPlaybook(i, t),
      cancelPlaybook: (i, t) => this.cancelPlaybook(i, t),
      approveAction: (i, t) => this.approveAction(i, t),
    };
    (operations[op] as (i: unknown, t: number) => void)(parseOperationInput(op, input), now);
  }

  // ---- time --------------------------------------------------------------

  /** Runs every rule that is due at `now`. */
  tick(now: number): void {
    const state = this.mustState();
    if (state.status === 'resolved') return;
    const runtime = this.mustRuntime();
    const due = dueEscalations(this.policy, this.facts(), runtime.escalation, now);
    runtime.escalation = due.state;
    this.applyNotifications(due.notifications, now);
    this.endMaintenance(now);
    if (
      runtime.nextReminderAt !== undefined &&
      now >= runtime.nextReminderAt &&
      state.status !== 'mitigated'
    ) {
      this.record(
        now,
        'reminder',
        'system',
        `a status update is due (was due ${state.nextUpdateDue ?? 'now'})`,
      );
      const text = updateReminder(this.notices, state);
      this.post(this.policy.severities[state.severity].posts.slice(0, 1), text, 'update reminder');
      this.scheduleNextUpdate(now);
    }
    if (
      state.status === 'mitigated' &&
      this.autoResolves() &&
      runtime.quietSince !== undefined &&
      now >= runtime.quietSince + this.policy.resolution.autoResolveAfter
    ) {
      state.postmortemRequired = true;
      const rootCause =
        this.alertsSeen() > 0 ? 'auto-resolved: alerts cleared' : 'auto-resolved: quiet since mitigated';
      this.resolve({ by: 'system', rootCause }, now);
    }
  }

  /** The earliest instant at which `tick` has something to do. */
  nextWakeAt(now: number): number | undefined {
    const state = this.mustState();
    if (state.status === 'resolved') return undefined;
    const runtime = this.mustRuntime();
    const candidates: number[] = [];
    const due = dueEscalations(this.policy, this.facts(), runtime.escalation, now);
    if (due.nextWakeAt !== undefined) candidates.push(due.nextWakeAt);
    if (runtime.nextReminderAt !== undefined && state.status !== 'mitigated')
      candidates.push(runtime.nextReminderAt);
    if (state.maintenance && !runtime.maintenanceOver) candidates.push(Date.parse(state.maintenance.until));
    if (state.status === 'mitigated' && this.autoResolves() && runtime.quietSince !== undefined) {
      candidates.push(runtime.quietSince + this.policy.resolution.autoResolveAfter);
    }
    return candidates.length > 0 ? Math.max(now, Math.min(...candidates)) : undefined;
  }

  /**
   * When the maintenance window ends and the incident is still open, everyone it kept from being paged is
   * paged now, on the channels that were suppressed: the window covered planned work, not this incident.
   */
  private endMaintenance(now: number): void {
    const state = this.mustState();
    const runtime = this.mustRuntime();
    if (!state.maintenance || runtime.maintenanceOver || now < Date.parse(state.maintenance.until)) return;
    runtime.maintenanceOver = true;
    const missed = state.notified.filter((n) => n.who !== null && (n.suppressed ?? []).length > 0);
    this.record(
      now,
      'paging_suppressed',
      'system',
      `maintenance window ${state.maintenance.id} is over${missed.length > 0 ? `: paging ${missed.map((n) => this.nameOf(n.who ?? '')).join(', ')} now` : ''}`,
    );
    for (const n of missed) {
      const notification: Notification = {
        at: now,
        level: n.level,
        role: n.role,
        person: n.who,
        channels: n.suppressed ?? [],
        reason: n.reason as Notification['reason'],
      };
      this.outbox.push({
        kind: 'notify',
        notification,
        text: notificationText(this.notices, state, notification),
      });
      delete n.suppressed;
    }
    this.dirty = true;
  }

  private levelUp(reason: 'manual' | 'severity_increase' | 'impact' | 'playbook_failed', now: number): void {
    const runtime = this.mustRuntime();
    const result = escalateNow(this.policy, this.facts(), runtime.escalation, now, reason);
    runtime.escalation = result.state;
    this.applyNotifications(result.notifications, now);
    this.dirty = true;
  }

  private scheduleNextUpdate(now: number): void {
    const state = this.mustState();
    const interval = severityRules(this.policy, state.severity).updateReminderEvery;
    const runtime = this.mustRuntime();
    if (interval === null) {
      const due = responseDueAt(this.policy, state.severity, Date.parse(state.createdAt));
      state.nextUpdateDue = iso(Math.max(due, now));
      delete runtime.nextReminderAt;
      return;
    }
    runtime.nextReminderAt = now + interval;
    state.nextUpdateDue = iso(now + interval);
  }

  private applyNotifications(notifications: readonly Notification[], now: number): void {
    const state = this.mustState();
    const levelBefore = state.escalationLevel;
    const maintenance =
      state.maintenance && Date.parse(state.maintenance.until) > now ? state.maintenance : undefined;
    const invite: string[] = [];
    for (const n of notifications) {
      if (n.level > state.escalationLevel) {
        state.escalationLevel = n.level;
        if (n.reason !== 'initial') {
          this.record(now, 'escalated', 'system', `escalated to level ${n.level} (${n.reason})`);
        }
      }
      if (n.person === null) continue;
      const suppressed = maintenance ? n.channels.filter((c) => PAGING_CHANNELS.includes(c)) : [];
      state.notified.push({
        who: n.person,
        role: n.role,
        level: n.level,
        at: iso(n.at),
        channels: [...n.channels],
        reason: n.reason,
        ...(suppressed.length > 0 ? { suppressed } : {}),
      });
      if (maintenance && suppressed.length > 0) {
        this.record(
          now,
          'paging_suppressed',
          'system',
          `${this.nameOf(n.person)} not paged by ${suppressed.join('+')}: maintenance window ${maintenance.id} (${maintenance.reason})`,
        );
      }
      if (suppressed.length === n.channels.length) continue;
      this.outbox.push({
        kind: 'notify',
        notification: n,
        text: notificationText(this.notices, state, n),
        ...(suppressed.length > 0 ? { suppressed } : {}),
      });
      const slackUser = this.policy.people[n.person]?.slack;
      if (state.slack?.room && slackUser && !invite.includes(slackUser)) invite.push(slackUser);
    }
    if (invite.length > 0) this.outbox.push({ kind: 'room', action: 'invite', slackUsers: invite });
    if (state.escalationLevel > levelBefore) this.announce('incident.escalated');
  }

  /** Records what happened to a side effect (delivered or failed after its retries), one entry per channel. */
  delivered(out: Outgoing, delivery: Delivery | undefined, now: number, result: DeliveryResult): void {
    const state = this.mustState();
    learnFromDelivery(state, out, delivery, result);
    for (const entry of deliveryTimeline(this.policy, out, result)) {
      this.record(now, entry.kind, 'system', entry.message);
    }
  }

  private nameOf(handle: string): string {
    return this.policy.people[handle]?.name ?? handle;
  }
}
