import { z } from 'zod';
import { toAlertBatch } from './alert-mapping.ts';
import type { AlertBatch, AlertLinks } from './alert-mapping.ts';
import {
  annotations,
  fingerprint,
  status,
  stringMap,
  timestamp,
  uniqueFingerprints,
} from './alertmanager.ts';
import type { Policy } from './policy.ts';

/**
 * Grafana Alerting's webhook contact point, payload version "1": Alertmanager's
 * v4 shape (Grafana's alerting embeds Alertmanager) plus `orgId`, `state`,
 * `title`, `message`, and per alert `values`, `valueString`, `dashboardURL`,
 * `panelURL`, `silenceURL`, `imageURL`. As for Alertmanager, whatever Grafana
 * can send parses (label names with a space or a dot, long values, a NUL):
 * what is too large is cut when the group is mapped, and noted.
 */
const url = z.string().optional();
const grafanaLabels = stringMap();

export const grafanaAlertSchema = z.object({
  status,
  labels: grafanaLabels,
  annotations: annotations.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: url,
  fingerprint,
  silenceURL: url,
  dashboardURL: url,
  panelURL: url,
  imageURL: url,
  valueString: z.string().optional(),
  /** Some Grafana versions and forwarders spell it so. */
  valuesString: z.string().optional(),
});

export const grafanaPayloadSchema = z.object({
  version: z.literal('1'),
  groupKey: z.string().min(1),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status,
  receiver: z.string().min(1),
  orgId: z.number().int().optional(),
  state: z.string().optional(),
  title: z.string().optional(),
  message: z.string().optional(),
  groupLabels: grafanaLabels.default({}),
  commonLabels: grafanaLabels.default({}),
  commonAnnotations: annotations.default({}),
  externalURL: z.string().default(''),
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
 * A Grafana delivery as an alert batch, through the same mapping rules (and the
 * same cuts) as Alertmanager's. The receiver is prefixed `grafana/`, so a
 * Grafana contact point and an Alertmanager receiver of the same name never
 * share incidents; the same Grafana group always lands in the same one. The
 * alert's value text is kept as the `value` annotation (unless the rule set
 * one), its links on the alert.
 */
export function grafanaToAlertBatch(policy: Policy, payload: GrafanaPayload, maxAlerts: number): AlertBatch {
  return toAlertBatch(
    policy,
    {
      ...payload,
      receiver: `grafana/${payload.receiver}`,
      alerts: payload.alerts.map((a) => {
        const value = a.valueString ?? a.valuesString;
        const withValue =
          value && !Object.hasOwn(a.annotations, 'value')
            ? { ...a, annotations: { ...a.annotations, value } }
            : a;
        const links = linksOf(a);
        return links ? { ...withValue, links } : withValue;
      }),
    },
    maxAlerts,
  );
}
