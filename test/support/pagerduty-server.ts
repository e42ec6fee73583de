import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { HttpStandIn, Recorded, answerFailure, mediaType, sendJson } from './stand-in.ts';
import type { HttpFailure, InjectedFailure, ReceivedRequest } from './stand-in.ts';

export interface PagerDutyEvent {
  routingKey: string;
  action: 'trigger' | 'acknowledge' | 'resolve';
  dedupKey: string;
  payload?: {
    summary: string;
    source: string;
    severity: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: unknown;
    timestamp?: string;
  };
  links?: { href: string; text?: string }[];
  at: number;
}

/** A PagerDuty alert as the events left it. */
export interface PagerDutyAlert {
  dedupKey: string;
  status: 'triggered' | 'acknowledged' | 'resolved';
  summary: string;
  severity: string;
  events: number;
}

const ACTIONS = ['trigger', 'acknowledge', 'resolve'];
const SEVERITIES = ['critical', 'error', 'warning', 'info'];

/**
 * A local stand-in for the PagerDuty Events API v2 (`POST /v2/enqueue`), as
 * strict as PagerDuty about the event: a 32-character `routing_key` (and the
 * configured one, if any), `event_action` in trigger/acknowledge/resolve,
 * `dedup_key` ≤ 255 and required to acknowledge or resolve, and for a
 * trigger a payload with `summary` (≤ 1,024), `source` and `severity`.
 * Answers 202 `{status:"success", message:"Event processed", dedup_key}` or
 * 400 `{status:"invalid event", message:"Event object is invalid", errors}`.
 * `failures` injects 429 (Retry-After), 5xx, or a hang.
 */
export class PagerDutyStandIn extends HttpStandIn {
  readonly failures: InjectedFailure[] = [];
  /** Accepted events, in order. */
  readonly events = new Recorded<PagerDutyEvent>('PagerDuty events');
  /** Alerts by dedup key. */
  readonly alerts = new Map<string, PagerDutyAlert>();
  private readonly routingKey: string | undefined;

  constructor(options: { routingKey?: string } = {}) {
    super();
    this.routingKey = options.routingKey;
  }

  /** Listens; answers the events URL (PAGERDUTY_EVENTS_URL). */
  async start(): Promise<string> {
    return `${await this.listen()}/v2/enqueue`;
  }

  /** A 429 with Retry-After, as PagerDuty throttles a routing key. */
  static throttled(retryAfterSeconds = 1): HttpFailure {
    return {
      status: 429,
      retryAfter: String(retryAfterSeconds),
      body: { status: 'throttle event', message: 'Requests for this service are arriving too quickly.' },
    };
  }

  protected handle(request: ReceivedRequest, res: ServerResponse): void {
    if (request.path !== '/v2/enqueue') return sendJson(res, 404, { status: 'not found' });
    if (request.method !== 'POST') return sendJson(res, 405, { status: 'method not allowed' });
    const invalid = (errors: string[]) =>
      sendJson(res, 400, { status: 'invalid event', message: 'Event object is invalid', errors });
    if (mediaType(request.headers) !== 'application/json')
      return invalid(['Content-Type must be application/json']);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(request.body) as Record<string, unknown>;
    } catch {
      return invalid(['Request body is not valid JSON']);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return invalid(['Event must be an object']);
    const errors = validate(body);
    if (errors.length === 0 && this.routingKey !== undefined && body.routing_key !== this.routingKey)
      errors.push("'routing_key' is invalid");
    if (errors.length > 0) return invalid(errors);
    const failure = this.failures.shift();
    if (failure !== undefined) return answerFailure(res, failure);

    const action = body.event_action;
    const dedupKey = typeof body.dedup_key === 'string' ? body.dedup_key : randomBytes(16).toString('hex');
    const payload = body.payload as PagerDutyEvent['payload'];
    const event: PagerDutyEvent = {
      routingKey: String(body.routing_key),
      action: action as PagerDutyEvent['action'],
      dedupKey,
      ...(payload && action === 'trigger' ? { payload } : {}),
      ...(Array.isArray(body.links) ? { links: body.links as PagerDutyEvent['links'] } : {}),
      at: Date.now(),
    };
    const alert = this.alerts.get(dedupKey);
    if (event.action === 'trigger' && event.payload) {
      // A trigger on an open alert is deduplicated into it; on a resolved one it opens a new alert.
      if (alert && alert.status !== 'resolved') alert.events += 1;
      else
        this.alerts.set(dedupKey, {
          dedupKey,
          status: 'triggered',
          summary: event.payload.summary,
          severity: event.payload.severity,
          events: 1,
        });
    } else if (alert && alert.status !== 'resolved') {
      alert.status = event.action === 'acknowledge' ? 'acknowledged' : 'resolved';
      alert.events += 1;
    }
    this.events.push(event);
    sendJson(res, 202, { status: 'success', message: 'Event processed', dedup_key: dedupKey });
  }
}

function validate(body: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const key = body.routing_key;
  if (typeof key !== 'string' || key === '') errors.push("'routing_key' is missing or blank");
  else if (key.length !== 32) errors.push("'routing_key' must be 32 characters");
  const action = body.event_action;
  if (typeof action !== 'string' || !ACTIONS.includes(action))
    errors.push("'event_action' must be one of trigger, acknowledge, resolve");
  const dedup = body.dedup_key;
  if (dedup !== undefined && (typeof dedup !== 'string' || dedup === '' || dedup.length > 255))
    errors.push("'dedup_key' must be a non-empty string of at most 255 characters");
  if ((action === 'acknowledge' || action === 'resolve') && dedup === undefined)
    errors.push(`'dedup_key' is required to ${action}`);
  if (action === 'trigger') {
    const payload = body.payload as Record<string, unknown> | undefined;
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      errors.push("'payload' is missing or not an object");
    } else {
      const summary = payload.summary;
      if (typeof summary !== 'string' || summary.trim() === '')
        errors.push("'payload.summary' is missing or blank");
      else if (summary.length > 1024) errors.push("'payload.summary' must be at most 1024 characters");
      if (typeof payload.source !== 'string' || payload.source.trim() === '')
        errors.push("'payload.source' is missing or blank");
      if (typeof payload.severity !== 'string' || !SEVERITIES.includes(payload.severity))
        errors.push("'payload.severity' must be one of critical, error, warning, info");
      for (const field of ['component', 'group', 'class'] as const)
        if (payload[field] !== undefined && typeof payload[field] !== 'string')
          errors.push(`'payload.${field}' must be a string`);
      if (
        payload.timestamp !== undefined &&
        (typeof payload.timestamp !== 'string' || Number.isNaN(Date.parse(payload.timestamp)))
      )
        errors.push("'payload.timestamp' must be an ISO 8601 timestamp");
    }
  }
  if (body.links !== undefined) {
    const links = body.links;
    if (!Array.isArray(links) || links.some((l) => typeof (l as { href?: unknown })?.href !== 'string'))
      errors.push("'links' must be an array of objects with an 'href'");
  }
  return errors;
}
