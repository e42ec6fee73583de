import { z } from 'zod';

/**
 * Alertmanager's webhook payload, version 4. Limits are part of the schema so that a hostile body is a 400
 * that names the field, never a 5xx and never a started workflow.
 */
export const WEBHOOK_LIMITS = {
  maxLabels: 64,
  maxLabelNameLength: 256,
  maxLabelValueLength: 4_096,
  maxAnnotationValueLength: 16_384,
  maxStringLength: 8_192,
} as const;

const labelName = z
  .string()
  .min(1)
  .max(WEBHOOK_LIMITS.maxLabelNameLength)
  .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a Prometheus label name');
/** Text that is valid Unicode (no lone surrogates) and has no NUL: anything else is not from Alertmanager. */
export const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((value) => value.isWellFormed() && !value.includes('\u0000'), 'must be well-formed Unicode text');
const labelSet = (maxValue: number) =>
  z
    .record(labelName, text(maxValue))
    .refine((labels) => Object.keys(labels).length <= WEBHOOK_LIMITS.maxLabels, {
      message: `at most ${WEBHOOK_LIMITS.maxLabels} labels`,
    });
export const labels = labelSet(WEBHOOK_LIMITS.maxLabelValueLength);
export const annotations = labelSet(WEBHOOK_LIMITS.maxAnnotationValueLength);
export const timestamp = z.iso.datetime({ offset: true, local: false, precision: undefined });
export const status = z.enum(['firing', 'resolved']);

export const webhookAlertSchema = z.object({
  status,
  labels,
  annotations: annotations.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: text(WEBHOOK_LIMITS.maxStringLength).optional(),
  fingerprint: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[0-9a-zA-Z_-]+$/, 'a hex fingerprint'),
});

export const webhookPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: text(WEBHOOK_LIMITS.maxStringLength).min(1),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status,
  receiver: text(WEBHOOK_LIMITS.maxStringLength).min(1),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: annotations.default({}),
  externalURL: text(WEBHOOK_LIMITS.maxStringLength).default(''),
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

export type WebhookPayload = z.output<typeof webhookPayloadSchema>;
export type WebhookAlert = z.output<typeof webhookAlertSchema>;
