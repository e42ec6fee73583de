import type { DeliveryResult } from '../activities/index.ts';
import type { AlertBatch, AlertRecord, PlaybookName } from '../domain/alert-mapping.ts';
import { seedIncident } from '../domain/alert-mapping.ts';
import { responseDueAt } from '../domain/business-hours.ts';
import { formatDuration } from '../domain/duration.ts';
import { dueEscalations, escalateNow, openEscalation } from '../domain/escalation.ts';
import type { EscalationState, IncidentFacts, Notification } from '../domain/escalation.ts';
import type {
  AcknowledgeInput,
  AssignCommanderInput,
  ChangeSeverityInput,
  EscalateInput,
  IncidentState,
  MitigateInput,
  PostUpdateInput,
  Refusal,
  ResolveInput,
  SecurityEvaluationInput,
  TimelineKind,
} from '../domain/incident.ts';
import {
  refuseAcknowledge,
  refuseAssignCommander,
  refuseChangeSeverity,
  refuseEscalate,
  refuseMitigate,
  refusePostUpdate,
  refuseResolve,
  refuseSecurityEvaluation,
  templateValuesOf,
} from '../domain/incident.ts';
import type { Policy } from '../domain/policy.ts';
import { moreSevere } from '../domain/severity.ts';
import { bulletList, renderTemplate } from '../domain/templates.ts';
import type { IncidentInput } from './messages.ts';

/** A side effect the workflow must carry out; the run only decides. */
export type Outgoing =
  | { kind: 'post'; channelKey: string; text: string; purpose: string }
  | { kind: 'notify'; notification: Notification; text: string };

/** Runtime bookkeeping carried across continue-as-new next to the state. */
export interface RunRuntime {
  escalation: EscalationState;
  lastProgressAt?: number;
  quietSince?: number;
  nextReminderAt?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The incident lifecycle's decisions, without I/O: every handler of the
 * workflow calls one method here, which changes the state and queues what must
 * be said to whom in `outbox`. Escalation timing is the pure engine's
 * (`src/domain/escalation.ts`); this class only applies it.
 */
export class IncidentRun {
  readonly policy: Policy;
  state: IncidentState | undefined;
  runtime: RunRuntime | undefined;
  readonly outbox: Outgoing[] = [];
  /** Firing alert batches received after resolution; the workflow opens the next incident with them. */
  readonly afterResolution: AlertBatch[] = [];
  /** Set whenever something happened that the main loop must look at. */
  dirty = false;
  private readonly input: IncidentInput;
  private readonly workflowId: string;

  constructor(input: IncidentInput, workflowId: string) {
    this.input = input;
    this.policy = input.policy;
    this.workflowId = workflowId;
    if (input.carried) {
      this.state = input.carried.state;
      this.runtime = input.carried.runtime as RunRuntime;
    }
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
    > & { actor: string; playbook?: PlaybookName },
  ): void {
    const { actor, playbook, ...rest } = seed;
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
      postmortemRequired: seed.severity === 'P0' || seed.severity === 'P1',
      timeline: [],
    };
    if (this.input.previousIncidentId) state.previousIncidentId = this.input.previousIncidentId;
    if (playbook) state.playbook = { name: playbook, status: 'selected', steps: [] };
    this.state = state;
    this.record(
      now,
      'opened',
      actor,
      `${state.severity} ${state.title} opened (${state.summary}; mapping rule ${state.mappingRule}${playbook ? `, playbook ${playbook}` : ''})`,
    );
    const opened = openEscalation(this.policy, this.facts());
    this.runtime = { escalation: opened.state };
    this.scheduleNextUpdate(now);
    // Notifications first: the initial report names who was paged.
    this.applyNotifications(opened.notifications, now);
    for (const key of this.policy.severities[state.severity].posts) {
      this.outbox.push({
        kind: 'post',
        channelKey: key,
        text: this.initialReport(),
        purpose: 'initial report',
      });
    }
    this.dirty = true;
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
    this.mustState().timeline.push({ at: iso(now), kind, actor, message });
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
      });
    }
    const state = this.mustState();
    if (state.status === 'resolved') {
      // Arrived between resolution and the run's close: kept, to open the group's next incident.
      if (batch.alerts.some((a) => a.status === 'firing')) this.afterResolution.push(batch);
      return;
    }
    state.truncatedAlerts = Math.max(state.truncatedAlerts, batch.truncatedAlerts);
    for (const alert of batch.alerts) this.recordAlert(alert, now);
    this.afterAlertsChanged(now);
    this.dirty = true;
  }

  private recordAlert(alert: AlertRecord, now: number): void {
    const state = this.mustState();
    const name = alert.labels['alertname'] ?? alert.fingerprint;
    const known = state.alerts.find((a) => a.fingerprint === alert.fingerprint);
    if (!known) {
      state.alerts.push(alert);
      this.record(
        now,
        'alert',
        'alertmanager',
        `${name} ${alert.status} (${alert.severity}, ${alert.fingerprint})`,
      );
    } else if (known.status !== alert.status) {
      Object.assign(known, alert);
      this.record(
        now,
        alert.status === 'resolved' ? 'alert_resolved' : 'alert',
        'alertmanager',
        `${name} ${alert.status} (${alert.fingerprint})`,
      );
    } else {
      return;
    }
    if (alert.status === 'firing' && moreSevere(alert.severity, state.severity)) {
      this.raiseSeverity(alert.severity, 'alertmanager', `alert ${name} is ${alert.severity}`, now);
    }
  }

  private afterAlertsChanged(now: number): void {
    const state = this.mustState();
    if (state.alerts.length === 0) return;
    const firing = state.alerts.some((a) => a.status === 'firing');
    const runtime = this.mustRuntime();
    if (!firing && state.status !== 'mitigated') {
      this.markMitigated(now, 'alertmanager', 'all alerts resolved');
      runtime.quietSince = now;
    } else if (firing && state.status === 'mitigated' && runtime.quietSince !== undefined) {
      state.status = state.statusBeforeMitigation ?? 'triggered';
      delete state.mitigatedAt;
      delete runtime.quietSince;
      this.record(now, 'reopened', 'alertmanager', `alerts firing again: back to ${state.status}`);
    }
  }

  private markMitigated(now: number, actor: string, why: string): void {
    const state = this.mustState();
    if (state.status === 'triggered' || state.status === 'acknowledged')
      state.statusBeforeMitigation = state.status;
    state.status = 'mitigated';
    state.mitigatedAt = iso(now);
    this.record(now, 'mitigated', actor, why);
    const text = `🩹 ${state.id} ${state.title} is mitigated: ${why}.${
      this.autoResolves()
        ? ` It resolves itself after ${formatDuration(this.policy.resolution.autoResolveAfter)} without alerts.`
        : ' Waiting for an engineer to resolve it.'
    }`;
    for (const key of this.policy.severities[state.severity].posts) {
      this.outbox.push({ kind: 'post', channelKey: key, text, purpose: 'mitigated notice' });
    }
  }

  private autoResolves(): boolean {
    const s = this.mustState().severity;
    return s === 'P2' || s === 'P3';
  }

  // ---- engineers ---------------------------------------------------------

  acknowledge(input: AcknowledgeInput, now: number): void {
    const state = this.mustState();
    state.status = state.status === 'mitigated' ? 'mitigated' : 'acknowledged';
    if (state.status === 'mitigated') state.statusBeforeMitigation = 'acknowledged';
    state.acknowledgedAt = iso(now);
    state.acknowledgedBy = input.by;
    this.record(now, 'acknowledged', input.by, `acknowledged by ${this.nameOf(input.by)}`);
    this.dirty = true;
  }

  postUpdate(input: PostUpdateInput, now: number): void {
    const state = this.mustState();
    this.mustRuntime().lastProgressAt = now;
    state.lastUpdateAt = iso(now);
    state.actionsTaken.push(...(input.actions ?? []));
    if (input.public === true) {
      state.publicUpdates.push({
        at: iso(now),
        message: input.message,
        ...(input.eta ? { eta: input.eta } : {}),
      });
    }
    this.scheduleNextUpdate(now);
    this.record(now, 'update', input.by, input.message);
    const text = renderTemplate(this.policy.templates.statusUpdate, {
      ...templateValuesOf(this.policy, state),
      update_time: iso(now),
      progress_description: input.message,
      actions_list: bulletList(input.actions ?? []),
      current_focus: input.focus,
      estimated_resolution: input.eta,
      next_update_time: state.nextUpdateDue,
    });
    for (const key of this.policy.severities[state.severity].posts) {
      this.outbox.push({ kind: 'post', channelKey: key, text, purpose: 'status update' });
    }
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

  private raiseSeverity(to: IncidentState['severity'], actor: string, why: string, now: number): void {
    const state = this.mustState();
    const from = state.severity;
    state.severity = to;
    if (to === 'P0' || to === 'P1') state.postmortemRequired = true;
    this.record(now, 'severity_changed', actor, `severity raised ${from} → ${to}: ${why}`);
    this.levelUp('severity_increase', now);
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
    const text = renderTemplate(this.policy.templates.resolutionNotice, {
      ...templateValuesOf(this.policy, state),
      resolution_time: state.resolvedAt,
      total_duration: formatDuration(now - Date.parse(state.createdAt)),
      root_cause_summary: input.rootCause,
      resolution_actions: bulletList(state.actionsTaken),
      prevention_measures: input.prevention,
      postmortem_link: state.postmortemRequired ? 'required (post-incident process)' : 'not required',
    });
    for (const key of this.policy.severities[state.severity].posts) {
      this.outbox.push({ kind: 'post', channelKey: key, text, purpose: 'resolution notice' });
    }
    this.dirty = true;
  }

  /** Validates an engineer's request by its name; used by update validators and signal handlers alike. */
  refusal(
    op:
      | 'acknowledge'
      | 'postUpdate'
      | 'escalate'
      | 'changeSeverity'
      | 'assignCommander'
      | 'recordSecurityEvaluation'
      | 'mitigate'
      | 'resolve',
    input: unknown,
  ): Refusal {
    const state = this.state;
    if (!state) return 'the incident has not opened yet';
    if (typeof input !== 'object' || input === null) return 'the argument must be a JSON object';
    switch (op) {
      case 'acknowledge':
        return refuseAcknowledge(this.policy, state, input as AcknowledgeInput);
      case 'postUpdate':
        return refusePostUpdate(this.policy, state, input as PostUpdateInput);
      case 'escalate':
        return refuseEscalate(this.policy, state, input as EscalateInput);
      case 'changeSeverity':
        return refuseChangeSeverity(this.policy, state, input as ChangeSeverityInput);
      case 'assignCommander':
        return refuseAssignCommander(this.policy, state, input as AssignCommanderInput);
      case 'recordSecurityEvaluation':
        return refuseSecurityEvaluation(this.policy, state, input as SecurityEvaluationInput);
      case 'mitigate':
        return refuseMitigate(this.policy, state, input as MitigateInput);
      case 'resolve':
        return refuseResolve(this.policy, state, input as ResolveInput);
    }
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
      const text = `⏰ ${state.id} ${state.title}: a status update is due. Post one with: incident update ${state.id} --message "…"`;
      for (const key of this.policy.severities[state.severity].posts.slice(0, 1)) {
        this.outbox.push({ kind: 'post', channelKey: key, text, purpose: 'update reminder' });
      }
      this.scheduleNextUpdate(now);
    }
    if (
      state.status === 'mitigated' &&
      this.autoResolves() &&
      runtime.quietSince !== undefined &&
      now >= runtime.quietSince + this.policy.resolution.autoResolveAfter
    ) {
      state.postmortemRequired = true;
      this.resolve({ by: 'system', rootCause: 'auto-resolved: alerts cleared' }, now);
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
    if (state.status === 'mitigated' && this.autoResolves() && runtime.quietSince !== undefined) {
      candidates.push(runtime.quietSince + this.policy.resolution.autoResolveAfter);
    }
    return candidates.length > 0 ? Math.max(now, Math.min(...candidates)) : undefined;
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
    const interval = this.policy.escalation.updateInterval[state.severity];
    const runtime = this.mustRuntime();
    if (interval === undefined) {
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
    for (const n of notifications) {
      if (n.level > state.escalationLevel) {
        state.escalationLevel = n.level;
        if (n.reason !== 'initial') {
          this.record(now, 'escalated', 'system', `escalated to level ${n.level} (${n.reason})`);
        }
      }
      if (n.person === null) continue;
      state.notified.push({
        who: n.person,
        role: n.role,
        level: n.level,
        at: iso(n.at),
        channels: [...n.channels],
        reason: n.reason,
      });
      this.outbox.push({ kind: 'notify', notification: n, text: this.notificationText(n) });
    }
  }

  private notificationText(n: Notification): string {
    const state = this.mustState();
    const why = n.reason === 'initial' ? 'new incident' : `escalation level ${n.level} (${n.reason})`;
    return `${state.severity} ${state.id} ${state.title} — ${why}. Acknowledge: incident ack ${state.id} --by ${n.person ?? '<you>'} · ${templateValuesOf(this.policy, state).incident_thread_link}`;
  }

  initialReport(): string {
    const state = this.mustState();
    const onCall = state.notified.find((n) => n.level === 0)?.who;
    return renderTemplate(this.policy.templates.initialReport, {
      ...templateValuesOf(this.policy, state),
      assigned_engineer: onCall ? this.nameOf(onCall) : this.policy.severities[state.severity].notify.role,
    });
  }

  /** Records what happened to a side effect (delivered or failed after its retries). */
  delivered(out: Outgoing, now: number, result: DeliveryResult): void {
    const what =
      out.kind === 'post'
        ? `${out.purpose} → ${this.policy.channels.slack.channels[out.channelKey] ?? out.channelKey} via slack`
        : `notification → ${out.notification.person ?? 'nobody'} via ${out.notification.channels.join('+')}`;
    if (result.ok) this.record(now, 'notified', 'system', `${what} (${result.detail})`);
    else this.record(now, 'notification_failed', 'system', `${what} failed: ${result.error}`);
  }

  private nameOf(handle: string): string {
    return this.policy.people[handle]?.name ?? handle;
  }
}
