import { escapeXml } from '../../markup.ts';
import { resolveCredential, resolveEndpoint } from './credential.ts';
import type { Credential } from './credential.ts';
import { DEFAULT_TIMEOUT_MS, excerpt, parseJson, post, statusFailure } from './http.ts';
import { truncateText } from './text.ts';

/**
 * The one place that knows Twilio's shapes: the REST API (2010-04-01) for
 * SMS (`Messages.json`) and voice calls (`Calls.json` with inline TwiML),
 * form-encoded with HTTP basic auth `<Account SID>:<auth token>`. The
 * `X-Twilio-Signature` on the webhooks Twilio sends back is checked by the
 * API (src/starter/api/verify.ts).
 *
 * 201 with the resource's `sid` is success. Retried: 429 and 5xx; refused:
 * 400 (Twilio's `code` and `message`, e.g. 21211 invalid `To`), 401 and
 * every other status.
 */
export const TWILIO_API_URL = 'https://api.twilio.com';
/** Twilio refuses a message body over 1,600 characters (error 21617). */
export const TWILIO_SMS_MAX = 1_600;
/** Twilio refuses a `Twiml` parameter over 4,000 characters. */
export const TWILIO_TWIML_MAX = 4_000;

export interface TwilioCreated {
  /** The Message (`SM…`) or Call (`CA…`) sid. */
  sid: string;
  status: string;
}

/** What the activities need for SMS and phone. */
export interface PhoneClient {
  sendSms(message: { to: string; body: string }): Promise<TwilioCreated>;
  call(call: { to: string; say: string }): Promise<TwilioCreated>;
}

export interface TwilioApiOptions {
  accountSid: Credential;
  authToken: Credential;
  /** The sending number (TWILIO_FROM), E.164. */
  from: Credential;
  /** TWILIO_API_URL; Twilio's own by default. */
  apiUrl?: Credential;
  timeoutMs?: number;
}

export class TwilioApi implements PhoneClient {
  private readonly accountSid: Credential;
  private readonly authToken: Credential;
  private readonly from: Credential;
  private readonly apiUrl: Credential;
  private readonly timeoutMs: number;

  constructor(options: TwilioApiOptions) {
    this.accountSid = options.accountSid;
    this.authToken = options.authToken;
    this.from = options.from;
    this.apiUrl = options.apiUrl ?? TWILIO_API_URL;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** An SMS; a body over 1,600 characters is cut. */
  sendSms(message: { to: string; body: string }): Promise<TwilioCreated> {
    return this.create('Messages.json', { To: message.to, Body: truncateText(message.body, TWILIO_SMS_MAX) });
  }

  /** A phone call that reads `say` aloud (twice, so a woken engineer hears it through). */
  call(call: { to: string; say: string }): Promise<TwilioCreated> {
    return this.create('Calls.json', { To: call.to, Twiml: twimlSay(call.say) });
  }

  private async create(resource: string, params: Record<string, string>): Promise<TwilioCreated> {
    const sid = resolveCredential('twilio', 'the account SID (TWILIO_ACCOUNT_SID)', this.accountSid);
    const token = resolveCredential('twilio', 'the auth token (TWILIO_AUTH_TOKEN)', this.authToken);
    const from = resolveCredential('twilio', 'the sending number (TWILIO_FROM)', this.from);
    const base = resolveEndpoint('twilio', 'the API URL (TWILIO_API_URL)', this.apiUrl);
    const url = new URL(
      `${base.href.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(sid)}/${resource}`,
    );
    const basic = Buffer.from(`${sid}:${token}`).toString('base64');
    const secrets = [token, basic];
    const answer = await post({
      provider: 'twilio',
      url,
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ ...params, From: from }).toString(),
      timeoutMs: this.timeoutMs,
      secrets,
    });
    const body = parseJson(answer.text) as
      { sid?: unknown; status?: unknown; code?: unknown; message?: unknown } | undefined;
    if (answer.status >= 200 && answer.status < 300 && typeof body?.sid === 'string')
      return { sid: body.sid, status: typeof body.status === 'string' ? body.status : 'queued' };
    const code =
      typeof body?.code === 'number' || typeof body?.code === 'string' ? String(body.code) : undefined;
    const detail =
      typeof body?.message === 'string' ? `${code ? `${code} ` : ''}${body.message}` : excerpt(answer.text);
    throw statusFailure('twilio', answer, detail, { code, secrets });
  }
}

/** TwiML that reads the text aloud twice; fits Twilio's 4,000-character `Twiml` limit. */
export function twimlSay(text: string): string {
  const open = '<?xml version="1.0" encoding="UTF-8"?><Response><Say loop="2">';
  const close = '</Say></Response>';
  // Escaping can only lengthen the text, so cut the raw text until the escaped one fits.
  let say = withoutControlCharacters(text);
  let escaped = escapeXml(say);
  while (open.length + escaped.length + close.length > TWILIO_TWIML_MAX) {
    say = truncateText(
      say,
      say.length - Math.max(1, open.length + escaped.length + close.length - TWILIO_TWIML_MAX),
    );
    escaped = escapeXml(say);
  }
  return `${open}${escaped}${close}`;
}

/** XML 1.0 allows no control characters but tab, newline and carriage return. */
function withoutControlCharacters(text: string): string {
  let out = '';
  for (const c of text) out += c < ' ' && c !== '\t' && c !== '\n' && c !== '\r' ? ' ' : c;
  return out;
}

export { escapeXml };
