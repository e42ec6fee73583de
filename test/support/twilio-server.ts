import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { HttpStandIn, Recorded, answerFailure, sendJson } from './stand-in.ts';
import type { HttpFailure, InjectedFailure, ReceivedRequest } from './stand-in.ts';

export interface TwilioSms {
  sid: string;
  to: string;
  from: string;
  body: string;
  at: number;
}

export interface TwilioCall {
  sid: string;
  to: string;
  from: string;
  twiml?: string;
  url?: string;
  at: number;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/;

/**
 * A local stand-in for Twilio's REST API (2010-04-01): `Messages.json` and
 * `Calls.json` under an account, as strict as Twilio about the request:
 * HTTP basic auth with the account SID and auth token (20003), a
 * form-encoded body, E.164 `To` (21211) and `From` (21603, and the
 * configured number, 21606), `Body` for SMS (21602, ≤ 1,600: 21617), `Twiml`
 * or `Url` for calls (21205, TwiML ≤ 4,000 with a `<Response>` root).
 * Answers 201 with the resource (`sid` `SM…`/`CA…`) or Twilio's error JSON
 * `{code, message, more_info, status}`; `failures` injects 429, 5xx or a hang.
 */
export class TwilioStandIn extends HttpStandIn {
  readonly failures: InjectedFailure[] = [];
  readonly messages = new Recorded<TwilioSms>('Twilio messages');
  readonly calls = new Recorded<TwilioCall>('Twilio calls');
  readonly accountSid: string;
  readonly authToken: string;
  private readonly from: string | undefined;

  constructor(options: { accountSid: string; authToken: string; from?: string }) {
    super();
    this.accountSid = options.accountSid;
    this.authToken = options.authToken;
    this.from = options.from;
  }

  /** Listens; answers the API base (TWILIO_API_URL). */
  start(): Promise<string> {
    return this.listen();
  }

  /** Twilio's error answer for a code. */
  static error(status: number, code: number, message: string): HttpFailure {
    return { status, body: twilioError(status, code, message) };
  }

  protected handle(request: ReceivedRequest, res: ServerResponse): void {
    const fail = (status: number, code: number, message: string) =>
      sendJson(res, status, twilioError(status, code, message));
    const match = PATH.exec(request.path);
    if (!match) return fail(404, 20404, 'The requested resource was not found');
    if (request.method !== 'POST') return fail(405, 20004, 'Method not allowed');
    const auth = request.headers.authorization ?? '';
    const [user, pass] = auth.startsWith('Basic ')
      ? Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':', 2)
      : [];
    if (user !== this.accountSid || pass !== this.authToken || match[1] !== this.accountSid)
      return fail(401, 20003, 'Authenticate');
    // Twilio reads only form-encoded parameters: a JSON body reaches it as no parameters at all.
    const isForm = (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const params = isForm ? new URLSearchParams(request.body) : new URLSearchParams();
    const to = params.get('To');
    const from = params.get('From');
    if (!to) return fail(400, 21604, "A 'To' phone number is required.");
    if (!E164.test(to)) return fail(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!from) return fail(400, 21603, "A 'From' phone number is required.");
    if (!E164.test(from) || (this.from !== undefined && from !== this.from))
      return fail(
        400,
        21606,
        `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`,
      );
    const common = { to, from, at: Date.now() };
    if (match[2] === 'Messages') {
      const body = params.get('Body');
      if (!body) return fail(400, 21602, 'Message body is required.');
      if (body.length > 1600)
        return fail(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
      const failure = this.failures.shift();
      if (failure !== undefined) return answerFailure(res, failure);
      const sms: TwilioSms = { sid: `SM${randomBytes(16).toString('hex')}`, body, ...common };
      this.messages.push(sms);
      return sendJson(res, 201, {
        sid: sms.sid,
        account_sid: this.accountSid,
        to,
        from,
        body,
        status: 'queued',
        direction: 'outbound-api',
        num_segments: String(Math.ceil(body.length / 153)),
      });
    }
    const twiml = params.get('Twiml');
    const url = params.get('Url');
    if (!twiml && !url) return fail(400, 21205, 'Url parameter is required.');
    if (twiml && twiml.length > 4000) return fail(400, 21238, 'Twiml exceeds the 4000 character limit.');
    if (twiml && !wellFormedTwiml(twiml)) return fail(400, 12100, 'Document parse failure');
    const failure = this.failures.shift();
    if (failure !== undefined) return answerFailure(res, failure);
    const call: TwilioCall = {
      sid: `CA${randomBytes(16).toString('hex')}`,
      ...(twiml ? { twiml } : {}),
      ...(url ? { url } : {}),
      ...common,
    };
    this.calls.push(call);
    return sendJson(res, 201, { sid: call.sid, account_sid: this.accountSid, to, from, status: 'queued' });
  }
}

function twilioError(status: number, code: number, message: string) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** A `<Response>` root, and no `<` or `&` that is not markup or an entity: enough to catch unescaped text. */
function wellFormedTwiml(twiml: string): boolean {
  const body = twiml.replace(/^<\?xml[^>]*\?>/, '').trim();
  if (!body.startsWith('<Response>') || !body.endsWith('</Response>')) return false;
  if (/&(?!amp;|lt;|gt;|quot;|apos;|#\d+;|#x[0-9a-fA-F]+;)/.test(body)) return false;
  // Text between tags must not hold a raw '<': every '<' starts a tag name or a closing tag.
  return !/<(?![A-Za-z/])/.test(body);
}

/** The text a TwiML document says, unescaped (for assertions). */
export function spokenText(twiml: string): string {
  const said = /<Say[^>]*>([\s\S]*?)<\/Say>/.exec(twiml)?.[1] ?? '';
  return said
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}
