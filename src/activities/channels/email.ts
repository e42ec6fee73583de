import { createTransport } from 'nodemailer';
import type { NodemailerError, SMTPTransportOptions } from 'nodemailer';
import { resolveEndpoint } from './credential.ts';
import type { Credential } from './credential.ts';
import { DeliveryError } from './errors.ts';

/**
 * The one place that knows SMTP: nodemailer's SMTP transport, from a
 * connection URL (`SMTP_URL`, `smtp://user:pass@host:port`, or `smtps://`).
 *
 * Retried: 4yz replies (RFC 5321's transient negative completions: 421,
 * 450, 451, 452, 454) and failures to connect, time-outs and dropped
 * connections; refused: 5yz replies (550 mailbox unavailable, 535 bad
 * credentials), TLS and authentication set-up failures, and bad envelopes.
 * The connection URL holds a password: no error message repeats it.
 */
export interface EmailMessage {
  to: string[];
  subject: string;
  text: string;
  html?: string;
  /** The sender; the constructor's `from` when omitted. */
  from?: string;
  /** Extra headers, e.g. `X-Incident-Id` for mail filters. */
  headers?: Record<string, string>;
}

export interface EmailSent {
  /** The Message-ID header of what was sent. */
  messageId: string;
  /** Recipients the server refused while accepting others (all refused is an error). */
  rejected: string[];
}

/** What the activities need from email. */
export interface EmailClient {
  send(message: EmailMessage): Promise<EmailSent>;
}

export interface SmtpEmailOptions {
  /** The SMTP connection URL (SMTP_URL), or how to get it at call time. */
  url: Credential;
  /** Default sender. */
  from?: string;
  /** Deadline for each of: connecting, the greeting, and any silence on the socket. */
  timeoutMs?: number;
}

/** Network-level nodemailer codes: the message never reached a server's verdict. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'EPROTOCOL',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
]);

export class SmtpEmail implements EmailClient {
  private readonly url: Credential;
  private readonly from: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: SmtpEmailOptions) {
    this.url = options.url;
    this.from = options.from;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  async send(message: EmailMessage): Promise<EmailSent> {
    const url = resolveEndpoint('email', 'the SMTP URL (SMTP_URL)', this.url, ['smtp:', 'smtps:']);
    const secrets = [url.href, decodeURIComponent(url.password), url.password];
    const from = message.from ?? this.from;
    if (!from) throw DeliveryError.notConfigured('email', 'SMTP is not configured: no sender (from) address');
    if (message.to.length === 0)
      throw DeliveryError.refused('email', 'SMTP refused the message: no recipients');
    // One short-lived connection per send: incident mail is rare, and a pooled connection idling
    // between incidents is one more thing to go stale. nodemailer connects on send, not here.
    const options: SMTPTransportOptions = {
      url: url.href,
      connectionTimeout: this.timeoutMs,
      greetingTimeout: this.timeoutMs,
      socketTimeout: this.timeoutMs,
      dnsTimeout: this.timeoutMs,
    };
    const transport = createTransport(options);
    try {
      const info = await transport.sendMail({
        from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
        ...(message.headers ? { headers: message.headers } : {}),
      });
      return { messageId: info.messageId, rejected: info.rejected.map(String) };
    } catch (err) {
      throw smtpFailure(err, secrets);
    } finally {
      transport.close();
    }
  }
}

/** A nodemailer error as a DeliveryError: 4yz and network failures transient, the rest refused. */
export function smtpFailure(err: unknown, secrets: readonly (string | undefined)[] = []): DeliveryError {
  const e = (err ?? {}) as NodemailerError;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const text = e.response ?? (err instanceof Error ? err.message : String(err));
  const base = { secrets, cause: undefined, code: responseCode ? String(responseCode) : e.code };
  if (responseCode !== undefined) {
    const verdict = responseCode >= 400 && responseCode < 500 ? 'transient' : 'refused';
    return new DeliveryError({
      ...base,
      provider: 'email',
      reason: verdict,
      message: `SMTP ${verdict === 'transient' ? 'deferred' : 'refused'} the message${e.command ? ` at ${e.command}` : ''}: ${text}`,
    });
  }
  if (e.code && (TRANSIENT_CODES.has(e.code) || TRANSIENT_CODES.has(e.originalCode ?? '')))
    return DeliveryError.transient('email', `SMTP unreachable: ${text}`, base);
  return DeliveryError.refused('email', `SMTP failed: ${text}`, base);
}
