import type { ServerResponse } from 'node:http';
import { HttpStandIn, Recorded, answerFailure, mediaType, sendJson } from './stand-in.ts';
import type { InjectedFailure, ReceivedRequest } from './stand-in.ts';

export interface SlackPost {
  token: string;
  channel: string;
  text: string;
  at: number;
  ts: string;
  threadTs?: string;
  blocks?: unknown[];
  /** How the client encoded the request, as Slack accepts both. */
  encoding: 'json' | 'form';
}

export interface SlackEphemeral {
  channel: string;
  user: string;
  text: string;
  blocks?: unknown[];
  threadTs?: string;
  at: number;
}

export interface SlackWebhookPost {
  text?: string;
  blocks?: unknown[];
  at: number;
}

/** A modal opened with `views.open`. */
export interface SlackViewOpened {
  triggerId: string;
  view: { callback_id?: string; private_metadata?: string; title?: { text?: string }; blocks: unknown[] };
  at: number;
}

/** A message posted to an interaction's `response_url`. */
export interface SlackInteractionResponse {
  path: string;
  body: { text?: string; response_type?: string; replace_original?: boolean };
  at: number;
}

export interface SlackChannelRecord {
  id: string;
  name: string;
  isPrivate: boolean;
  archived: boolean;
  members: Set<string>;
}

/**
 * What to answer instead of success. The legacy names: `http500`, `ratelimited`
 * (HTTP 429, Retry-After 1), `ok_false` (`fatal_error`), `hang`; `{ okFalse }`
 * answers HTTP 200 `{ok:false, error}`; an InjectedFailure any status.
 */
export type SlackFailure = 'http500' | 'ratelimited' | 'ok_false' | { okFalse: string } | InjectedFailure;

const USER_ID = /^[UW][A-Z0-9]+$/;
const CHANNEL_NAME = /^[a-z0-9_-]+$/;
const TEXT_MAX = 40_000;
const SECTION_TEXT_MAX = 3_000;
const BLOCKS_MAX = 50;

/**
 * A local stand-in for Slack: the Web API methods the project uses
 * (`chat.postMessage`, `chat.postEphemeral`, `conversations.create`,
 * `.invite`, `.archive`, `.list`, `views.open`) under `<url>/api`, an incoming
 * webhook, and interactions' `response_url`s under `<url>/actions/`. As strict as Slack about requests: POST, a bearer token (or a
 * `token` form field), a JSON or form-encoded body, channel and user ids,
 * text length, Block Kit shapes (an array of objects with `type`; section
 * text within 3,000), `thread_ts` naming a message in that channel.
 * Failures are injected in `failures`, consumed one per valid request.
 */
export class SlackStandIn extends HttpStandIn {
  /** Next answers to give instead of success, consumed in order. */
  readonly failures: SlackFailure[] = [];
  readonly postLog = new Recorded<SlackPost>('Slack posts');
  readonly ephemerals = new Recorded<SlackEphemeral>('Slack ephemeral messages');
  readonly webhookPosts = new Recorded<SlackWebhookPost>('Slack webhook posts');
  readonly views = new Recorded<SlackViewOpened>('Slack modals');
  /** Answers to interactions, posted to `responseUrl(...)`. */
  readonly responses = new Recorded<SlackInteractionResponse>('Slack interaction responses');
  /** Channels created or archived through the API, by id. */
  readonly channelsById = new Map<string, SlackChannelRecord>();
  /** The incoming webhook's path (its secret part, like Slack's). */
  readonly webhookPath: string;
  private readonly token: string;
  private readonly channels: Set<string> | undefined;
  private ts = 1_700_000_000;
  private nextChannel = 1;

  constructor(options: { token: string; channels?: string[]; webhookPath?: string }) {
    super();
    this.token = options.token;
    this.channels = options.channels ? new Set(options.channels) : undefined;
    this.webhookPath = options.webhookPath ?? '/services/T0000000001/B0000000001/abcdefghijklmnopqrstuvwx';
  }

  /** Listens; answers the Web API base, `http://127.0.0.1:<port>/api` (SLACK_API_URL). */
  async start(): Promise<string> {
    return `${await this.listen()}/api`;
  }

  /** The incoming webhook's URL (SLACK_WEBHOOK_URL). */
  get webhookUrl(): string {
    return `${this.baseUrl}${this.webhookPath}`;
  }

  /** A `response_url` as Slack puts in an interaction payload (a path under this server). */
  responseUrl(id = 'T0000000001/1234567890/abcdef'): string {
    return `${this.baseUrl}/actions/${id}`;
  }

  /** Messages posted with chat.postMessage, in order. */
  get posts(): SlackPost[] {
    return this.postLog.items;
  }

  /** Resolves once `count` messages have arrived. */
  waitForPosts(count: number, timeoutMs = 30_000): Promise<SlackPost[]> {
    return this.postLog.waitFor(count, timeoutMs);
  }

  /** Adds a channel as if someone had created it in Slack (e.g. to test `name_taken`). */
  addChannel(name: string, options: { archived?: boolean; isPrivate?: boolean } = {}): SlackChannelRecord {
    const record: SlackChannelRecord = {
      id: `C${String(this.nextChannel++).padStart(8, '0')}`,
      name,
      isPrivate: options.isPrivate ?? false,
      archived: options.archived ?? false,
      members: new Set(),
    };
    this.channelsById.set(record.id, record);
    return record;
  }

  protected handle(request: ReceivedRequest, res: ServerResponse): void {
    if (request.path === this.webhookPath) return this.webhook(request, res);
    if (request.path.startsWith('/actions/')) return this.interactionResponse(request, res);
    const method = /^\/api\/([a-zA-Z.]+)$/.exec(request.path)?.[1];
    if (request.method !== 'POST' || !method)
      return sendJson(res, 404, { ok: false, error: 'unknown_method' });
    const args = parseArgs(request);
    const reply = (body: Record<string, unknown>) => sendJson(res, 200, body);
    if (!args) return reply({ ok: false, error: 'invalid_json' });
    if (args === 'bad_type') return reply({ ok: false, error: 'invalid_form_data' });
    const auth = request.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ')
      ? auth.slice(7)
      : typeof args.body.token === 'string'
        ? args.body.token
        : '';
    if (!token) return reply({ ok: false, error: 'not_authed' });
    if (token !== this.token) return reply({ ok: false, error: 'invalid_auth' });
    const answer = this.method(method, args.body, token, args.encoding);
    if ('error' in answer) return reply(answer);
    // Validation first, as Slack does; then an injected failure stands in for a valid request's answer.
    const failure = this.failures.shift();
    if (failure !== undefined) return this.fail(res, failure);
    return reply(answer.commit());
  }

  private fail(res: ServerResponse, failure: SlackFailure): void {
    if (failure === 'http500') return sendJson(res, 500, { ok: false, error: 'internal_error' });
    if (failure === 'ratelimited')
      return sendJson(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': '1' });
    if (failure === 'ok_false') return sendJson(res, 200, { ok: false, error: 'fatal_error' });
    if (typeof failure === 'object' && 'okFalse' in failure)
      return sendJson(res, 200, { ok: false, error: failure.okFalse });
    return answerFailure(res, failure);
  }

  /** Validates a call; answers its refusal, or how to commit it (run only when no failure is injected). */
  private method(
    method: string,
    body: Record<string, unknown>,
    token: string,
    encoding: 'json' | 'form',
  ): { ok: false; error: string } | { commit: () => Record<string, unknown> } {
    const refuse = (error: string) => ({ ok: false as const, error });
    switch (method) {
      case 'chat.postMessage':
      case 'chat.postEphemeral': {
        const channel = this.findPostable(body.channel);
        if (typeof channel === 'string' && channel.startsWith('!')) return refuse(channel.slice(1));
        const content = validateContent(body);
        if (typeof content === 'string') return refuse(content);
        const threadTs =
          typeof body.thread_ts === 'string' && body.thread_ts !== '' ? body.thread_ts : undefined;
        if (threadTs && !this.posts.some((p) => p.channel === channel && p.ts === threadTs))
          return refuse('thread_not_found');
        if (method === 'chat.postEphemeral') {
          if (typeof body.user !== 'string' || !USER_ID.test(body.user)) return refuse('user_not_found');
          const user = body.user;
          return {
            commit: () => {
              this.ts += 1;
              this.ephemerals.push({
                channel: String(channel),
                user,
                ...content,
                ...(threadTs ? { threadTs } : {}),
                at: Date.now(),
              });
              return { ok: true, message_ts: `${this.ts}.000200` };
            },
          };
        }
        return {
          commit: () => {
            this.ts += 1;
            const ts = `${this.ts}.000100`;
            this.postLog.push({
              token,
              channel: String(channel),
              text: content.text,
              at: Date.now(),
              ts,
              encoding,
              ...(content.blocks ? { blocks: content.blocks } : {}),
              ...(threadTs ? { threadTs } : {}),
            });
            return { ok: true, channel, ts, message: { text: content.text } };
          },
        };
      }
      case 'conversations.create': {
        const name = body.name;
        if (typeof name !== 'string' || name === '') return refuse('invalid_name_required');
        if (name.length > 80) return refuse('invalid_name_maxlength');
        if (!CHANNEL_NAME.test(name)) return refuse('invalid_name_specials');
        if ([...this.channelsById.values()].some((c) => c.name === name)) return refuse('name_taken');
        const isPrivate = body.is_private === true || body.is_private === 'true';
        return {
          commit: () => {
            const c = this.addChannel(name, { isPrivate });
            return { ok: true, channel: channelJson(c) };
          },
        };
      }
      case 'conversations.invite': {
        const c = this.channelsById.get(String(body.channel));
        if (!c) return refuse('channel_not_found');
        if (c.archived) return refuse('is_archived');
        if (typeof body.users !== 'string' || body.users === '') return refuse('no_user');
        const users = body.users.split(',').map((u) => u.trim());
        if (users.some((u) => !USER_ID.test(u))) return refuse('user_not_found');
        if (users.every((u) => c.members.has(u))) return refuse('already_in_channel');
        return {
          commit: () => {
            for (const u of users) c.members.add(u);
            return { ok: true, channel: channelJson(c) };
          },
        };
      }
      case 'conversations.archive': {
        const c = this.channelsById.get(String(body.channel));
        if (!c) return refuse('channel_not_found');
        if (c.archived) return refuse('already_archived');
        return {
          commit: () => {
            c.archived = true;
            return { ok: true };
          },
        };
      }
      case 'conversations.list': {
        const limit = Math.min(1000, Math.max(1, Number(body.limit ?? 100) || 100));
        const start =
          typeof body.cursor === 'string' && body.cursor
            ? Number(Buffer.from(body.cursor, 'base64').toString())
            : 0;
        const excludeArchived = body.exclude_archived === true || body.exclude_archived === 'true';
        return {
          commit: () => {
            const all = [...this.channelsById.values()].filter((c) => !excludeArchived || !c.archived);
            const page = all.slice(start, start + limit);
            const next =
              start + limit < all.length ? Buffer.from(String(start + limit)).toString('base64') : '';
            return { ok: true, channels: page.map(channelJson), response_metadata: { next_cursor: next } };
          },
        };
      }
      case 'views.open': {
        if (typeof body.trigger_id !== 'string' || body.trigger_id === '')
          return refuse('invalid_trigger_id');
        const view = typeof body.view === 'string' ? (JSON.parse(body.view) as unknown) : body.view;
        const problem = validateModal(view);
        if (problem) return refuse(problem);
        const triggerId = body.trigger_id;
        return {
          commit: () => {
            this.views.push({ triggerId, view: view as SlackViewOpened['view'], at: Date.now() });
            return { ok: true, view: { id: `V${String(this.views.length).padStart(8, '0')}` } };
          },
        };
      }
      default:
        return refuse('unknown_method');
    }
  }

  /** The channel a message may go to, or `!<error>`. */
  private findPostable(value: unknown): string {
    if (typeof value !== 'string' || value === '') return '!channel_not_found';
    if (USER_ID.test(value)) return value;
    const created = this.channelsById.get(value);
    if (created) return created.archived ? '!is_archived' : value;
    if (this.channels && !this.channels.has(value)) return '!channel_not_found';
    return value;
  }

  /** An interaction's `response_url`: JSON with text, answered like Slack (`{"ok":true}`). */
  private interactionResponse(request: ReceivedRequest, res: ServerResponse): void {
    if (request.method !== 'POST') return sendJson(res, 405, { ok: false, error: 'invalid_method' });
    if (mediaType(request.headers) !== 'application/json')
      return sendJson(res, 400, { ok: false, error: 'invalid_payload' });
    let body: SlackInteractionResponse['body'];
    try {
      body = JSON.parse(request.body) as SlackInteractionResponse['body'];
    } catch {
      return sendJson(res, 400, { ok: false, error: 'invalid_payload' });
    }
    if (typeof body.text !== 'string' || body.text === '')
      return sendJson(res, 400, { ok: false, error: 'no_text' });
    this.responses.push({ path: request.path, body, at: Date.now() });
    return sendJson(res, 200, { ok: true });
  }

  private webhook(request: ReceivedRequest, res: ServerResponse): void {
    const text = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/html' }).end(body);
    };
    if (request.method !== 'POST') return text(405, 'invalid_method');
    if (mediaType(request.headers) !== 'application/json') return text(400, 'invalid_payload');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(request.body) as Record<string, unknown>;
    } catch {
      return text(400, 'invalid_payload');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return text(400, 'invalid_payload');
    const content = validateContent(body);
    if (typeof content === 'string') return text(400, content);
    const failure = this.failures.shift();
    if (failure !== undefined) {
      if (failure === 'http500') return text(500, 'internal_error');
      if (failure === 'ratelimited') {
        res.writeHead(429, { 'retry-after': '1' }).end('rate_limited');
        return;
      }
      if (failure === 'ok_false' || (typeof failure === 'object' && 'okFalse' in failure))
        return text(400, failure === 'ok_false' ? 'invalid_payload' : failure.okFalse);
      return answerFailure(res, failure);
    }
    this.webhookPosts.push({ ...content, at: Date.now() });
    return text(200, 'ok');
  }
}

/** A modal as Slack checks it: type, title/submit/close within 24 characters, input blocks with label and element. */
function validateModal(view: unknown): string | undefined {
  if (typeof view !== 'object' || view === null) return 'invalid_arguments';
  const v = view as Record<string, unknown>;
  if (v.type !== 'modal') return 'invalid_arguments';
  for (const key of ['title', 'submit', 'close']) {
    const t = v[key] as { type?: unknown; text?: unknown } | undefined;
    if (key === 'title' && t === undefined) return 'invalid_arguments';
    if (t !== undefined && (t.type !== 'plain_text' || typeof t.text !== 'string' || t.text.length > 24))
      return 'invalid_arguments';
  }
  if (typeof v.private_metadata === 'string' && v.private_metadata.length > 3000) return 'invalid_arguments';
  if (!Array.isArray(v.blocks) || v.blocks.length === 0 || v.blocks.length > 100) return 'invalid_blocks';
  for (const block of v.blocks as Record<string, unknown>[]) {
    if (typeof block.type !== 'string') return 'invalid_blocks';
    if (block.type === 'input' && (typeof block.label !== 'object' || typeof block.element !== 'object'))
      return 'invalid_blocks';
  }
  return undefined;
}

function channelJson(c: SlackChannelRecord) {
  return { id: c.id, name: c.name, is_channel: true, is_private: c.isPrivate, is_archived: c.archived };
}

/** The body of a JSON or form-encoded Web API call; `blocks` in a form is a JSON string, as clients send it. */
function parseArgs(
  request: ReceivedRequest,
): { body: Record<string, unknown>; encoding: 'json' | 'form' } | 'bad_type' | undefined {
  const type = mediaType(request.headers);
  if (type === 'application/json') {
    try {
      const body = JSON.parse(request.body) as unknown;
      return typeof body === 'object' && body !== null && !Array.isArray(body)
        ? { body: body as Record<string, unknown>, encoding: 'json' }
        : undefined;
    } catch {
      return undefined;
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    const body: Record<string, unknown> = Object.fromEntries(new URLSearchParams(request.body));
    if (typeof body.blocks === 'string') {
      try {
        body.blocks = JSON.parse(body.blocks) as unknown;
      } catch {
        body.blocks = 'invalid';
      }
    }
    return { body, encoding: 'form' };
  }
  return 'bad_type';
}

/** Text and blocks as Slack checks them: one of them present, text ≤ 40,000, blocks well-formed. */
function validateContent(body: Record<string, unknown>): { text: string; blocks?: unknown[] } | string {
  const hasText = typeof body.text === 'string' && body.text !== '';
  if (body.blocks !== undefined) {
    if (!Array.isArray(body.blocks) || body.blocks.length > BLOCKS_MAX) return 'invalid_blocks';
    for (const block of body.blocks as unknown[]) {
      if (
        typeof block !== 'object' ||
        block === null ||
        typeof (block as { type?: unknown }).type !== 'string'
      )
        return 'invalid_blocks';
      const b = block as { type: string; text?: { type?: unknown; text?: unknown } };
      if (b.type === 'section' && b.text !== undefined) {
        if (b.text.type !== 'mrkdwn' && b.text.type !== 'plain_text') return 'invalid_blocks';
        if (typeof b.text.text !== 'string' || b.text.text.length > SECTION_TEXT_MAX) return 'invalid_blocks';
      }
    }
  }
  if (!hasText && !Array.isArray(body.blocks)) return 'no_text';
  const text = typeof body.text === 'string' ? body.text : '';
  if (text.length > TEXT_MAX) return 'msg_too_long';
  return Array.isArray(body.blocks) ? { text, blocks: body.blocks as unknown[] } : { text };
}
