import type { ServerResponse } from 'node:http';
import { HttpStandIn, Recorded, answerFailure, mediaType, sendJson } from './stand-in.ts';
import type { InjectedFailure, ReceivedRequest } from './stand-in.ts';

export interface ReceivedWebhook {
  /** The raw body, as signed. */
  body: string;
  json: unknown;
  /** `X-Incident-Signature`, as received. */
  signature: string | undefined;
  event: string | undefined;
  path: string;
  at: number;
}

/**
 * A receiver for the generic outbound webhook: accepts POST JSON on any
 * path, records the raw body and its `X-Incident-Signature`, answers 204.
 * `failures` injects any status (429 with Retry-After, 5xx, 4xx) or a hang.
 */
export class WebhookReceiver extends HttpStandIn {
  readonly failures: InjectedFailure[] = [];
  readonly received = new Recorded<ReceivedWebhook>('webhook deliveries');

  /** Listens; answers the URL to configure, `http://127.0.0.1:<port>/hooks/incident`. */
  async start(): Promise<string> {
    return `${await this.listen()}/hooks/incident`;
  }

  protected handle(request: ReceivedRequest, res: ServerResponse): void {
    if (request.method !== 'POST') return sendJson(res, 405, { error: 'POST only' });
    if (mediaType(request.headers) !== 'application/json') return sendJson(res, 415, { error: 'JSON only' });
    let json: unknown;
    try {
      json = JSON.parse(request.body);
    } catch {
      return sendJson(res, 400, { error: 'invalid JSON' });
    }
    const failure = this.failures.shift();
    if (failure !== undefined) return answerFailure(res, failure);
    const signature = request.headers['x-incident-signature'];
    const event = request.headers['x-incident-event'];
    this.received.push({
      body: request.body,
      json,
      signature: typeof signature === 'string' ? signature : undefined,
      event: typeof event === 'string' ? event : undefined,
      path: request.path,
      at: Date.now(),
    });
    res.writeHead(204).end();
  }
}
