import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  token: string;
  channel: string;
  text: string;
  at: number;
}

/**
 * A local stand-in for the Slack Web API's `chat.postMessage`, as strict as
 * Slack about the request: POST, bearer token, JSON body with a channel and
 * text or blocks. Failures can be injected to test retries.
 */
export class SlackStandIn {
  readonly posts: SlackPost[] = [];
  /** Next answers to give instead of success, consumed in order. */
  readonly failures: ('http500' | 'ratelimited' | 'ok_false' | 'hang')[] = [];
  private readonly server: Server;
  private readonly token: string;
  private readonly channels: Set<string> | undefined;
  private waiters: { count: number; resolve: () => void }[] = [];
  private ts = 1_700_000_000;

  constructor(options: { token: string; channels?: string[] }) {
    this.token = options.token;
    this.channels = options.channels ? new Set(options.channels) : undefined;
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/api`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Resolves once `count` messages have arrived. */
  waitForPosts(count: number, timeoutMs = 30_000): Promise<SlackPost[]> {
    if (this.posts.length >= count) return Promise.resolve(this.posts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.posts.length} of ${count} Slack posts arrived`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.posts);
        },
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || req.url !== '/api/chat.postMessage')
      return reply(404, { ok: false, error: 'unknown_method' });
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return reply(200, { ok: false, error: 'not_authed' });
    if (auth.slice(7) !== this.token) return reply(200, { ok: false, error: 'invalid_auth' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return reply(200, { ok: false, error: 'invalid_form_data' });
    }
    let body: { channel?: unknown; text?: unknown; blocks?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      return reply(200, { ok: false, error: 'invalid_json' });
    }
    if (typeof body.channel !== 'string' || body.channel === '')
      return reply(200, { ok: false, error: 'channel_not_found' });
    if (typeof body.text !== 'string' && !Array.isArray(body.blocks))
      return reply(200, { ok: false, error: 'no_text' });
    if (typeof body.text === 'string' && body.text.length > 40_000)
      return reply(200, { ok: false, error: 'msg_too_long' });
    const failure = this.failures.shift();
    if (failure === 'http500') return reply(500, { ok: false, error: 'internal_error' });
    if (failure === 'ratelimited')
      return reply(429, { ok: false, error: 'ratelimited' }, { 'retry-after': '1' });
    if (failure === 'ok_false') return reply(200, { ok: false, error: 'fatal_error' });
    if (failure === 'hang') return; // never answers: the client's timeout must fire
    const isUser = /^[UW][A-Z0-9]+$/.test(body.channel);
    if (this.channels && !isUser && !this.channels.has(body.channel))
      return reply(200, { ok: false, error: 'channel_not_found' });
    this.ts += 1;
    this.posts.push({
      token: auth.slice(7),
      channel: body.channel,
      text: typeof body.text === 'string' ? body.text : '',
      at: Date.now(),
    });
    for (const w of this.waiters.filter((w) => this.posts.length >= w.count)) w.resolve();
    this.waiters = this.waiters.filter((w) => this.posts.length < w.count);
    return reply(200, {
      ok: true,
      channel: body.channel,
      ts: `${this.ts}.000100`,
      message: { text: body.text },
    });
  }
}
