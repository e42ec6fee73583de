/**
 * What the API says back to Slack while an engineer acts from it: answers to
 * an interaction's `response_url` (ephemeral, in the thread the button was in)
 * and modals (`views.open` with the interaction's `trigger_id`, which Slack
 * honours for three seconds). The worker's outbound Slack client lives with
 * the activities, which entry points may not import; this is the API's own,
 * and as small as what the API needs.
 */

/** A message to a `response_url`: only the clicking user sees it, and it never replaces the original. */
export interface SlackResponse {
  text: string;
}

/** A Block Kit modal view (`type: 'modal'`). */
export interface SlackModal {
  type: 'modal';
  callback_id: string;
  private_metadata: string;
  title: { type: 'plain_text'; text: string };
  submit: { type: 'plain_text'; text: string };
  close: { type: 'plain_text'; text: string };
  blocks: Record<string, unknown>[];
}

/** What the interaction route needs from Slack; tests may substitute their own. */
export interface SlackInteractionClient {
  respond(responseUrl: string, response: SlackResponse): Promise<void>;
  openView(triggerId: string, view: SlackModal): Promise<void>;
}

export class SlackRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlackRequestError';
  }
}

export interface SlackResponderOptions {
  /** The Web API base (`https://slack.com/api`), resolved when a call is made. */
  apiUrl: () => string;
  /** The bot token, resolved when a call is made (a missing one fails that call, not the API's start). */
  token: () => string;
  timeoutMs?: number;
}

export class SlackResponder implements SlackInteractionClient {
  private readonly apiUrl: () => string;
  private readonly token: () => string;
  private readonly timeoutMs: number;

  constructor(options: SlackResponderOptions) {
    this.apiUrl = options.apiUrl;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** POSTs to the interaction's `response_url` (no token: the URL is the credential, valid 30 minutes). */
  async respond(responseUrl: string, response: SlackResponse): Promise<void> {
    const answer = await this.post(
      responseUrl,
      {},
      {
        response_type: 'ephemeral',
        replace_original: false,
        text: response.text.slice(0, 3_000),
      },
    );
    if (answer.status < 200 || answer.status >= 300)
      throw new SlackRequestError(`Slack refused the response (HTTP ${answer.status})`);
  }

  /** `views.open`; Slack answers 200 with `{ok:false,error}` when it refuses. */
  async openView(triggerId: string, view: SlackModal): Promise<void> {
    const token = this.token();
    const url = `${this.apiUrl().replace(/\/+$/, '')}/views.open`;
    const answer = await this.post(
      url,
      { authorization: `Bearer ${token}` },
      { trigger_id: triggerId, view },
    );
    let body: { ok?: unknown; error?: unknown } | undefined;
    try {
      body = JSON.parse(answer.text) as typeof body;
    } catch {
      body = undefined;
    }
    if (answer.status !== 200 || body?.ok !== true)
      throw new SlackRequestError(
        `Slack refused views.open: ${typeof body?.error === 'string' ? body.error : `HTTP ${answer.status}`}`,
      );
  }

  private async post(
    url: string,
    headers: Record<string, string>,
    body: unknown,
  ): Promise<{ status: number; text: string }> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return { status: response.status, text: await response.text() };
    } catch (err) {
      // The URL may hold a secret (a response_url is one); say only what failed.
      const reason =
        err instanceof Error && err.name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs} ms`
          : 'unreachable';
      throw new SlackRequestError(`Slack ${reason}`);
    }
  }
}
