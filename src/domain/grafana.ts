import { z } from 'zod';
import { toAlertBatch } from './alert-mapping.ts';
import type { AlertBatch, AlertLinks } from './alert-mapping.ts';
import { WEBHOOK_LIMITS, annotations, status, text, timestamp, uniqueFingerprints } from './alertmanager.ts';
import type { Policy } from './policy.ts';

/**
 * Grafana Alerting's webhook contact point, payload version "1": Alertmanager's
 * v4 shape (Grafana's alerting embeds Alertmanager) plus `orgId`, `state`,
 * `title`, `message`, and per alert `values`, `valueString`, `dashboardURL`,
 * `panelURL`, `silenceURL`, `imageURL`. Grafana's label names are not
 * Prometheus's (a space or a dot is allowed), so only their length is limited.
 */
const url = text(WEBHOOK_LIMITS.maxStringLength).optional();
const grafanaLabels = z
  .record(text(WEBHOOK_LIMITS.maxLabelNameLength).min(1), text(WEBHOOK_LIMITS.maxLabelValueLength))
  .refine((labels) => Object.keys(labels).length <= WEBHOOK_LIMITS.maxLabels, {
    message: `at most ${WEBHOOK_LIMITS.maxLabels} labels`,
  });

export const grafanaAlertSchema = z.object({
  status,
  labels: grafanaLabels,
  annotations: annotations.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: url,
  fingerprint: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[0-9a-zA-Z_-]+$/, 'a hex fingerprint'),
  silenceURL: url,
  dashboardURL: url,
  panelURL: url,
  imageURL: url,
  valueString: text(WEBHOOK_LIMITS.maxStringLength).optional(),
  /** Some Grafana versions and forwarders spell it so. */
  valuesString: text(WEBHOOK_LIMITS.maxStringLength).optional(),
});

export const grafanaPayloadSchema = z.object({
  version: z.literal('1'),
  groupKey: text(WEBHOOK_LIMITS.maxStringLength).min(1),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status,
  receiver: text(WEBHOOK_LIMITS.maxStringLength).min(1),
  orgId: z.number().int().optional(),
  state: text(64).optional(),
  title: text(WEBHOOK_LIMITS.maxStringLength).optional(),
  message: text(WEBHOOK_LIMITS.maxAnnotationValueLength).optional(),
  groupLabels: grafanaLabels.default({}),
  commonLabels: grafanaLabels.default({}),
  commonAnnotations: annotations.default({}),
  externalURL: text(WEBHOOK_LIMITS.maxStringLength).default(''),
  alerts: z.array(grafanaAlertSchema).min(1).superRefine(uniqueFingerprints),
});

export type GrafanaPayload = z.output<typeof grafanaPayloadSchema>;

/** Grafana sends empty strings for links it has none of. */
function linksOf(alert: GrafanaPayload['alerts'][number]): AlertLinks | undefined {
  const links: AlertLinks = {};
  if (alert.dashboardURL) links.dashboard = alert.dashboardURL;
  if (alert.panelURL) links.panel = alert.panelURL;
  if (alert.silenceURL) links.silence = alert.silenceURL;
  if (alert.generatorURL) links.source = alert.generatorURL;
  return Object.keys(links).length > 0 ? links : undefined;
}

/**
 * A Grafana delivery as an alert batch, through the same mapping rules as
 * Alertmanager's. The receiver is prefixed `grafana/`, so a Grafana contact
 * point and an Alertmanager receiver of the same name never share incidents;
 * the same Grafana group always lands in the same one. The alert's value text
 * is kept as the `value` annotation (unless the rule set one).
 */
export function grafanaToAlertBatch(policy: Policy, payload: GrafanaPayload, maxAlerts: number): AlertBatch {
  const batch = toAlertBatch(
    policy,
    {
      ...payload,
      receiver: `grafana/${payload.receiver}`,
      alerts: payload.alerts.map((a) => {
        const value = a.valueString ?? a.valuesString;
        return value && a.annotations['value'] === undefined
          ? { ...a, annotations: { ...a.annotations, value } }
          : a;
      }),
    },
    maxAlerts,
  );
  batch.alerts.forEach((record, i) => {
    const alert = payload.alerts[i];
    const links = alert ? linksOf(alert) : undefined;
    if (links) record.links = links;
  });
  return batch;
}
