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
const labelSet = (maxValue: number) =>
  z
    .record(labelName, z.string().max(maxValue))
    .refine((labels) => Object.keys(labels).length <= WEBHOOK_LIMITS.maxLabels, {
      message: `at most ${WEBHOOK_LIMITS.maxLabels} labels`,
    });
const labels = labelSet(WEBHOOK_LIMITS.maxLabelValueLength);
const annotations = labelSet(WEBHOOK_LIMITS.maxAnnotationValueLength);
const timestamp = z.iso.datetime({ offset: true, local: false, precision: undefined });
const status = z.enum(['firing', 'resolved']);

export const webhookAlertSchema = z.object({
  status,
  labels,
  annotations: annotations.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().max(WEBHOOK_LIMITS.maxStringLength).optional(),
  fingerprint: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[0-9a-zA-Z_-]+$/, 'a hex fingerprint'),
});

export const webhookPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: z.string().min(1).max(WEBHOOK_LIMITS.maxStringLength),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status,
  receiver: z.string().min(1).max(WEBHOOK_LIMITS.maxStringLength),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: annotations.default({}),
  externalURL: z.string().max(WEBHOOK_LIMITS.maxStringLength).default(''),
  alerts: z.array(webhookAlertSchema).min(1),
});

export type WebhookPayload = z.output<typeof webhookPayloadSchema>;
export type WebhookAlert = z.output<typeof webhookAlertSchema>;
