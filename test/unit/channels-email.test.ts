import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/activities/channels/errors.ts';
import { SmtpEmail } from '../../src/activities/channels/email.ts';
import { SmtpSink } from '../support/smtp-sink.ts';

const auth = { user: 'incident-bot', pass: 'smtp-pass-7f3a9c' };
let sink: SmtpSink | undefined;
afterEach(async () => {
  await sink?.stop();
  sink = undefined;
});

async function setup(options: { auth?: typeof auth } = { auth }) {
  sink = new SmtpSink(options);
  const url = await sink.start();
  return { sink, url, email: new SmtpEmail({ url, from: 'incidents@example.com', timeoutMs: 2_000 }) };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

const message = {
  to: ['oncall@example.com', 'lead@example.com'],
  subject: '🚨 P1 INC-1A2B3C4D High error rate',
  text: 'Error rate 12% on pno-physics-bench.\nAck: incident ack INC-1A2B3C4D',
  html: '<p>Error rate <b>12%</b></p>',
};

describe('SMTP email', () => {
  it('sends text and HTML to every recipient over an authenticated connection, answering the Message-ID', async () => {
    const { sink, email } = await setup();
    const sent = await email.send(message);
    expect(sent.messageId).toMatch(/^<.+@.+>$/);
    expect(sent.rejected).toEqual([]);
    const [mail] = await sink.mails.waitFor(1);
    expect(mail).toMatchObject({
      from: ['incidents@example.com'],
      to: message.to,
      envelopeTo: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      messageId: sent.messageId,
      user: auth.user,
    });
  });

  it('a message names its own sender over the default', async () => {
    const { sink, email } = await setup();
    await email.send({ ...message, from: 'P0 Bot <p0@example.com>' });
    expect((await sink.mails.waitFor(1))[0]?.from).toEqual(['p0@example.com']);
  });

  it('a 4yz reply (451) is transient; the next attempt goes through', async () => {
    const { sink, email } = await setup();
    sink.failNext(451);
    const err = await failure(email.send(message));
    expect(err).toMatchObject({ provider: 'email', reason: 'transient', retryable: true, code: '451' });
    expect(err.message).toContain('451');
    await email.send(message);
    expect(sink.mails.length).toBe(1);
  });

  it('a 5yz reply (550) is refused', async () => {
    const { sink, email } = await setup();
    sink.failNext(550);
    const err = await failure(email.send(message));
    expect(err).toMatchObject({ reason: 'refused', retryable: false, code: '550' });
    expect(err.message).toContain('mailbox unavailable');
  });

  it('wrong credentials are refused (535) and the password appears nowhere in the error', async () => {
    const { sink } = await setup();
    const wrong = { user: auth.user, pass: 'wrong-pass-d41d8c' };
    const email = new SmtpEmail({ url: sink.url(wrong), from: 'incidents@example.com', timeoutMs: 2_000 });
    const err = await failure(email.send(message));
    expect(err).toMatchObject({ reason: 'refused', code: '535' });
    expect(err.message).not.toContain(wrong.pass);
    expect(err.message).not.toContain(auth.pass);
  });

  it('an unreachable server is transient, without the password in the message', async () => {
    const { sink: stopped, url } = await setup();
    await stopped.stop();
    const email = new SmtpEmail({ url, from: 'incidents@example.com', timeoutMs: 1_000 });
    const err = await failure(email.send(message));
    expect(err).toMatchObject({ reason: 'transient', retryable: true });
    expect(err.message).not.toContain(auth.pass);
  });

  it('an unset or malformed SMTP_URL is not_configured', async () => {
    const env: Record<string, string | undefined> = {};
    const unset = new SmtpEmail({ url: () => env.SMTP_URL, from: 'a@example.com' });
    const err = await failure(unset.send(message));
    expect(err).toMatchObject({ reason: 'not_configured', retryable: false });
    expect(err.message).toContain('SMTP_URL');
    const http = new SmtpEmail({ url: 'http://user:secretpw@host', from: 'a@example.com' });
    const bad = await failure(http.send(message));
    expect(bad.reason).toBe('not_configured');
    expect(bad.message).not.toContain('secretpw');
  });
});
