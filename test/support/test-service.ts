/**
 * A stand-in for the protected service (PNO Physics Bench) as Prometheus sees it: an HTTP server on
 * 127.0.0.1 whose `/metrics` exposes `http_requests_total{status="200"}` and `{status="500"}` counters that
 * grow on their own while it runs (simulated traffic, with a switchable share of 5xx answers). Prometheus
 * scrapes it as job `pno-physics-bench`. `down()` closes it (scrapes fail: `up == 0`), `up()` listens again
 * on the same port.
 */
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServiceOptions {
  /** Simulated requests per second. Default 200. */
  requestsPerSecond?: number;
  /** How often the counters grow. Default 100 ms. */
  tickMs?: number;
  /** Share of 5xx answers, 0..1, at start. Default 0. */
  errorRatio?: number;
}

export class TestService {
  private readonly server: Server;
  private readonly requestsPerSecond: number;
  private readonly tickMs: number;
  private errorRatio: number;
  private ok = 0;
  private errors = 0;
  /** Fractional requests carried over between ticks, so the ratio is exact over time. */
  private carryOk = 0;
  private carryErrors = 0;
  private ticker: NodeJS.Timeout | undefined;
  private port = 0;
  private listening = false;

  constructor(options: TestServiceOptions = {}) {
    this.requestsPerSecond = options.requestsPerSecond ?? 200;
    this.tickMs = options.tickMs ?? 100;
    this.errorRatio = checkRatio(options.errorRatio ?? 0);
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') return this.metrics(res);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    // Prometheus keeps scrape connections alive; `down()` must be able to drop them at once.
    this.server.keepAliveTimeout = 5_000;
  }

  /** `127.0.0.1:<port>`, the scrape target. */
  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Requests counted so far, by status. */
  get counts(): { ok: number; errors: number } {
    return { ok: this.ok, errors: this.errors };
  }

  get isUp(): boolean {
    return this.listening;
  }

  /** Listens on a free port (or `port`) and starts the traffic; resolves with the scrape target. */
  async start(port = 0): Promise<string> {
    await this.listen(port);
    this.startTicking();
    return this.target;
  }

  /** From now on, this share (0..1) of the simulated requests answers 500. */
  setErrorRatio(ratio: number): void {
    this.errorRatio = checkRatio(ratio);
  }

  /** The service goes down: it stops listening (scrapes get "connection refused") and its traffic stops. */
  async down(): Promise<void> {
    if (!this.listening) return;
    this.stopTicking();
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** The service comes back on the same port, counters where they were (like a process that kept them). */
  async up(): Promise<void> {
    if (this.listening) return;
    await this.listen(this.port);
    this.startTicking();
  }

  async stop(): Promise<void> {
    await this.down();
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.listening = true;
  }

  private startTicking(): void {
    this.stopTicking();
    const perTick = (this.requestsPerSecond * this.tickMs) / 1000;
    this.ticker = setInterval(() => {
      this.carryErrors += perTick * this.errorRatio;
      this.carryOk += perTick * (1 - this.errorRatio);
      const errors = Math.floor(this.carryErrors);
      const ok = Math.floor(this.carryOk);
      this.carryErrors -= errors;
      this.carryOk -= ok;
      this.errors += errors;
      this.ok += ok;
    }, this.tickMs);
    this.ticker.unref();
  }

  private stopTicking(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private metrics(res: ServerResponse): void {
    const body = [
      '# HELP http_requests_total HTTP requests answered, by status code.',
      '# TYPE http_requests_total counter',
      `http_requests_total{status="200"} ${this.ok}`,
      `http_requests_total{status="500"} ${this.errors}`,
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
  }
}

function checkRatio(ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`error ratio must be within 0..1, got ${ratio}`);
  return ratio;
}
