import { resolveCredential, resolveEndpoint } from './credential.ts';
import type { Credential } from './credential.ts';
import { DeliveryError } from './errors.ts';
import { DEFAULT_TIMEOUT_MS, excerpt, parseJson, post, statusFailure } from './http.ts';
import { truncateText } from './text.ts';

/**
 * The one place that knows PagerDuty's shapes: the Events API v2 (trigger,
 * acknowledge and resolve alerts, deduplicated by `dedup_key`). The v3
 * webhooks PagerDuty sends back are verified by the API (src/starter/api/verify.ts).
 *
 * 202 `{status:"success", dedup_key}` is success. Retried: 429 and 5xx (the
 * Events API asks clients to retry both); refused: 400 `invalid event` with
 * PagerDuty's `errors`, and every other status.
 */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
/** `payload.summary` limit; longer summaries are cut, not refused. */
export const PAGERDUTY_SUMMARY_MAX = 1024;
/** `dedup_key` limit. */
export const PAGERDUTY_DEDUP_KEY_MAX = 255;

export type PagerSeverity = 'critical' | 'error' | 'warning' | 'info';
export type PagerEventAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagerLink {
  href: string;
  text: string;
}

/** An alert to open (or to add to, when the dedup key has an open one). */
export interface PagerTrigger {
  dedupKey: string;
  summary: string;
  /** Where the problem is: the service or host. */
  source: string;
  severity: PagerSeverity;
  component?: string;
  group?: string;
  class?: string;
  customDetails?: Record<string, unknown>;
  links?: PagerLink[];
  /** ISO 8601 time the problem was detected. */
  timestamp?: string;
}

export interface PagerAccepted {
  dedupKey: string;
}

/** What the activities need from the pager. */
export interface PagerClient {
  trigger(event: PagerTrigger): Promise<PagerAccepted>;
  acknowledge(dedupKey: string): Promise<PagerAccepted>;
  resolve(dedupKey: string): Promise<PagerAccepted>;
}

export interface PagerDutyEventsOptions {
  /** The integration's routing key (PAGERDUTY_ROUTING_KEY), or how to get it at call time. */
  routingKey: Credential;
  /** PAGERDUTY_EVENTS_URL; PagerDuty's own by default. */
  eventsUrl?: Credential;
  timeoutMs?: number;
}

/** The severity PagerDuty shows for an incident severity. */
export function pagerSeverity(severity: 'P0' | 'P1' | 'P2' | 'P3'): PagerSeverity {
  switch (severity) {
    case 'P0':
      return 'critical';
    case 'P1':
      return 'error';
    case 'P2':
      return 'warning';
    case 'P3':
      return 'info';
  }
}

/**
 * The dedup key of an incident's page to one role, `<incident id>:<role>`:
 * retried or repeated triggers land on the same PagerDuty alert, and
 * acknowledging or resolving the incident reaches it again.
 */
export function dedupKey(incidentId: string, role: string): string {
  return `${incidentId}:${role}`.slice(0, PAGERDUTY_DEDUP_KEY_MAX);
}

/** The PagerDuty Events API v2. */
export class PagerDutyEvents implements PagerClient {
  private readonly routingKey: Credential;
  private readonly eventsUrl: Credential;
  private readonly timeoutMs: number;

  constructor(options: PagerDutyEventsOptions) {
    this.routingKey = options.routingKey;
    this.eventsUrl = options.eventsUrl ?? PAGERDUTY_EVENTS_URL;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Opens an alert; the summary is cut to 1,024 characters. */
  trigger(event: PagerTrigger): Promise<PagerAccepted> {
    const payload: Record<string, unknown> = {
      summary: truncateText(event.summary, PAGERDUTY_SUMMARY_MAX),
      source: event.source,
      severity: event.severity,
    };
    if (event.timestamp !== undefined) payload.timestamp = event.timestamp;
    if (event.component !== undefined) payload.component = event.component;
    if (event.group !== undefined) payload.group = event.group;
    if (event.class !== undefined) payload.class = event.class;
    if (event.customDetails !== undefined) payload.custom_details = event.customDetails;
    return this.send('trigger', event.dedupKey, {
      payload,
      ...(event.links?.length ? { links: event.links.map((l) => ({ href: l.href, text: l.text })) } : {}),
    });
  }

  /** Acknowledges the alert with this dedup key (stops its PagerDuty escalation). */
  acknowledge(dedupKey: string): Promise<PagerAccepted> {
    return this.send('acknowledge', dedupKey);
  }

  /** Resolves the alert with this dedup key. */
  resolve(dedupKey: string): Promise<PagerAccepted> {
    return this.send('resolve', dedupKey);
  }

  private async send(
    action: PagerEventAction,
    key: string,
    extra: Record<string, unknown> = {},
  ): Promise<PagerAccepted> {
    const routingKey = resolveCredential(
      'pagerduty',
      'the routing key (PAGERDUTY_ROUTING_KEY)',
      this.routingKey,
    );
    const url = resolveEndpoint('pagerduty', 'the events URL (PAGERDUTY_EVENTS_URL)', this.eventsUrl);
    const secrets = [routingKey];
    const answer = await post({
      provider: 'pagerduty',
      url,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ routing_key: routingKey, event_action: action, dedup_key: key, ...extra }),
      timeoutMs: this.timeoutMs,
      secrets,
    });
    const body = parseJson(answer.text) as
      { status?: unknown; message?: unknown; dedup_key?: unknown; errors?: unknown } | undefined;
    if (answer.status >= 200 && answer.status < 300 && body?.status === 'success')
      return { dedupKey: typeof body.dedup_key === 'string' ? body.dedup_key : key };
    const errors = Array.isArray(body?.errors) ? body.errors.map(String).join('; ') : '';
    const message = typeof body?.message === 'string' ? body.message : '';
    const detail = [message, errors].filter(Boolean).join(': ') || excerpt(answer.text);
    if (answer.status >= 200 && answer.status < 300)
      throw DeliveryError.refused('pagerduty', `PagerDuty did not accept the ${action}: ${detail}`, {
        status: answer.status,
        secrets,
      });
    throw statusFailure('pagerduty', answer, `${action} ${detail}`, { secrets });
  }
}
