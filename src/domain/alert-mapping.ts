import { utf8Length } from './utf8.ts';
import type { Policy } from './policy.ts';
import { renderTemplate } from './templates.ts';
import { IMPACTS, SEVERITIES, isSeverity, mostSevere } from './severity.ts';
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
  /**
   * What ingestion cut or cleaned to keep the alert within the stored limits ({@link ALERT_LIMITS},
   * `webhook.maxAlertBytes`): a label value over 4 KiB, the labels after the 64th, a NUL. Absent when nothing was.
   */
  sanitised?: string[];
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
  /** What ingestion cut or cleaned in the group as a whole (a long group key, alerts over the per-group limit). */
  sanitised?: string[];
  /**
   * The receiver and group key as they were sent, when the stored ones had to be cut or cleaned: the workflow id
   * derives from these (`alertBatchWorkflowId`), so deduplication stays exact. Never sent to the workflow
   * ({@link splitAlertBatch} leaves it out).
   */
  identity?: { receiver: string; groupKey: string };
}

/** One alert of a group as a source sends it, before it is mapped (Alertmanager's v4 alert, Grafana's). */
export interface AlertInput {
  fingerprint: string;
  status: 'firing' | 'resolved';
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  startsAt: string;
  endsAt?: string | undefined;
  links?: AlertLinks | undefined;
}

/** An Alertmanager-shaped group as a source sends it (Alertmanager's v4, Grafana's v1). */
export interface AlertGroupInput {
  receiver: string;
  groupKey: string;
  status: 'firing' | 'resolved';
  truncatedAlerts: number;
  externalURL: string;
  commonLabels: Readonly<Record<string, string>>;
  alerts: readonly AlertInput[];
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

/**
 * What an incident stores of an alert at most. A source may send more (Prometheus 3 allows any UTF-8 label
 * name, and Alertmanager forwards whatever its clients post): the webhook accepts it, because Alertmanager
 * drops a group for good on a 4xx, and stores it cut to these limits, saying so on the alert
 * ({@link AlertRecord.sanitised}) and on the incident's timeline.
 */
export const ALERT_LIMITS = {
  maxLabels: 64,
  maxLabelNameLength: 256,
  maxLabelValueLength: 4_096,
  maxAnnotations: 64,
  maxAnnotationValueLength: 16_384,
  /** Receiver, group key, external URL, links. */
  maxStringLength: 8_192,
  /** An incident's service (the `IncidentService` search attribute, whose values Temporal caps at 2 KiB). */
  maxServiceLength: 255,
  maxTitleLength: 512,
  /** Notes kept per alert or group; the rest are counted. */
  maxNotes: 12,
} as const;

/** The record's own value for a key, never one inherited from `Object.prototype` (`constructor`, `toString`). */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** `text` cut to at most `max` characters, the last one `…`, never splitting a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** A name or value as a note shows it: quoted, and short. */
function shown(text: string): string {
  return JSON.stringify(cutText(text, 64));
}

/**
 * `value` made storable: well-formed Unicode (a lone surrogate becomes U+FFFD), no NUL (U+FFFD too), at most
 * `max` characters. Each change is noted as `<what>: …`.
 */
export function cleanText(value: string, max: number, what: string, notes: string[]): string {
  let text = value;
  if (!text.isWellFormed()) {
    text = text.toWellFormed();
    notes.push(`${what}: ill-formed Unicode replaced`);
  }
  if (text.includes('\u0000')) {
    text = text.replaceAll('\u0000', '\uFFFD');
    notes.push(`${what}: NUL replaced`);
  }
  if (text.length > max) {
    text = cutText(text, max);
    notes.push(`${what}: ${value.length} characters cut to ${max}`);
  }
  return text;
}

/** At most {@link ALERT_LIMITS.maxNotes} notes, the rest counted. */
function capped(notes: readonly string[]): string[] {
  const max = ALERT_LIMITS.maxNotes;
  return notes.length <= max
    ? [...notes]
    : [...notes.slice(0, max - 1), `and ${notes.length - max + 1} more`];
}

/** The label names the policy reads: kept first when an alert has more labels than are stored. */
export function policyLabelNames(policy: Policy): Set<string> {
  return new Set([
    'alertname',
    'severity',
    'priority',
    'impact',
    'security',
    ...policy.alerts.serviceLabels,
    ...policy.alerts.rules.flatMap((rule) => Object.keys(rule.match)),
  ]);
}

/**
 * A label or annotation set made storable: at most `maxEntries` entries (those named in `first` kept first,
 * then in the order sent), names and values cleaned and cut ({@link cleanText}), in the order sent. Built
 * with own properties only, so a label named `__proto__` or `constructor` is a label like any other.
 */
function cleanSet(
  set: Readonly<Record<string, string>>,
  kind: 'label' | 'annotation',
  limits: { maxEntries: number; maxValue: number },
  first: ReadonlySet<string>,
  notes: string[],
): Record<string, string> {
  const entries = Object.entries(set);
  const byPriority =
    entries.length <= limits.maxEntries
      ? entries.map((_, i) => i)
      : [
          ...entries.flatMap(([name], i) => (first.has(name) ? [i] : [])),
          ...entries.flatMap(([name], i) => (first.has(name) ? [] : [i])),
        ];
  const kept = new Map<number, [string, string]>();
  const names = new Set<string>();
  const dropped: string[] = [];
  for (const i of byPriority) {
    const [rawName, rawValue] = entries[i] as [string, string];
    if (kept.size >= limits.maxEntries) {
      dropped.push(rawName);
      continue;
    }
    const name = cleanText(rawName, ALERT_LIMITS.maxLabelNameLength, `${kind} name ${shown(rawName)}`, notes);
    if (names.has(name)) {
      dropped.push(rawName);
      continue;
    }
    names.add(name);
    kept.set(i, [name, cleanText(rawValue, limits.maxValue, `${kind} ${shown(name)}`, notes)]);
  }
  if (dropped.length > 0) {
    const listed = dropped.slice(0, 5).map(shown).join(', ');
    notes.push(
      `${kind}s: ${dropped.length} of ${entries.length} not kept (at most ${limits.maxEntries}): ${listed}${dropped.length > 5 ? ', …' : ''}`,
    );
  }
  return Object.fromEntries([...kept.entries()].sort(([a], [b]) => a - b).map(([, entry]) => entry));
}

/** Bytes of an alert's labels, annotations and links as JSON. */
function storedBytes(record: AlertRecord): number {
  return utf8Length(JSON.stringify([record.labels, record.annotations, record.links ?? null]));
}

/** Values shorter than this are never cut to fit an alert's budget. */
const MIN_CUT = 256;

/**
 * Keeps the alert's labels, annotations and links within `budget` bytes (`webhook.maxAlertBytes`): cuts the
 * longest annotation, then the longest label the policy does not read, until it fits or nothing long is left.
 */
function fitBudget(record: AlertRecord, budget: number, read: ReadonlySet<string>, notes: string[]): void {
  const json = JSON.stringify([record.labels, record.annotations, record.links ?? null]);
  if (json.length * 3 <= budget) return;
  const before = utf8Length(json);
  let size = before;
  // Each round shortens one value that is over MIN_CUT: at most one round per value and two per name.
  for (let round = 0; size > budget && round < 4 * ALERT_LIMITS.maxLabels; round++) {
    const longest = (set: Record<string, string>, skip: ReadonlySet<string>) =>
      Object.entries(set)
        .filter(([name, value]) => value.length > MIN_CUT && !skip.has(name))
        .reduce<[string, string] | undefined>((a, e) => (a && a[1].length >= e[1].length ? a : e), undefined);
    const annotation = longest(record.annotations, new Set());
    const label = annotation ? undefined : longest(record.labels, read);
    const target = annotation ? record.annotations : label ? record.labels : undefined;
    const entry = annotation ?? label;
    if (!target || !entry) break;
    const [name, value] = entry;
    // Defined, not assigned: a label may be called `__proto__`, and assigning that would change nothing.
    Object.defineProperty(target, name, {
      value: cutText(value, Math.max(MIN_CUT, value.length - (size - budget) - 1)),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    size = storedBytes(record);
  }
  notes.push(`labels and annotations: ${before} bytes cut to ${size} (webhook.maxAlertBytes ${budget})`);
}

/** Label values that mean yes (`security="true"`). */
const TRUE_WORDS = ['true', 'yes', '1'];

/** Alertmanager sends `0001-01-01T00:00:00Z` as endsAt for firing alerts: that means "unknown". */
function endsAtOrUndefined(endsAt: string | undefined): string | undefined {
  return endsAt === undefined || endsAt.startsWith('0001-') ? undefined : endsAt;
}

/**
 * The procedures' severity for one alert: a `priority` label P0..P3 wins, then
 * the first matching mapping rule's severity, then the `severity` label table.
 * Every lookup by a label's value is of own properties: `severity="constructor"`
 * is an unknown severity (the default), not `Object`.
 */
export function alertSeverity(policy: Policy, alertLabels: Readonly<Record<string, string>>): Severity {
  const priority = own(alertLabels, 'priority')?.toUpperCase();
  if (isSeverity(priority)) return priority;
  const ruled = matchingRule(policy, alertLabels)?.severity;
  if (ruled) return ruled;
  const label = own(alertLabels, 'severity')?.toLowerCase();
  const mapped = label === undefined ? undefined : own(policy.alerts.severityLabel, label);
  return isSeverity(mapped) ? mapped : policy.alerts.defaultSeverity;
}

/**
 * The order in which a group's alerts are kept when it must be cut (to `webhook.maxAlertsPerGroup`, or into
 * signals that fit Temporal's payload limit): first those the incident's opening reads ({@link seedIncident})
 * — the first firing alert (its labels choose the mapping rule, service and title), the most severe firing
 * one, the first security-flagged one, the first of each alert name — then the other firing alerts, most
 * severe first, then the rest in the order sent. So what is kept opens the incident the whole group would
 * have: the same severity, rule, playbook and service. Indexes into `alerts`.
 */
export function keepOrder(
  alerts: readonly { status: string; severity: Severity; labels: Readonly<Record<string, string>> }[],
): number[] {
  const all = alerts.map((_, i) => i);
  const firing = all.filter((i) => alerts[i]?.status === 'firing');
  const relevant = firing.length > 0 ? firing : all;
  const rank = (i: number) => SEVERITIES.indexOf(alerts[i]?.severity ?? 'P3');
  const order: number[] = [];
  const taken = new Set<number>();
  const take = (i: number | undefined) => {
    if (i === undefined || taken.has(i)) return;
    taken.add(i);
    order.push(i);
  };
  const bySeverity = [...relevant].sort((a, b) => rank(a) - rank(b) || a - b);
  take(relevant[0]);
  take(bySeverity[0]);
  take(relevant.find((i) => TRUE_WORDS.includes(own(alerts[i]?.labels ?? {}, 'security') ?? '')));
  const names = new Set<string>();
  for (const i of relevant) {
    const name = own(alerts[i]?.labels ?? {}, 'alertname');
    if (name === undefined || names.has(name)) continue;
    names.add(name);
    take(i);
  }
  for (const i of bySeverity) take(i);
  for (const i of all) take(i);
  return order;
}

/**
 * An Alertmanager-shaped group (Alertmanager's v4, Grafana's v1) as a batch. Nothing a source can send is
 * refused here: each alert's severity is read from all its labels and the group's common labels, over the
 * whole group, before anything is cut; then at most `maxAlerts` alerts are kept ({@link keepOrder}: the most
 * severe and those that choose the rule, so the incident is the one the whole group calls for), each cut to
 * {@link ALERT_LIMITS} and `webhook.maxAlertBytes`, and every cut is noted on the alert or the batch.
 */
export function toAlertBatch(policy: Policy, payload: AlertGroupInput, maxAlerts: number): AlertBatch {
  const common = payload.commonLabels;
  const severities = payload.alerts.map((a) => alertSeverity(policy, { ...common, ...a.labels }));
  const order = keepOrder(
    payload.alerts.map((a, i) => ({ status: a.status, severity: severities[i] ?? 'P3', labels: a.labels })),
  );
  const kept = order.slice(0, Math.max(1, maxAlerts)).sort((a, b) => a - b);
  const read = policyLabelNames(policy);
  const none = new Set<string>();
  const alerts = kept.map((i) => {
    const a = payload.alerts[i] as AlertInput;
    const notes: string[] = [];
    const record: AlertRecord = {
      fingerprint: a.fingerprint,
      status: a.status,
      severity: severities[i] ?? policy.alerts.defaultSeverity,
      labels: cleanSet(
        a.labels,
        'label',
        { maxEntries: ALERT_LIMITS.maxLabels, maxValue: ALERT_LIMITS.maxLabelValueLength },
        read,
        notes,
      ),
      annotations: cleanSet(
        a.annotations,
        'annotation',
        { maxEntries: ALERT_LIMITS.maxAnnotations, maxValue: ALERT_LIMITS.maxAnnotationValueLength },
        none,
        notes,
      ),
      startsAt: a.startsAt,
    };
    const endsAt = endsAtOrUndefined(a.endsAt);
    if (endsAt !== undefined) record.endsAt = endsAt;
    if (a.links) {
      const links: AlertLinks = {};
      for (const [name, url] of Object.entries(a.links) as [keyof AlertLinks, string | undefined][]) {
        if (url) links[name] = cleanText(url, ALERT_LIMITS.maxStringLength, `${name} link`, notes);
      }
      if (Object.keys(links).length > 0) record.links = links;
    }
    fitBudget(record, policy.webhook.maxAlertBytes, read, notes);
    if (notes.length > 0) record.sanitised = capped(notes);
    return record;
  });
  const notes: string[] = [];
  const receiver = cleanText(payload.receiver, ALERT_LIMITS.maxStringLength, 'receiver', notes);
  const groupKey = cleanText(payload.groupKey, ALERT_LIMITS.maxStringLength, 'groupKey', notes);
  const externalURL = cleanText(payload.externalURL, ALERT_LIMITS.maxStringLength, 'externalURL', notes);
  const dropped = payload.alerts.length - kept.length;
  if (dropped > 0) {
    notes.push(
      `${dropped} of ${payload.alerts.length} alerts not recorded (webhook.maxAlertsPerGroup ${maxAlerts}); the most severe were kept`,
    );
  }
  const batch: AlertBatch = {
    receiver,
    groupKey,
    status: payload.status,
    truncatedAlerts: payload.truncatedAlerts + dropped,
    externalURL,
    alerts,
  };
  if (notes.length > 0) batch.sanitised = capped(notes);
  if (receiver !== payload.receiver || groupKey !== payload.groupKey)
    batch.identity = { receiver: payload.receiver, groupKey: payload.groupKey };
  return batch;
}

/**
 * The batch as the workflow receives it: in signals whose JSON stays under `maxBytes` each (Temporal refuses a
 * payload over 2 MB), the first holding what the incident's opening reads ({@link keepOrder}), so it opens as
 * the whole group says; the others add their alerts to it. Each has the group's fields, the alerts in the
 * order sent, and no `identity`; the group's notes go with the first. One batch that fits is sent as it is.
 */
export function splitAlertBatch(batch: AlertBatch, maxBytes: number): AlertBatch[] {
  const { identity: _identity, alerts, sanitised, ...group } = batch;
  const whole = sanitised ? { ...group, alerts, sanitised } : { ...group, alerts };
  const envelope = utf8Length(JSON.stringify({ ...whole, alerts: [] }));
  const sizes = alerts.map((a) => utf8Length(JSON.stringify(a)) + 1);
  if (envelope + sizes.reduce((sum, n) => sum + n, 0) <= maxBytes) return [whole];
  const chunks: number[][] = [];
  let current: number[] = [];
  let size = envelope;
  for (const i of keepOrder(alerts)) {
    const n = sizes[i] ?? 0;
    if (current.length > 0 && size + n > maxBytes) {
      chunks.push(current);
      current = [];
      size = envelope;
    }
    current.push(i);
    size += n;
  }
  if (current.length > 0) chunks.push(current);
  return chunks.map((chunk, c) => {
    const part: AlertBatch = {
      ...group,
      alerts: chunk.sort((a, b) => a - b).map((i) => alerts[i] as AlertRecord),
    };
    if (c === 0 && sanitised) part.sanitised = sanitised;
    return part;
  });
}

/** The policy's first mapping rule whose `match` fits the labels, if any (a label it names must be the alert's own). */
export function matchingRule(
  policy: Policy,
  labels: Readonly<Record<string, string>>,
): MappingRule | undefined {
  return policy.alerts.rules.find((rule) =>
    Object.entries(rule.match).every(([label, pattern]) => {
      const value = own(labels, label) ?? '';
      return pattern.startsWith('~')
        ? new RegExp(`^(?:${pattern.slice(1)})$`).test(value)
        : value === pattern;
    }),
  );
}

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
  const service = cutText(
    rule?.service ??
      policy.alerts.serviceLabels
        .map((name) => own(labelsOf, name))
        .find((v) => v !== undefined && v !== '') ??
      policy.service.id,
    ALERT_LIMITS.maxServiceLength,
  );
  const alertNames = [
    ...new Set(relevant.map((a) => own(a.labels, 'alertname')).filter((n) => n !== undefined)),
  ];
  const name = alertNames.length > 0 ? alertNames.join(', ') : 'Alert';
  const impactLabel = own(labelsOf, 'impact')?.toLowerCase();
  const impact: Impact =
    rule?.impact ??
    ((IMPACTS as readonly string[]).includes(impactLabel ?? '') ? (impactLabel as Impact) : 'medium');
  const securityRelated =
    rule?.securityRelated ?? relevant.some((a) => TRUE_WORDS.includes(own(a.labels, 'security') ?? ''));
  const annotationSummary = first
    ? (own(first.annotations, 'summary') ?? own(first.annotations, 'description'))
    : undefined;
  const values = { ...labelsOf, alertname: name, service, summary: annotationSummary };
  const summary = rule?.summary
    ? renderTemplate(rule.summary, values)
    : (annotationSummary ?? `${name} firing on ${service}`);
  const seed: IncidentSeed = {
    title: cutText(
      rule?.title ? renderTemplate(rule.title, values) : `${name} on ${service}`,
      ALERT_LIMITS.maxTitleLength,
    ),
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
