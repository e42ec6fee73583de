import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIncidentId } from '../../../contract/incident-id.ts';
import { personByContact } from '../../../domain/people.ts';
import { act } from '../acting.ts';
import { ApiError } from '../errors.ts';
import { sendError } from '../http.ts';
import type { AppDeps } from '../http.ts';
import type { SlackModal } from '../slack-responder.ts';
import { verifySlackSignature } from '../verify.ts';
import { escapeSlack } from '../../../markup.ts';

/**
 * `POST /slack/interactions`: the Slack app's Interactivity Request URL.
 *
 * The contract with the messages the worker posts: an incident's message
 * carries buttons (Block Kit `button` elements in an `actions` block) whose
 * `action_id` is one of
 *   - `acknowledge`  → acknowledges the incident at once,
 *   - `post_update`  → opens a modal asking for the update (message, public?),
 *   - `resolve`      → opens a modal asking for the root cause and prevention,
 * and whose `value` is exactly the incident id (`INC-1a2b3c4d`). The modals'
 * `callback_id` is `incident_post_update` / `incident_resolve` and their
 * `private_metadata` the incident id; their submission (`view_submission`)
 * performs the operation, and a refusal is shown on the modal's first field.
 *
 * Every request is signed by Slack (`X-Slack-Signature` over the raw body,
 * `X-Slack-Request-Timestamp` within five minutes); anything else is a 401
 * and changes nothing. The acting engineer is the person whose `slack` is the
 * clicking user's id; anyone else is told so in the thread, and nothing
 * happens. Slack wants an answer within three seconds, so a button is
 * answered 200 at once and its outcome follows on the interaction's
 * `response_url`, seen only by the person who clicked.
 */

export const SLACK_ACTIONS = ['acknowledge', 'post_update', 'resolve'] as const;
type SlackAction = (typeof SLACK_ACTIONS)[number];
const CALLBACK = { post_update: 'incident_post_update', resolve: 'incident_resolve' } as const;

interface InteractionPayload {
  type?: unknown;
  user?: { id?: unknown };
  trigger_id?: unknown;
  response_url?: unknown;
  actions?: { action_id?: unknown; value?: unknown }[];
  view?: {
    callback_id?: unknown;
    private_metadata?: unknown;
    state?: { values?: Record<string, Record<string, { value?: unknown; selected_options?: unknown }>> };
  };
}

const plain = (text: string) => ({ type: 'plain_text' as const, text });

function textInput(blockId: string, label: string, options: { multiline: boolean; optional?: boolean }) {
  return {
    type: 'input',
    block_id: blockId,
    optional: options.optional ?? false,
    label: plain(label),
    element: { type: 'plain_text_input', action_id: blockId, multiline: options.multiline, max_length: 3000 },
  };
}

/** The modal a `post_update` or `resolve` button opens for `incidentId`. */
export function incidentModal(action: 'post_update' | 'resolve', incidentId: string): SlackModal {
  const base = {
    type: 'modal' as const,
    callback_id: CALLBACK[action],
    private_metadata: incidentId,
    close: plain('Cancel'),
  };
  if (action === 'post_update') {
    return {
      ...base,
      title: plain(`Update ${incidentId}`),
      submit: plain('Post update'),
      blocks: [
        textInput('message', 'What is happening', { multiline: true }),
        {
          type: 'input',
          block_id: 'public',
          optional: true,
          label: plain('Status page'),
          element: {
            type: 'checkboxes',
            action_id: 'public',
            options: [{ text: plain('Show this update on the public status page'), value: 'public' }],
          },
        },
      ],
    };
  }
  return {
    ...base,
    title: plain(`Resolve ${incidentId}`),
    submit: plain('Resolve'),
    blocks: [
      textInput('root_cause', 'Root cause', { multiline: true }),
      textInput('prevention', 'Prevention measures', { multiline: true, optional: true }),
    ],
  };
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function registerSlackRoutes(app: FastifyInstance, deps: AppDeps): void {
  // Work that follows the 200 (the acknowledgment, the modal); app.close() waits for it.
  const pending = new Set<Promise<void>>();
  const afterAnswer = (request: FastifyRequest, work: () => Promise<void>) => {
    const done: Promise<void> = work()
      .catch((err: unknown) => request.log.error({ err }, 'Slack interaction failed after answering'))
      .finally(() => pending.delete(done));
    pending.add(done);
  };
  app.addHook('onClose', async () => {
    await Promise.all([...pending]);
  });

  const tell = async (request: FastifyRequest, responseUrl: string | undefined, text: string) => {
    if (!responseUrl || !deps.slack) {
      request.log.warn('cannot answer a Slack interaction: no response_url or no Slack client');
      return;
    }
    // mrkdwn: a refusal may quote what someone wrote (`<!channel>` would be markup).
    await deps.slack.respond(responseUrl, { text: escapeSlack(text) });
  };

  const blockActions = (
    request: FastifyRequest,
    payload: InteractionPayload,
    handle: string | undefined,
    userId: string,
  ) => {
    const responseUrl = str(payload.response_url);
    const action = payload.actions?.find((a) => SLACK_ACTIONS.includes(a.action_id as SlackAction));
    if (!action) return; // another app's button, or a select: nothing of ours
    const actionId = action.action_id as SlackAction;
    const incidentId = str(action.value) ?? '';
    if (!handle) {
      afterAnswer(request, () =>
        tell(
          request,
          responseUrl,
          `Nothing done: your Slack user (${userId}) is not a person in the incident policy. Ask an admin to add \`slack: ${userId}\` to your entry under \`people\`.`,
        ),
      );
      return;
    }
    if (!isIncidentId(incidentId)) {
      afterAnswer(request, () =>
        tell(request, responseUrl, `Nothing done: "${incidentId}" is not an incident id.`),
      );
      return;
    }
    if (actionId === 'acknowledge') {
      afterAnswer(request, async () => {
        const outcome = await act(deps.incidents, incidentId, 'acknowledge', { by: handle });
        await tell(
          request,
          responseUrl,
          outcome.ok
            ? `Acknowledged ${incidentId} as ${handle}.`
            : `${incidentId} not acknowledged: ${outcome.reason}`,
        );
      });
      return;
    }
    const triggerId = str(payload.trigger_id);
    afterAnswer(request, async () => {
      if (!triggerId || !deps.slack) throw new Error('cannot open a modal: no trigger_id or no Slack client');
      try {
        await deps.slack.openView(triggerId, incidentModal(actionId, incidentId));
      } catch (err) {
        await tell(request, responseUrl, `Could not open the form (${(err as Error).message}); use the CLI.`);
        throw err;
      }
    });
  };

  const viewSubmission = async (
    reply: FastifyReply,
    payload: InteractionPayload,
    handle: string | undefined,
    userId: string,
  ) => {
    const view = payload.view ?? {};
    const incidentId = str(view.private_metadata) ?? '';
    const values = view.state?.values ?? {};
    const field = (block: string) => str(values[block]?.[block]?.value);
    const errors = (block: string, reason: string) =>
      reply.send({ response_action: 'errors', errors: { [block]: reason.slice(0, 1_000) } });
    if (view.callback_id === CALLBACK.post_update) {
      if (!handle) return errors('message', `your Slack user (${userId}) is not a person in the policy`);
      const message = field('message');
      if (!message) return errors('message', 'write the update');
      const selected = values['public']?.['public']?.selected_options;
      const isPublic =
        Array.isArray(selected) && selected.some((o) => (o as { value?: unknown }).value === 'public');
      const outcome = await act(deps.incidents, incidentId, 'postUpdate', {
        by: handle,
        message,
        ...(isPublic ? { public: true } : {}),
      });
      return outcome.ok ? reply.send() : errors('message', outcome.reason);
    }
    if (view.callback_id === CALLBACK.resolve) {
      if (!handle) return errors('root_cause', `your Slack user (${userId}) is not a person in the policy`);
      const rootCause = field('root_cause');
      if (!rootCause) return errors('root_cause', 'write the root cause');
      const prevention = field('prevention');
      const outcome = await act(deps.incidents, incidentId, 'resolve', {
        by: handle,
        rootCause,
        ...(prevention ? { prevention } : {}),
      });
      return outcome.ok ? reply.send() : errors('root_cause', outcome.reason);
    }
    return reply.send(); // another app's modal
  };

  app.register((scope, _options, done) => {
    // Slack posts form-encoded; the signature covers the body as sent, so it is kept raw and parsed after.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, parsed) => parsed(null, body),
    );
    scope.post('/slack/interactions', async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : undefined;
      const genuine =
        raw !== undefined &&
        verifySlackSignature({
          signingSecret: deps.slackSigningSecret ?? '',
          timestamp: request.headers['x-slack-request-timestamp'] as string | undefined,
          signature: request.headers['x-slack-signature'] as string | undefined,
          body: raw,
        });
      if (!genuine)
        return sendError(
          reply,
          new ApiError('UNAUTHORIZED', 'not a request Slack signed (or signed too long ago)'),
        );
      let payload: InteractionPayload;
      try {
        payload = JSON.parse(new URLSearchParams(raw).get('payload') ?? '') as InteractionPayload;
        if (typeof payload !== 'object' || payload === null) throw new Error('not an object');
      } catch {
        return sendError(
          reply,
          new ApiError('BAD_REQUEST', 'payload: expected Slack interaction JSON', { field: 'payload' }),
        );
      }
      const userId = str(payload.user?.id) ?? '';
      const handle = personByContact(deps.policy, 'slack', userId);
      if (payload.type === 'block_actions') {
        blockActions(request, payload, handle, userId);
        return reply.send();
      }
      if (payload.type === 'view_submission') return viewSubmission(reply, payload, handle, userId);
      return reply.send();
    });
    done();
  });
}
