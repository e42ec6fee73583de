import { formatDuration } from './duration.ts';
import type { Notification } from './escalation.ts';
import type { IncidentState } from './incident.ts';
import type { PostUpdateInput, ResolveInput } from './operations.ts';
import type { Policy } from './policy.ts';
import { bulletList, renderTemplate, templatePlaceholders } from './templates.ts';
import type { TemplateValues } from './templates.ts';

/**
 * The wording of everything an incident says: the procedures' templates
 * (initial report, status update, resolution notice) filled from the state,
 * and the short notices in between. The lifecycle decides when and to whom;
 * this file only decides the words.
 */

const iso = (ms: number) => new Date(ms).toISOString();

/** What the words depend on besides the state: the policy snapshot and where the incident's workflow lives. */
export interface NoticeContext {
  policy: Policy;
  /** Temporal namespace of the incident's workflow, for its web UI link. */
  namespace: string;
}

/** The state's values for the procedures' templates. */
export function templateValuesOf(
  ctx: NoticeContext,
  state: IncidentState,
): Record<string, string | undefined> {
  const link = incidentLink(ctx, state);
  return {
    incident_id: state.id,
    title: state.title,
    severity: state.severity,
    status: state.status,
    current_status: state.status,
    service_name: ctx.policy.service.name,
    incident_time: state.createdAt,
    impact_description: `${state.impact} business impact: ${state.summary}`,
    affected_systems: state.service,
    initial_findings: state.summary,
    incident_commander: state.commander ?? 'unassigned',
    next_update_time: state.nextUpdateDue,
    incident_thread_link: link,
    how_to_act: howToAct(state, link),
  };
}

/** What an engineer can do next, by status: the CLI commands and the web UI page. */
function howToAct(state: IncidentState, link: string): string {
  const show = `incident show ${state.id}`;
  switch (state.status) {
    case 'triggered':
      return `incident ack ${state.id} · ${show} · ${link}`;
    case 'acknowledged':
    case 'mitigated':
      return `incident update ${state.id} --message "…" · ${show} · ${link}`;
    case 'resolved':
      return `${show} · ${link}`;
  }
}

/** The web UI page of the incident's workflow: the policy's `links.webUi`, the workflow's namespace and id. */
export function incidentLink(ctx: NoticeContext, state: Pick<IncidentState, 'workflowId'>): string {
  const base = ctx.policy.links.webUi.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(ctx.namespace)}/workflows/${encodeURIComponent(state.workflowId)}`;
}

function nameOf(policy: Policy, handle: string): string {
  return policy.people[handle]?.name ?? handle;
}

/**
 * The template with the lines every post needs (the incident's id and title,
 * how to act) appended when it lacks them. The policy schema requires them, so
 * this only serves the snapshots of incidents started before it did.
 */
function withRequiredLines(template: string): string {
  const used = new Set(templatePlaceholders(template));
  const lines: string[] = [];
  if (!used.has('incident_id') || !used.has('title'))
    lines.push('**Incident**: {{ incident_id }} {{ title }}');
  if (!used.has('how_to_act')) lines.push('Act: {{ how_to_act }}');
  return lines.length === 0 ? template : `${template.trimEnd()}\n\n${lines.join('\n')}\n`;
}

function render(template: string, values: TemplateValues): string {
  return renderTemplate(withRequiredLines(template), values);
}

/** The procedures' "Initial Incident Report". */
/** `alerts`: those the report is about (an incident's first batch is reported before it is recorded). */
export function initialReport(
  ctx: NoticeContext,
  state: IncidentState,
  alerts: IncidentState['alerts'] = state.alerts,
): string {
  const onCall = state.notified.find((n) => n.level === 0)?.who;
  const report = render(ctx.policy.templates.initialReport, {
    ...templateValuesOf(ctx, state),
    assigned_engineer: onCall
      ? nameOf(ctx.policy, onCall)
      : ctx.policy.severities[state.severity].notify.role,
  });
  const links = alertLinksLine(alerts);
  return links ? `${report.trimEnd()}\n${links}\n` : report;
}

/** The dashboards and silences the alerting system sent with the alerts (Grafana), as one line. */
function alertLinksLine(alerts: IncidentState['alerts']): string | undefined {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const alert of alerts) {
    const links: Record<string, string | undefined> = { ...alert.links };
    for (const [kind, url] of Object.entries(links)) {
      if (kind === 'source' || !url || seen.has(url)) continue;
      seen.add(url);
      parts.push(`${kind} ${url}`);
    }
  }
  return parts.length > 0 ? `**Links**: ${parts.slice(0, 6).join(' · ')}` : undefined;
}

/** The procedures' "Status Update Template" for an engineer's update. */
export function statusUpdateNotice(
  ctx: NoticeContext,
  state: IncidentState,
  input: PostUpdateInput,
  now: number,
): string {
  return render(ctx.policy.templates.statusUpdate, {
    ...templateValuesOf(ctx, state),
    update_time: iso(now),
    progress_description: input.message,
    actions_list: bulletList(input.actions ?? []),
    current_focus: input.focus,
    estimated_resolution: input.eta,
    next_update_time: state.nextUpdateDue,
  });
}

/** The procedures' "Resolution Notice". */
export function resolutionNotice(
  ctx: NoticeContext,
  state: IncidentState,
  input: ResolveInput,
  now: number,
): string {
  return render(ctx.policy.templates.resolutionNotice, {
    ...templateValuesOf(ctx, state),
    resolution_time: state.resolvedAt,
    total_duration: formatDuration(now - Date.parse(state.createdAt)),
    root_cause_summary: input.rootCause,
    resolution_actions: bulletList(state.actionsTaken),
    prevention_measures: input.prevention,
    postmortem_link: state.postmortemRequired ? 'required (post-incident process)' : 'not required',
  });
}

/** Posted when an incident becomes mitigated. */
export function mitigatedNotice(
  ctx: NoticeContext,
  state: IncidentState,
  why: string,
  autoResolves: boolean,
): string {
  return `🩹 ${state.id} ${state.title} is mitigated: ${why}.${
    autoResolves
      ? ` It resolves itself after ${formatDuration(ctx.policy.resolution.autoResolveAfter)} without firing alerts.`
      : ' Waiting for an engineer to resolve it.'
  } Act: ${templateValuesOf(ctx, state).how_to_act}`;
}

/** Posted to the channels that already follow an incident when its severity is raised. */
export function severityRaisedNotice(
  ctx: NoticeContext,
  state: IncidentState,
  from: string,
  why: string,
): string {
  return `⬆️ ${state.id} ${state.title} raised ${from} → ${state.severity}: ${why}. Act: ${templateValuesOf(ctx, state).how_to_act}`;
}

/** Posted when a status update is due ("Next Update"). */
export function updateReminder(ctx: NoticeContext, state: IncidentState): string {
  return `⏰ ${state.id} ${state.title}: a status update is due. Post one with: incident update ${state.id} --message "…" · ${incidentLink(ctx, state)}`;
}

/** What a person is told when paged or escalated to. */
export function notificationText(ctx: NoticeContext, state: IncidentState, n: Notification): string {
  const why = n.reason === 'initial' ? 'new incident' : `escalation level ${n.level} (${n.reason})`;
  return `${state.severity} ${state.id} ${state.title} — ${why}. Acknowledge: incident ack ${state.id} --by ${n.person ?? '<you>'} · ${incidentLink(ctx, state)}`;
}

const OUTCOME_ICONS: Record<string, string> = {
  false_alarm: '❔',
  recovered: '✅',
  monitoring: '🔄',
  escalated: '❌',
  failed: '⚠️',
  cancelled: '⏹️',
};

/** Posted in the incident's thread when its playbook ends (or starts monitoring). */
export function playbookOutcomeNotice(
  ctx: NoticeContext,
  state: IncidentState,
  result: { name: string; outcome: string; reason: string; dryRun: boolean },
): string {
  const next =
    result.dryRun && (result.outcome === 'escalated' || result.outcome === 'failed')
      ? ' Dry run: nothing was applied; apply the plan by hand (incident show) or run the playbook live.'
      : result.outcome === 'false_alarm'
        ? ' The incident stays open for a person to close (incident resolve).'
        : result.outcome === 'escalated' || result.outcome === 'failed'
          ? ' Escalating (playbook_failed).'
          : '';
  return `${OUTCOME_ICONS[result.outcome] ?? ''} ${state.id} ${state.title}: playbook ${result.name}${result.dryRun ? ' (dry run)' : ''} ${result.outcome.replace('_', ' ')}: ${result.reason}.${next} Steps: incident show ${state.id}. Act: ${templateValuesOf(ctx, state).how_to_act}`;
}

/** Posted when a playbook step waits for an engineer's approval. */
export function approvalNeededNotice(
  ctx: NoticeContext,
  state: IncidentState,
  pending: { stepId: string; summary: string; until: string },
): string {
  return `✋ ${state.id} ${state.title}: playbook ${state.playbook?.name ?? ''} waits for approval to ${pending.summary}. Approve: incident approve ${state.id} ${pending.stepId} · reject: incident approve ${state.id} ${pending.stepId} --reject · escalates if nobody answers by ${pending.until} · ${incidentLink(ctx, state)}`;
}

/** The procedures' initial investigation, gathered automatically, posted in the incident's thread. */
export function investigationNotice(ctx: NoticeContext, state: IncidentState, summary: string): string {
  return `🔎 ${state.id} ${state.title}: initial investigation\n${summary
    .split('\n')
    .map((line) => `• ${line}`)
    .join('\n')}\nAct: ${templateValuesOf(ctx, state).how_to_act}`;
}
