import { resolveCredential, resolveEndpoint } from './credential.ts';
import type { Credential } from './credential.ts';
import { DeliveryError } from './errors.ts';
import type { DeliveryErrorOptions } from './errors.ts';
import { DEFAULT_TIMEOUT_MS, excerpt, parseJson, parseRetryAfter, post, statusFailure } from './http.ts';
import type { HttpAnswer } from './http.ts';
import { escapeSlack } from '../../markup.ts';
import { truncateText } from './text.ts';

/**
 * The one place that knows Slack's API shapes: the Web API with a bot token
 * (`chat.postMessage`, `chat.postEphemeral`, `conversations.*`), incoming
 * webhooks, and mrkdwn escaping and length limits.
 *
 * The Web API answers HTTP 200 with `{"ok":false,"error":...}` for most
 * failures, so success is `ok:true`, not the status code. Retried: HTTP 5xx,
 * HTTP 429 (after its Retry-After), and `ok:false` with `ratelimited` or
 * `service_unavailable`; every other `ok:false` is a refusal.
 */

/** Slack truncates, then refuses (`msg_too_long`), a message text over this. */
export const SLACK_TEXT_MAX = 40_000;
/** A section block's text, over which Slack refuses the whole message (`invalid_blocks`). */
export const SLACK_SECTION_TEXT_MAX = 3_000;
/** Each of a section block's fields. */
export const SLACK_SECTION_FIELD_MAX = 2_000;
/** A header block's plain text. */
export const SLACK_HEADER_TEXT_MAX = 150;

/** A Block Kit text object. */
export interface SlackText {
  type: 'mrkdwn' | 'plain_text';
  text: string;
  emoji?: boolean;
  verbatim?: boolean;
}

/** A Block Kit layout block (`section`, `header`, `context`, `actions`, `divider`, ...). */
export interface SlackBlock {
  type: string;
  text?: SlackText;
  fields?: SlackText[];
  [key: string]: unknown;
}

export interface SlackMessage {
  channel: string;
  /** mrkdwn, already escaped where it holds untrusted text (see escapeSlack); the notification fallback when blocks are given. */
  text: string;
  blocks?: SlackBlock[];
  /** Posts as a reply in this message's thread. */
  threadTs?: string;
}

export interface SlackPosted {
  channel: string;
  ts: string;
}

export interface SlackEphemeralMessage extends SlackMessage {
  /** Who sees the message (a Slack user id); it is not stored in the channel. */
  user: string;
}

export interface SlackChannel {
  /** The channel id (`C…`), what every other method takes. */
  channel: string;
  name: string;
  /** False when the name was taken and the existing channel is returned (a retried create). */
  created: boolean;
}

/** What the activities need from Slack. */
export interface SlackClient {
  postMessage(message: SlackMessage): Promise<SlackPosted>;
}

/** A Slack failure: a DeliveryError whose provider is Slack. */
export class SlackError extends DeliveryError {
  constructor(message: string, retryable: boolean, retryAfterMs?: number);
  constructor(options: Omit<DeliveryErrorOptions, 'provider'>);
  constructor(
    messageOrOptions: string | Omit<DeliveryErrorOptions, 'provider'>,
    retryable = false,
    retryAfterMs?: number,
  ) {
    super(
      typeof messageOrOptions === 'string'
        ? {
            provider: 'slack',
            reason: retryable ? 'transient' : 'refused',
            message: messageOrOptions,
            retryAfterMs,
          }
        : { ...messageOrOptions, provider: 'slack' },
    );
    this.name = 'SlackError';
  }

  /** The same failure as a SlackError, so `instanceof SlackError` holds for everything this module throws. */
  static from(err: DeliveryError): SlackError {
    if (err instanceof SlackError) return err;
    return new SlackError({
      reason: err.reason,
      message: err.message,
      retryAfterMs: err.retryAfterMs,
      code: err.code,
      status: err.status,
      cause: err.cause,
    });
  }
}

/** `ok:false` errors that a later attempt can get past. */
const RETRYABLE_ERRORS: ReadonlySet<string> = new Set(['ratelimited', 'service_unavailable']);

export interface SlackApiOptions {
  /** The Web API base, `https://slack.com/api` (SLACK_API_URL). */
  apiUrl: Credential;
  /** The bot token (SLACK_BOT_TOKEN), or how to get it at call time. */
  token: Credential;
  timeoutMs?: number;
}

interface SlackAnswer {
  ok?: boolean;
  error?: string;
  needed?: string;
  [key: string]: unknown;
}

/** The Slack Web API with a bot token. */
export class SlackApi implements SlackClient {
  private readonly apiUrl: Credential;
  private readonly token: Credential;
  private readonly timeoutMs: number;

  constructor(options: SlackApiOptions) {
    this.apiUrl = options.apiUrl;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** `chat.postMessage`: text capped so Slack never answers `msg_too_long`, blocks' texts capped likewise. */
  async postMessage(message: SlackMessage): Promise<SlackPosted> {
    const body = await this.call('chat.postMessage', {
      ...messageArgs(message),
      // Our texts are escaped mrkdwn with explicit links: Slack adds no links or mentions of its own.
      parse: 'none',
      link_names: false,
      unfurl_links: false,
      unfurl_media: false,
    });
    return {
      channel: typeof body.channel === 'string' ? body.channel : message.channel,
      ts: typeof body.ts === 'string' ? body.ts : '',
    };
  }

  /** `chat.postEphemeral`: a message only `user` sees, e.g. the answer to a button press. */
  async postEphemeral(message: SlackEphemeralMessage): Promise<{ messageTs: string }> {
    const body = await this.call('chat.postEphemeral', { ...messageArgs(message), user: message.user });
    return { messageTs: typeof body.message_ts === 'string' ? body.message_ts : '' };
  }

  /**
   * `conversations.create`. A taken name is looked up (`conversations.list`),
   * so a create retried after a lost answer returns the channel it made;
   * a taken name that is archived or not visible to the bot is refused.
   */
  async createChannel(options: { name: string; isPrivate?: boolean }): Promise<SlackChannel> {
    try {
      const body = await this.call('conversations.create', {
        name: options.name,
        is_private: options.isPrivate ?? false,
      });
      const channel = body.channel as { id?: unknown; name?: unknown } | undefined;
      if (typeof channel?.id !== 'string')
        throw new SlackError({
          reason: 'refused',
          message: 'Slack conversations.create answered without a channel id',
        });
      return {
        channel: channel.id,
        name: typeof channel.name === 'string' ? channel.name : options.name,
        created: true,
      };
    } catch (err) {
      if (!(err instanceof SlackError) || err.code !== 'name_taken') throw err;
    }
    const existing = await this.findChannel(options.name);
    if (!existing)
      throw new SlackError({
        reason: 'refused',
        code: 'name_taken',
        message: `Slack refused conversations.create: name_taken (#${options.name} exists but the bot cannot see it)`,
      });
    if (existing.archived)
      throw new SlackError({
        reason: 'refused',
        code: 'name_taken',
        message: `Slack refused conversations.create: name_taken (#${options.name} exists and is archived)`,
      });
    return { channel: existing.id, name: options.name, created: false };
  }

  /** `conversations.invite`; people already in the channel (and the bot itself) are not an error. */
  async invite(options: { channel: string; users: string[] }): Promise<void> {
    if (options.users.length === 0) return;
    try {
      await this.call('conversations.invite', { channel: options.channel, users: options.users.join(',') });
    } catch (err) {
      if (err instanceof SlackError && (err.code === 'already_in_channel' || err.code === 'cant_invite_self'))
        return;
      throw err;
    }
  }

  /** `conversations.archive`; an already archived channel is not an error. */
  async archive(channel: string): Promise<void> {
    try {
      await this.call('conversations.archive', { channel });
    } catch (err) {
      if (err instanceof SlackError && err.code === 'already_archived') return;
      throw err;
    }
  }

  /** Pages through `conversations.list` (form-encoded, as a read method) for a channel by name. */
  private async findChannel(name: string): Promise<{ id: string; archived: boolean } | undefined> {
    let cursor = '';
    for (let page = 0; page < 20; page += 1) {
      const body = await this.call(
        'conversations.list',
        {
          types: 'public_channel,private_channel',
          exclude_archived: 'false',
          limit: '200',
          ...(cursor ? { cursor } : {}),
        },
        'form',
      );
      const channels = Array.isArray(body.channels) ? (body.channels as Record<string, unknown>[]) : [];
      const found = channels.find((c) => c.name === name);
      if (found && typeof found.id === 'string')
        return { id: found.id, archived: found.is_archived === true };
      const next = (body.response_metadata as { next_cursor?: unknown } | undefined)?.next_cursor;
      if (typeof next !== 'string' || next === '') return undefined;
      cursor = next;
    }
    return undefined;
  }

  private async call(
    method: string,
    args: Record<string, unknown>,
    encoding: 'json' | 'form' = 'json',
  ): Promise<SlackAnswer> {
    let answer: HttpAnswer;
    let token: string;
    try {
      token = resolveCredential('slack', 'the Slack bot token (SLACK_BOT_TOKEN)', this.token);
      const base = resolveEndpoint('slack', 'the Slack API URL (SLACK_API_URL)', this.apiUrl);
      const url = new URL(`${base.href.replace(/\/+$/, '')}/${method}`);
      answer = await post({
        provider: 'slack',
        url,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type':
            encoding === 'json' ? 'application/json; charset=utf-8' : 'application/x-www-form-urlencoded',
        },
        body:
          encoding === 'json'
            ? JSON.stringify(args)
            : new URLSearchParams(args as Record<string, string>).toString(),
        timeoutMs: this.timeoutMs,
        secrets: [token],
      });
    } catch (err) {
      throw err instanceof DeliveryError ? SlackError.from(err) : err;
    }
    if (answer.status === 429 || answer.status >= 500)
      throw SlackError.from(statusFailure('slack', answer, slackErrorOf(answer) ?? '', { secrets: [token] }));
    const body = parseJson(answer.text) as SlackAnswer | undefined;
    if (!body || typeof body !== 'object')
      throw SlackError.from(
        statusFailure('slack', answer, `unexpected answer to ${method}: ${excerpt(answer.text)}`),
      );
    if (body.ok === true && answer.status < 300) return body;
    const code = body.error ?? `http_${answer.status}`;
    const needed = code === 'missing_scope' && body.needed ? ` (needs ${body.needed})` : '';
    throw new SlackError({
      reason: RETRYABLE_ERRORS.has(code) ? 'transient' : 'refused',
      message: `Slack refused ${method}: ${code}${needed}`,
      code,
      status: answer.status,
      retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')),
      secrets: [token],
    });
  }
}

function slackErrorOf(answer: HttpAnswer): string | undefined {
  const body = parseJson(answer.text) as SlackAnswer | undefined;
  return body && typeof body === 'object' && typeof body.error === 'string' ? body.error : undefined;
}

function messageArgs(message: SlackMessage): Record<string, unknown> {
  return {
    channel: message.channel,
    text: capSlackText(message.text),
    ...(message.blocks ? { blocks: capBlocks(message.blocks) } : {}),
    ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
  };
}

export interface SlackWebhookOptions {
  /** The incoming webhook's URL (SLACK_WEBHOOK_URL); it is a secret, and no error repeats it. */
  url: Credential;
  timeoutMs?: number;
}

/**
 * Slack's incoming-webhook mode: one fixed channel, no token. Slack answers
 * 200 with the body `ok`; its failures are HTTP statuses with a plain-text
 * reason (`400 invalid_payload`, `403 action_prohibited`, `404 no_service`,
 * `410 channel_is_archived`), refused, except 429 and 5xx, retried.
 */
export class SlackWebhook {
  private readonly url: Credential;
  private readonly timeoutMs: number;

  constructor(options: SlackWebhookOptions) {
    this.url = options.url;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async post(message: { text: string; blocks?: SlackBlock[] }): Promise<void> {
    let answer: HttpAnswer;
    let url: URL;
    try {
      url = resolveEndpoint('slack', 'the Slack webhook URL (SLACK_WEBHOOK_URL)', this.url);
      answer = await post({
        provider: 'slack',
        url,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({
          text: capSlackText(message.text),
          ...(message.blocks ? { blocks: capBlocks(message.blocks) } : {}),
        }),
        timeoutMs: this.timeoutMs,
        secrets: [],
      });
    } catch (err) {
      throw err instanceof DeliveryError ? SlackError.from(err) : err;
    }
    if (answer.status >= 200 && answer.status < 300 && answer.text.trim() === 'ok') return;
    const reason = excerpt(answer.text, 100);
    throw SlackError.from(
      statusFailure('slack', answer, `incoming webhook: ${reason || 'no reason given'}`, {
        code: reason || undefined,
        secrets: [url.href, url.pathname],
      }),
    );
  }
}

export { escapeSlack };

/** A message text within Slack's limit (40,000 by default), cut with `…` rather than refused. */
export function capSlackText(text: string, max: number = SLACK_TEXT_MAX): string {
  return truncateText(text, max);
}

/**
 * A mrkdwn section block whose text fits its 3,000-character limit. `verbatim`: Slack parses nothing in
 * the text by itself (no plain `@channel` or `@here` mention, no `#channel` or URL made a link); only the
 * text's own `<…>` sequences count, and untrusted text has none (see escapeSlack).
 */
export function sectionBlock(text: string): SlackBlock {
  return {
    type: 'section',
    text: { type: 'mrkdwn', text: capSlackText(text, SLACK_SECTION_TEXT_MAX), verbatim: true },
  };
}

/** Slack's limit on a message's blocks. */
export const SLACK_BLOCKS_MAX = 50;

/** Blocks with every text within its limit (section text 3,000, fields 2,000, header 150). */
export function capBlocks(blocks: readonly SlackBlock[]): SlackBlock[] {
  const cap = (t: SlackText | undefined, max: number) =>
    t && typeof t.text === 'string' ? { ...t, text: capSlackText(t.text, max) } : t;
  return blocks.map((block) => {
    if (block.type === 'section') {
      const capped: SlackBlock = { ...block };
      if (block.text) capped.text = cap(block.text, SLACK_SECTION_TEXT_MAX);
      if (block.fields) capped.fields = block.fields.map((f) => cap(f, SLACK_SECTION_FIELD_MAX) ?? f);
      return capped;
    }
    if (block.type === 'header' && block.text)
      return { ...block, text: cap(block.text, SLACK_HEADER_TEXT_MAX) };
    return block;
  });
}
