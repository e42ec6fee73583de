import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import type { AddressObject } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { Recorded } from './stand-in.ts';

export interface ReceivedMail {
  /** The envelope sender (MAIL FROM). */
  envelopeFrom: string;
  /** The envelope recipients (RCPT TO). */
  envelopeTo: string[];
  /** The From header's addresses. */
  from: string[];
  /** The To header's addresses. */
  to: string[];
  subject: string;
  text: string;
  html: string | undefined;
  messageId: string | undefined;
  headers: Map<string, unknown>;
  /** The authenticated user, when the sink requires auth. */
  user: string | undefined;
  at: number;
}

/**
 * A local SMTP sink (smtp-server) on a free loopback port that parses every
 * message it accepts (mailparser). No TLS (STARTTLS is not offered), auth
 * optional unless `auth` is given. `failNext(code, n)` answers the next n
 * messages' DATA with a temporary (451) or permanent (550) reply.
 */
export class SmtpSink {
  readonly mails = new Recorded<ReceivedMail>('mails');
  private readonly server: SMTPServer;
  private readonly auth: { user: string; pass: string } | undefined;
  private readonly failures: { code: number; message: string }[] = [];
  private port = 0;

  constructor(options: { auth?: { user: string; pass: string } } = {}) {
    this.auth = options.auth;
    this.server = new SMTPServer({
      logger: false,
      disabledCommands: options.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !options.auth,
      allowInsecureAuth: true,
      size: 10 * 1024 * 1024,
      onAuth: (auth, _session, callback) => {
        if (this.auth && auth.username === this.auth.user && auth.password === this.auth.pass)
          return callback(null, { user: auth.username });
        return callback(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
      },
      onData: (stream, session, callback) => {
        const failure = this.failures.shift();
        simpleParser(stream)
          .then((parsed) => {
            if (failure)
              return callback(Object.assign(new Error(failure.message), { responseCode: failure.code }));
            this.mails.push({
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              envelopeTo: session.envelope.rcptTo.map((r) => r.address),
              from: addresses(parsed.from),
              to: addresses(parsed.to),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : undefined,
              messageId: parsed.messageId,
              headers: parsed.headers,
              user: typeof session.user === 'string' ? session.user : undefined,
              at: Date.now(),
            });
            return callback();
          })
          .catch((err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
      },
    });
  }

  /** Listens on 127.0.0.1; answers the SMTP URL (SMTP_URL), with the credentials when auth is on. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.server.address() as AddressInfo).port;
    return this.url();
  }

  /** The SMTP URL, optionally with other credentials (to test a refused login). */
  url(credentials: { user: string; pass: string } | undefined = this.auth): string {
    const auth = credentials
      ? `${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.pass)}@`
      : '';
    return `smtp://${auth}127.0.0.1:${this.port}`;
  }

  /** The next `count` messages get this reply at the end of DATA: 451 is temporary, 550 permanent. */
  failNext(
    code: number,
    count = 1,
    message = code >= 500
      ? 'Requested action not taken: mailbox unavailable'
      : 'Requested action aborted: local error in processing',
  ): void {
    for (let i = 0; i < count; i += 1) this.failures.push({ code, message });
  }

  private stopped: Promise<void> | undefined;

  /** Stops listening and closes open connections; safe to call twice. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => this.server.close(() => resolve()));
    return this.stopped;
  }
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  if (!field) return [];
  return (Array.isArray(field) ? field : [field]).flatMap((a) =>
    a.value.map((v) => v.address ?? '').filter(Boolean),
  );
}
