import type { AlertBatch } from './alert-mapping.ts';
import { own } from './alert-mapping.ts';
import type { Policy } from './policy.ts';
import type { Severity } from './severity.ts';

/**
 * Which alerts of a delivery are the alerting pipeline's heartbeat (the policy's `watchdog.alertname`,
 * Prometheus' always-firing `Watchdog`): they never open an incident. See src/workflows/watchdog.ts.
 */

export interface WatchdogSplit {
  /** Alerts named `watchdog.alertname` (firing or resolved). */
  watchdogAlerts: number;
  /** Of those, the firing ones: each delivery with at least one is a heartbeat. */
  firing: number;
  /** The delivery without its Watchdog alerts, when it had others: they are ingested as usual. */
  rest?: AlertBatch;
}

/** The policy's `watchdog` section as the watchdog workflow takes it. */
export function watchdogSettings(policy: Policy): {
  alertname: string;
  timeoutMs: number;
  severity: Severity;
} {
  const { alertname, timeout, severity } = policy.watchdog;
  return { alertname, timeoutMs: timeout, severity };
}

/** Splits a delivery's Watchdog alerts from its others; `undefined` when it has none (the usual case). */
export function splitWatchdogAlerts(policy: Policy, batch: AlertBatch): WatchdogSplit | undefined {
  const name = policy.watchdog.alertname;
  const isWatchdog = (labels: Readonly<Record<string, string>>) => own(labels, 'alertname') === name;
  if (!batch.alerts.some((a) => isWatchdog(a.labels))) return undefined;
  const watchdog = batch.alerts.filter((a) => isWatchdog(a.labels));
  const others = batch.alerts.filter((a) => !isWatchdog(a.labels));
  return {
    watchdogAlerts: watchdog.length,
    firing: watchdog.filter((a) => a.status === 'firing').length,
    ...(others.length > 0
      ? {
          rest: {
            ...batch,
            status: others.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
            alerts: others,
          },
        }
      : {}),
  };
}
