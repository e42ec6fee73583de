import type { WebhookPayload } from './alertmanager.ts';
import type { Policy } from './policy.ts';
import { renderTemplate } from './templates.ts';
import { IMPACTS, isSeverity, mostSevere } from './severity.ts';
import type { Impact, Severity } from './severity.ts';

/*
 * How an Alertmanager group maps to an incident. Kept apart from the payload
 * schema (zod) so the workflow bundle carries only these pure rules.
 */

/** One alert as the incident records it. */
export interface AlertRecord {
  fingerprint: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  /** Where to look, when the source says (Grafana's dashboard, panel, silence and rule pages). */
  links?: AlertLinks;
}

export interface AlertLinks {
  dashboard?: string;
  panel?: string;
  silence?: string;
  /** The rule or query that fired (`generatorURL`). */
  source?: string;
}

/** A batch of alerts from one delivery of one Alertmanager group. */
export interface AlertBatch {
  receiver: string;
  groupKey: string;
  status: 'firing' | 'resolved';
  truncatedAlerts: number;
  externalURL: string;
  alerts: AlertRecord[];
}

/** What the group says about the incident it opens. */
export interface IncidentSeed {
  title: string;
  service: string;
  severity: Severity;
  impact: Impact;
  securityRelated: boolean;
  summary: string;
  /** The mapping rule that matched, or `default`. */
  mappingRule: string;
  playbook?: PlaybookName;
}

export type MappingRule = Policy['alerts']['rules'][number];
export type PlaybookName = NonNullable<MappingRule['playbook']>;

/** Alertmanager sends `0001-01-01T00:00:00Z` as endsAt for firing alerts: that means "unknown". */
function endsAtOrUndefined(endsAt: string | undefined): string | undefined {
  return endsAt === undefined || endsAt.startsWith('0001-') ? undefined : endsAt;
}

/**
 * The procedures' severity for one alert: a `priority` label P0..P3 wins, then
 * the first matching mapping rule's severity, then the `severity` label table.
 */
export function alertSeverity(policy: Policy, alertLabels: Readonly<Record<string, string>>): Severity {
  const priority = alertLabels['priority']?.toUpperCase();
  if (isSeverity(priority)) return priority;
  const ruled = matchingRule(policy, alertLabels)?.severity;
  if (ruled) return ruled;
  const label = alertLabels['severity']?.toLowerCase();
  const mapped = label === undefined ? undefined : policy.alerts.severityLabel[label];
  return mapped ?? policy.alerts.defaultSeverity;
}

/** An Alertmanager-shaped group (Alertmanager's v4, Grafana's v1, a generic source's one alert) as a batch. */
export function toAlertBatch(
  policy: Policy,
  payload: Omit<WebhookPayload, 'version'>,
  maxAlerts: number,
): AlertBatch {
  const kept = payload.alerts.slice(0, maxAlerts);
  return {
    receiver: payload.receiver,
    groupKey: payload.groupKey,
    status: payload.status,
    truncatedAlerts: payload.truncatedAlerts + (payload.alerts.length - kept.length),
    externalURL: payload.externalURL,
    alerts: kept.map((a) => {
      const record: AlertRecord = {
        fingerprint: a.fingerprint,
        status: a.status,
        severity: alertSeverity(policy, { ...payload.commonLabels, ...a.labels }),
        labels: a.labels,
        annotations: a.annotations,
        startsAt: a.startsAt,
      };
      const endsAt = endsAtOrUndefined(a.endsAt);
      if (endsAt !== undefined) record.endsAt = endsAt;
      return record;
    }),
  };
}

/** The policy's first mapping rule whose `match` fits the labels, if any. */
export function matchingRule(
  policy: Policy,
  labels: Readonly<Record<string, string>>,
): MappingRule | undefined {
  return policy.alerts.rules.find((rule) =>
    Object.entries(rule.match).every(([label, pattern]) => {
      const value = labels[label] ?? '';
      return pattern.startsWith('~')
        ? new RegExp(`^(?:${pattern.slice(1)})$`).test(value)
        : value === pattern;
    }),
  );
}

const TRUE_WORDS = ['true', 'yes', '1'];

/**
 * The incident a batch opens: the highest severity among its firing alerts,
 * and service, impact, security flag, playbook, title and summary from the
 * first mapping rule that matches (else from the labels), recording which rule.
 */
export function seedIncident(policy: Policy, batch: AlertBatch): IncidentSeed {
  const firing = batch.alerts.filter((a) => a.status === 'firing');
  const relevant = firing.length > 0 ? firing : batch.alerts;
  const first = relevant[0];
  const severity = mostSevere(
    first?.severity ?? policy.alerts.defaultSeverity,
    ...relevant.map((a) => a.severity),
  );
  const labelsOf = first?.labels ?? {};
  const rule = matchingRule(policy, labelsOf);
  const service =
    rule?.service ??
    policy.alerts.serviceLabels.map((name) => labelsOf[name]).find((v) => v !== undefined && v !== '') ??
    policy.service.id;
  const alertNames = [...new Set(relevant.map((a) => a.labels['alertname']).filter((n) => n !== undefined))];
  const name = alertNames.length > 0 ? alertNames.join(', ') : 'Alert';
  const impactLabel = labelsOf['impact']?.toLowerCase();
  const impact: Impact =
    rule?.impact ??
    ((IMPACTS as readonly string[]).includes(impactLabel ?? '') ? (impactLabel as Impact) : 'medium');
  const securityRelated =
    rule?.securityRelated ?? relevant.some((a) => TRUE_WORDS.includes(a.labels['security'] ?? ''));
  const annotationSummary = first?.annotations['summary'] ?? first?.annotations['description'];
  const values = { ...labelsOf, alertname: name, service, summary: annotationSummary };
  const summary = rule?.summary
    ? renderTemplate(rule.summary, values)
    : (annotationSummary ?? `${name} firing on ${service}`);
  const seed: IncidentSeed = {
    title: rule?.title ? renderTemplate(rule.title, values) : `${name} on ${service}`,
    service,
    severity,
    impact,
    securityRelated,
    summary,
    mappingRule: rule?.name ?? 'default',
  };
  if (rule?.playbook) seed.playbook = rule.playbook;
  return seed;
}
