/**
 * The one place that knows the Slack Web API's shape (`chat.postMessage`).
 * Slack answers HTTP 200 with `{"ok":false,"error":...}` for most failures,
 * so success is `ok:true`, not the status code.
 */
export interface SlackMessage {
  channel: string;
  text: string;
}

export interface SlackPosted {
  channel: string;
  ts: string;
}

/** What the activities need from Slack. */
export interface SlackClient {
  postMessage(message: SlackMessage): Promise<SlackPosted>;
}

/** A Slack failure, with whether trying again can help. */
export class SlackError extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryable: boolean, retryAfterMs?: number) {
    super(message);
    this.name = 'SlackError';
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Errors that a retry cannot fix: configuration or permissions. */
const PERMANENT = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'missing_scope',
  'invalid_arguments',
  'msg_too_long',
  'no_text',
]);

export interface SlackApiOptions {
  apiUrl: string;
  /** The bot token, or how to get it at call time (a missing token then fails the call, not the worker). */
  token: string | (() => string);
  timeoutMs?: number;
}

export class SlackApi implements SlackClient {
  private readonly url: string;
  private readonly token: string | (() => string);
  private readonly timeoutMs: number;

  constructor(options: SlackApiOptions) {
    this.url = `${options.apiUrl.replace(/\/+$/, '')}/chat.postMessage`;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async postMessage(message: SlackMessage): Promise<SlackPosted> {
    let token: string;
    try {
      token = typeof this.token === 'function' ? this.token() : this.token;
    } catch (err) {
      throw new SlackError(`Slack is not configured: ${(err as Error).message}`, false);
    }
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json; charset=utf-8',
        },
        body: JSON.stringify({ channel: message.channel, text: message.text, unfurl_links: false }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // The token is in a header, never in the error: only the cause's message is kept.
      throw new SlackError(`Slack unreachable: ${err instanceof Error ? err.message : String(err)}`, true);
    }
    if (response.status === 429) {
      const seconds = Number(response.headers.get('retry-after') ?? '1');
      throw new SlackError('Slack rate limit (429)', true, (Number.isFinite(seconds) ? seconds : 1) * 1000);
    }
    if (response.status >= 500) throw new SlackError(`Slack answered HTTP ${response.status}`, true);
    const body = (await response.json().catch(() => undefined)) as
      { ok?: boolean; error?: string; channel?: string; ts?: string } | undefined;
    if (!response.ok || !body)
      throw new SlackError(`Slack answered HTTP ${response.status}`, response.status >= 500);
    if (body.ok !== true) {
      const code = body.error ?? 'unknown_error';
      throw new SlackError(`Slack refused the message: ${code}`, !PERMANENT.has(code));
    }
    return { channel: body.channel ?? message.channel, ts: body.ts ?? '' };
  }
}
