import type { FastifyInstance } from 'fastify';
import { isIncidentId } from '../../../contract/incident-id.ts';
import { personByContact } from '../../../domain/people.ts';
import { act } from '../acting.ts';
import type { ActOutcome } from '../acting.ts';
import { ApiError } from '../errors.ts';
import { sendError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import { escapeXml } from '../../../markup.ts';
import { verifyTwilioSignature } from '../verify.ts';

/**
 * `POST /webhooks/sms`: Twilio's "A message comes in" webhook for the number
 * the pages are sent from. An engineer answers a page by SMS:
 *   `ACK <incident id>`                  acknowledges it,
 *   `RESOLVE <incident id> <root cause>` resolves it with that root cause,
 * and gets an SMS back (TwiML `<Message>`) saying what happened or why not.
 * The sender is the person whose policy `phone` is the `From` number
 * (compared without spaces, dashes, dots or parentheses).
 *
 * Twilio signs the full URL it called (`X-Twilio-Signature`), which behind a
 * proxy or tunnel is not the one this process sees: the URL checked is
 * `publicUrl` (INCIDENT_PUBLIC_URL, the API's external base URL) + the path
 * and query of the request. A request that does not verify is a 401 and
 * changes nothing.
 */
const USAGE = 'Reply ACK <incident id> to acknowledge, or RESOLVE <incident id> <root cause> to resolve.';
/** An SMS reply is cut to one that fits Twilio's 1,600 characters. */
const REPLY_MAX = 1_500;

function twiml(message: string): string {
  const text = message.length > REPLY_MAX ? `${message.slice(0, REPLY_MAX - 1)}…` : message;
  return `<?xml version="1.0" encoding="UTF-8"?><Response><Message>${escapeXml(text)}</Message></Response>`;
}

/** `inc-1A2B3C4D` as typed on a phone → `INC-1a2b3c4d`. */
function incidentIdOf(word: string | undefined): string | undefined {
  if (word === undefined) return undefined;
  const id = `INC-${word.replace(/^inc-/i, '').toLowerCase()}`;
  return isIncidentId(id) ? id : undefined;
}

function said(outcome: ActOutcome, done: string, id: string): string {
  return outcome.ok ? done : `${id}: not done, ${outcome.reason}`;
}

export function registerSmsRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.register((scope, _options, done) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, parsed) => parsed(null, body),
    );
    scope.post('/webhooks/sms', async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : undefined;
      const form = new URLSearchParams(raw ?? '');
      const params: Record<string, string[]> = {};
      for (const [name, value] of form) (params[name] ??= []).push(value);
      const signature = request.headers['x-twilio-signature'];
      const base = (deps.publicUrl ?? '').replace(/\/+$/, '');
      const genuine =
        raw !== undefined &&
        verifyTwilioSignature({
          authToken: deps.twilioAuthToken ?? '',
          url: `${base}${request.url}`,
          params,
          signature: typeof signature === 'string' ? signature : undefined,
        });
      if (!genuine) return sendError(reply, new ApiError('UNAUTHORIZED', 'not a request Twilio signed'));
      const answer = (message: string) => reply.type('text/xml; charset=utf-8').send(twiml(message));

      const from = form.get('From') ?? '';
      const by = personByContact(deps.policy, 'phone', from);
      if (!by)
        return answer(`Nothing done: ${from || 'this number'} is not a phone number in the incident policy.`);
      const [, command = '', word, rest = ''] =
        /^(\S*)(?:\s+(\S+))?\s*([\s\S]*)$/.exec((form.get('Body') ?? '').trim()) ?? [];
      const verb = command.toUpperCase();
      if (verb !== 'ACK' && verb !== 'RESOLVE') return answer(`Unknown command "${command}". ${USAGE}`);
      const id = incidentIdOf(word);
      if (!id) return answer(`"${word ?? ''}" is not an incident id (INC- and 8 hex digits). ${USAGE}`);
      if (verb === 'ACK') {
        const outcome = await act(deps.incidents, id, 'acknowledge', { by });
        return answer(said(outcome, `${id} acknowledged by ${by}.`, id));
      }
      const rootCause = rest.trim();
      if (rootCause === '') return answer(`Nothing done: say the root cause. ${USAGE}`);
      const outcome = await act(deps.incidents, id, 'resolve', { by, rootCause });
      return answer(said(outcome, `${id} resolved by ${by}.`, id));
    });
    done();
  });
}
