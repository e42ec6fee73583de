import { z } from 'zod';
import { ALERT_LIMITS } from './alert-mapping.ts';

/**
 * Alertmanager's webhook payload, version 4. Alertmanager drops a group for good when the webhook answers a
 * 4xx, so everything Alertmanager can send parses here: label names in any UTF-8 (Prometheus 3's
 * `service.name`, `k8s.pod.name`), any number of labels, values of any length, NULs and ill-formed Unicode.
 * What is too large or not storable is cut or cleaned when the group is mapped (`toAlertBatch`) and noted on
 * the incident, never refused. A 400 is only for what is not a v4 payload at all (no alerts, a label that is
 * not a string, a time that is not one), and it names the field.
 */

/** What an incident stores at most of an alert (see `ALERT_LIMITS`): the webhook accepts more and cuts it. */
export const WEBHOOK_LIMITS = ALERT_LIMITS;

/**
 * A label or annotation set: an object of strings under any names. Built from the body's own properties
 * (`Object.fromEntries`), so a label named `__proto__` or `constructor` stays a label and never reaches a
 * prototype; a value that is not a string is named in the 400 (`alerts.0.labels.severity`).
 */
export const stringMap = () =>
  z.unknown().transform((value, ctx): Record<string, string> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected an object of strings', input: value });
      return z.NEVER;
    }
    const entries = Object.entries(value);
    for (const [name, text] of entries) {
      if (typeof text !== 'string') {
        ctx.addIssue({ code: 'custom', path: [name], message: 'expected a string', input: text });
        return z.NEVER;
      }
    }
    return Object.fromEntries(entries);
  });

export const labels = stringMap();
export const annotations = stringMap();
export const timestamp = z.iso.datetime({ offset: true, local: false, precision: undefined });
export const status = z.enum(['firing', 'resolved']);
/** Alertmanager's fingerprint: 16 hex digits; other sources' ids, within reason. */
export const fingerprint = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[0-9a-zA-Z_-]+$/, 'a hex fingerprint');

export const webhookAlertSchema = z.object({
  status,
  labels,
  annotations: annotations.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  /** Not stored (the alert's rule is in its labels); any length is accepted. */
  generatorURL: z.string().optional(),
  fingerprint,
});

export const webhookPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: z.string().min(1),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status,
  receiver: z.string().min(1),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: annotations.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(webhookAlertSchema).min(1).superRefine(uniqueFingerprints),
});

/** Alertmanager sends each alert of a group once; a repeated fingerprint is a forged or broken payload. */
export function uniqueFingerprints(alerts: readonly { fingerprint: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  alerts.forEach((alert, i) => {
    if (seen.has(alert.fingerprint)) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'fingerprint'],
        message: `duplicate fingerprint ${alert.fingerprint}`,
      });
    }
    seen.add(alert.fingerprint);
  });
}

/**
 * The alert webhooks' body limit (`webhook.maxBodyBytes`, else derived): room for `maxAlertsPerGroup` alerts
 * of `maxAlertBytes` each, plus the envelope (group labels, common labels and annotations, keys) at four more.
 * 1,000 alerts of 16 KiB by default: 15.7 MiB. A group within those limits is never a 413.
 */
export function webhookBodyLimit(webhook: {
  maxBodyBytes?: number | undefined;
  maxAlertsPerGroup: number;
  maxAlertBytes: number;
}): number {
  return webhook.maxBodyBytes ?? derivedBodyLimit(webhook);
}

/** `(maxAlertsPerGroup + 4) × maxAlertBytes`: what a group within the documented limits can weigh. */
export function derivedBodyLimit(webhook: { maxAlertsPerGroup: number; maxAlertBytes: number }): number {
  return (webhook.maxAlertsPerGroup + 4) * webhook.maxAlertBytes;
}

export type WebhookPayload = z.output<typeof webhookPayloadSchema>;
export type WebhookAlert = z.output<typeof webhookAlertSchema>;
