import type { Policy } from '../../domain/policy.ts';
import type { TaskQueueBacklog } from '../client/incidents.ts';

/** Which bound a refused delivery passed. */
export type BackpressureBound = 'in_flight' | 'queue_backlog';

export interface BackpressureOptions {
  /** This API's ingest calls to Temporal not yet answered, above which deliveries are refused. */
  maxInFlight: number;
  /** Workflow tasks waiting on the incidents task queue above which deliveries are refused; 0: not asked. */
  maxQueueBacklog: number;
  /** How often Temporal is asked for the task queue's backlog, at most. */
  pollMs: number;
  /** What the 503's `Retry-After` says. */
  retryAfterSeconds: number;
  /** Asks Temporal for the backlog (the gateway's `taskQueueBacklog`); absent, only the in-flight bound holds. */
  probe?: (() => Promise<TaskQueueBacklog>) | undefined;
  /** Told when asking failed (the backlog is then unknown, and never the reason to refuse). */
  onProbeError?: (err: unknown) => void;
  now?: () => number;
}

/** The options from the policy's `webhook.backpressure`. */
export function backpressureOptions(
  policy: Policy,
  probe: BackpressureOptions['probe'],
): BackpressureOptions {
  const bp = policy.webhook.backpressure;
  return {
    maxInFlight: bp.maxInFlight,
    maxQueueBacklog: bp.maxQueueBacklog,
    pollMs: bp.queueBacklogPollSeconds * 1000,
    retryAfterSeconds: bp.retryAfterSeconds,
    probe,
  };
}

/**
 * The alert webhooks' backlog and when it is too long to take more. Two measures of unstarted work:
 * - in flight: this API's ingest calls (signal-with-start) that Temporal has not answered yet, counted exactly;
 * - the task queue's backlog: workflow tasks waiting for a worker on the incidents task queue (a new incident's
 *   first task, a signal to an incident no worker has cached), as Temporal estimates it. Asked in the
 *   background at most once per `pollMs` while deliveries arrive (or `/metrics` is scraped), never on a
 *   request's path: a decision reads the last answer. An answer older than two periods, or a failed ask,
 *   is unknown and refuses nothing (Temporal down is the ingest call's own 503).
 * {@link refusal} is asked before any Temporal call, so a refused delivery has started nothing.
 */
export class WebhookBackpressure {
  readonly options: BackpressureOptions;
  private current = 0;
  private backlog: (TaskQueueBacklog & { at: number }) | undefined;
  private asking: Promise<void> | undefined;
  private lastAsked = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(options: BackpressureOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Ingest calls in flight now. */
  get inFlight(): number {
    return this.current;
  }

  /** The last backlog Temporal reported, while it is recent enough to act on. */
  get queueBacklog(): TaskQueueBacklog | undefined {
    const known = this.backlog;
    return known && this.now() - known.at <= 2 * this.options.pollMs ? known : undefined;
  }

  /** Why a delivery arriving now must be refused, or undefined to take it. Never waits. */
  refusal(): BackpressureBound | undefined {
    void this.poll();
    if (this.current >= this.options.maxInFlight) return 'in_flight';
    const backlog = this.queueBacklog;
    if (this.options.maxQueueBacklog > 0 && backlog && backlog.count > this.options.maxQueueBacklog)
      return 'queue_backlog';
    return undefined;
  }

  /** Runs one ingest call, counted in flight while it runs. */
  async track<T>(call: () => Promise<T>): Promise<T> {
    this.current += 1;
    try {
      return await call();
    } finally {
      this.current -= 1;
    }
  }

  /** Asks Temporal for the backlog if the last ask is a period old; resolves when that ask has settled. */
  poll(): Promise<void> {
    const { probe, maxQueueBacklog, pollMs } = this.options;
    if (!probe || maxQueueBacklog === 0) return Promise.resolve();
    if (this.asking) return this.asking;
    const now = this.now();
    if (now - this.lastAsked < pollMs) return Promise.resolve();
    this.lastAsked = now;
    this.asking = probe()
      .then((backlog) => {
        this.backlog = { ...backlog, at: this.now() };
      })
      .catch((err: unknown) => {
        this.backlog = undefined;
        this.options.onProbeError?.(err);
      })
      .finally(() => {
        this.asking = undefined;
      });
    return this.asking;
  }
}
