import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the provider stand-ins share: a loopback HTTP server on a free port,
 * the raw body of each request, recorded lists that tests can wait on, and
 * injected failures (an HTTP status with Retry-After, or a request left
 * unanswered so the client's deadline must fire), which each stand-in
 * queues in its own `failures`.
 */

/** A list that fills as requests arrive, with a way to wait for the n-th. */
export class Recorded<T> {
  readonly items: T[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];
  private readonly what: string;

  constructor(what: string) {
    this.what = what;
  }

  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    for (const w of this.waiters.filter((w) => this.items.length >= w.count)) w.resolve();
    this.waiters = this.waiters.filter((w) => this.items.length < w.count);
  }

  /** Resolves with the list once it holds `count` items; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs = 30_000): Promise<T[]> {
    if (this.items.length >= count) return Promise.resolve(this.items);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.items.length} of ${count} ${this.what} arrived`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.items);
        },
      });
    });
  }
}

/** An answer to give instead of the normal one: a status (and body, Retry-After), or none at all. */
export type InjectedFailure = 'hang' | HttpFailure;

/** An injected HTTP answer: the status, a JSON (object) or text (string) body, Retry-After. */
export interface HttpFailure {
  status: number;
  body?: unknown;
  retryAfter?: string;
  contentType?: string;
}

/** Every request a stand-in received, valid or not. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export abstract class HttpStandIn {
  /** Every request, in arrival order. */
  readonly requests = new Recorded<ReceivedRequest>('requests');
  private readonly server: Server;
  private base = '';

  constructor() {
    this.server = createServer((req, res) => void this.receive(req, res));
  }

  /** Listens on 127.0.0.1 on a free port; answers the base URL `http://127.0.0.1:<port>`. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.base = `http://127.0.0.1:${port}`;
    return this.base;
  }

  get baseUrl(): string {
    if (!this.base) throw new Error('the stand-in is not started');
    return this.base;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  protected abstract handle(request: ReceivedRequest, res: ServerResponse): void | Promise<void>;

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request: ReceivedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      at: Date.now(),
    };
    this.requests.push(request);
    try {
      await this.handle(request, res);
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
    }
  }
}

/** Answers an injected failure (`hang`: leaves the request unanswered until stop()). */
export function answerFailure(res: ServerResponse, failure: InjectedFailure): void {
  if (failure === 'hang') return;
  const headers: Record<string, string> = {};
  if (failure.retryAfter !== undefined) headers['retry-after'] = failure.retryAfter;
  if (typeof failure.body === 'string') {
    headers['content-type'] = failure.contentType ?? 'text/plain; charset=utf-8';
    res.writeHead(failure.status, headers).end(failure.body);
  } else {
    sendJson(res, failure.status, failure.body ?? { error: `injected ${failure.status}` }, headers);
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** The media type of a request, without parameters (`application/json`). */
export function mediaType(headers: IncomingHttpHeaders): string {
  return (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Listens on a free 127.0.0.1 port (a listen error rejects); resolves with the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
