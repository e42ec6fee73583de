import type { AlertBatch, AlertRecord } from './alert-mapping.ts';
import { ALERT_LIMITS, alertSeverity, cleanText } from './alert-mapping.ts';
import { readJsonPath } from './json-path.ts';
import type { Policy } from './policy.ts';
import { isSeverity } from './severity.ts';

/**
 * `POST /webhooks/generic`: any JSON body, read through the policy's
 * `sources.generic.fields` paths into one alert with the labels the mapping
 * rules know (`alertname` = title, `severity`, `service`, `source: generic`;
 * a severity written P0..P3 is also the `priority` label, which wins). One
 * dedup key is one alert group: a redelivery, or the same problem reported
 * again, lands in the incident already open for it.
 */

/** What the body lacks or holds wrongly, naming the policy's path for it. */
export interface GenericSourceProblem {
  field: string;
  message: string;
}

/** A scalar at the path as text: strings as they are (trimmed), numbers and booleans written out. */
function scalar(document: unknown, path: string): string | undefined | GenericSourceProblem {
  const value = readJsonPath(document, path);
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return { field: path, message: `${path}: expected a string` };
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function isProblem(value: unknown): value is GenericSourceProblem {
  return typeof value === 'object' && value !== null;
}

/**
 * A stable fingerprint of the dedup key (FNV-1a, 64 bits, hex): the same key
 * is the same alert, whatever characters it holds.
 */
export function dedupFingerprint(key: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(key)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}

/** The body as a one-alert batch, or the problem with it. `now` dates the alert (the body has no time). */
export function genericToAlertBatch(
  policy: Policy,
  body: unknown,
  now: string,
): AlertBatch | GenericSourceProblem {
  const source = policy.sources.generic;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { field: '(body)', message: 'expected a JSON object' };
  const { fields } = source;
  const read = {
    title: scalar(body, fields.title),
    severity: scalar(body, fields.severity),
    service: scalar(body, fields.service),
    dedupKey: scalar(body, fields.dedupKey),
    status: scalar(body, fields.status),
    summary: scalar(body, fields.summary),
  };
  for (const value of Object.values(read)) if (isProblem(value)) return value;
  const { title, severity, service, dedupKey, status, summary } = read as Record<
    keyof typeof read,
    string | undefined
  >;
  if (title === undefined) return { field: fields.title, message: `${fields.title}: a title is required` };
  // Like Alertmanager's, a value too long or not storable (a NUL) is cut or cleaned and noted, never refused.
  const notes: string[] = [];
  const label = (value: string, path: string) =>
    cleanText(value, ALERT_LIMITS.maxLabelValueLength, `label from ${path}`, notes);
  const labels: Record<string, string> = { alertname: label(title, fields.title), source: 'generic' };
  if (severity !== undefined) {
    labels['severity'] = label(severity, fields.severity);
    if (isSeverity(severity.toUpperCase())) labels['priority'] = severity.toUpperCase();
  }
  if (service !== undefined) labels['service'] = label(service, fields.service);
  const resolved =
    status !== undefined && source.resolvedValues.some((v) => v.toLowerCase() === status.toLowerCase());
  const key = dedupKey ?? title;
  const alert: AlertRecord = {
    fingerprint: dedupFingerprint(key),
    status: resolved ? 'resolved' : 'firing',
    severity: alertSeverity(policy, labels),
    labels,
    annotations:
      summary !== undefined
        ? {
            summary: cleanText(
              summary,
              ALERT_LIMITS.maxAnnotationValueLength,
              `annotation from ${fields.summary}`,
              notes,
            ),
          }
        : {},
    startsAt: now,
  };
  if (resolved) alert.endsAt = now;
  if (notes.length > 0) alert.sanitised = notes;
  const groupNotes: string[] = [];
  const groupKey = cleanText(key, ALERT_LIMITS.maxStringLength, 'dedup key', groupNotes);
  const batch: AlertBatch = {
    receiver: source.receiver,
    groupKey,
    status: alert.status,
    truncatedAlerts: 0,
    externalURL: '',
    alerts: [alert],
  };
  if (groupNotes.length > 0) {
    batch.sanitised = groupNotes;
    batch.identity = { receiver: source.receiver, groupKey: key };
  }
  return batch;
}
