/**
 * A stand-in for the protected service's health endpoint (the procedures' `curl -f …/health`): an HTTP server
 * on 127.0.0.1 whose `GET /health` answers 200 or 503 as a test-supplied async function decides — e.g. one
 * that asks the Kubernetes API whether the Deployment's pods are Ready, so the probe sees what the cluster
 * does — optionally after an added latency (slow answers, or none before the prober's deadline). Every
 * request is recorded (`requests`, from HttpStandIn).
 */
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpStandIn, sendJson } from './stand-in.ts';
import type { ReceivedRequest } from './stand-in.ts';

/** Healthy or not, and optionally how long to take to say so. */
export type HealthVerdict = boolean | { ok: boolean; delayMs?: number };

export interface ServiceStandInOptions {
  /** Asked at each `GET /health`. Default: always healthy. A throw answers 503 with its message. */
  health?: () => Promise<HealthVerdict>;
  /** Added to every answer of /health unless the verdict sets its own `delayMs`. Default 0. */
  latencyMs?: number;
}

export class ServiceStandIn extends HttpStandIn {
  private health: () => Promise<HealthVerdict>;
  private latencyMs: number;
  /** Aborted by stop(), so answers still waiting out a delay end with the server. */
  private readonly stopping = new AbortController();

  constructor(options: ServiceStandInOptions = {}) {
    super();
    this.health = options.health ?? (() => Promise.resolve(true));
    this.latencyMs = options.latencyMs ?? 0;
  }

  /** The service's base URL, `http://127.0.0.1:<port>`. */
  get url(): string {
    return this.baseUrl;
  }

  /** `http://127.0.0.1:<port>/health` */
  get healthUrl(): string {
    return `${this.baseUrl}/health`;
  }

  /** The requests to /health so far. */
  get healthChecks(): ReceivedRequest[] {
    return this.requests.items.filter((r) => r.path.split('?')[0] === '/health');
  }

  setHealth(health: () => Promise<HealthVerdict>): void {
    this.health = health;
  }

  setLatencyMs(ms: number): void {
    this.latencyMs = ms;
  }

  override async stop(): Promise<void> {
    this.stopping.abort();
    await super.stop();
  }

  protected async handle(request: ReceivedRequest, res: ServerResponse): Promise<void> {
    if (request.path.split('?')[0] !== '/health') {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return;
    }
    let ok: boolean;
    let delayMs = this.latencyMs;
    let reason: string | undefined;
    try {
      const verdict = await this.health();
      ok = typeof verdict === 'boolean' ? verdict : verdict.ok;
      if (typeof verdict === 'object' && verdict.delayMs !== undefined) delayMs = verdict.delayMs;
    } catch (err) {
      ok = false;
      reason = err instanceof Error ? err.message : String(err);
    }
    if (delayMs > 0) {
      const waited = await sleep(delayMs, true, { signal: this.stopping.signal }).catch(() => false);
      if (!waited) return;
    }
    if (res.destroyed) return;
    sendJson(
      res,
      ok ? 200 : 503,
      ok ? { status: 'ok' } : { status: 'unavailable', ...(reason ? { reason } : {}) },
    );
  }
}

/** Starts a {@link ServiceStandIn} on a free 127.0.0.1 port. */
export async function startServiceStandIn(options: ServiceStandInOptions = {}): Promise<ServiceStandIn> {
  const service = new ServiceStandIn(options);
  await service.listen();
  return service;
}
