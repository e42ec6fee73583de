import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OPERATION_LIST, operationInputs } from '../../../contract/operations.ts';
import { IMPACTS, SEVERITIES } from '../../../domain/severity.ts';
import { ApiError } from '../errors.ts';
import { bearerMatches, firstIssue, sendError, toApiError } from '../http.ts';
import type { AppDeps } from '../http.ts';

const text = z.string().trim().min(1).max(10_000);

/**
 * Request bodies of the engineer API: each operation's input without `by`, strict (an unknown field is a
 * 400). The actor always comes from the bearer token, never the body.
 */
function operationBody(schema: z.ZodObject): z.ZodObject {
  const { by: _by, ...fields } = schema.shape;
  return z.strictObject(fields);
}

const declareBody = z.strictObject({
  title: text,
  severity: z.enum(SEVERITIES),
  service: z.string().min(1).optional(),
  impact: z.enum(IMPACTS).optional(),
  securityRelated: z.boolean().optional(),
});

const listQuery = z.strictObject({
  status: z.enum(['triggered', 'acknowledged', 'mitigated', 'resolved']).optional(),
  severity: z.enum(SEVERITIES).optional(),
});

/** `GET /api/incidents/:id?full=true`: with what a long incident keeps in its record store. */
const showQuery = z.strictObject({ full: z.enum(['true', 'false']).optional() });

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = firstIssue(result.error);
  throw new ApiError('BAD_REQUEST', issue.message, { field: issue.field });
}

/** The engineer API: per-person bearer tokens, operations as the workflow's validated updates. */
export function registerEngineerRoutes(app: FastifyInstance, deps: AppDeps): void {
  const actorOf = (request: FastifyRequest): string => {
    for (const [token, handle] of deps.engineerTokens) {
      if (bearerMatches(request.headers.authorization, token)) return handle;
    }
    throw new ApiError('UNAUTHORIZED', 'an engineer bearer token is required');
  };
  const guarded =
    (handler: (request: FastifyRequest, reply: FastifyReply, actor: string) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        return await handler(request, reply, actorOf(request));
      } catch (err) {
        return sendError(reply, toApiError(err));
      }
    };

  // Whose token this is: the CLI's API mode checks an explicit `--by` against it.
  app.get(
    '/api/whoami',
    guarded(async (_request, _reply, actor) => ({ handle: actor })),
  );
  app.get(
    '/api/incidents',
    guarded(async (request) => deps.incidents.listIncidents(parse(listQuery, request.query))),
  );
  app.post(
    '/api/incidents',
    guarded(async (request, reply, actor) => {
      const body = parse(declareBody, request.body);
      return reply.code(201).send(await deps.incidents.declare({ ...body, by: actor }));
    }),
  );
  app.get(
    '/api/incidents/:id',
    guarded(async (request) =>
      deps.incidents.getIncident(
        (request.params as { id: string }).id,
        parse(showQuery, request.query).full === 'true' ? { full: true } : {},
      ),
    ),
  );
  for (const operation of OPERATION_LIST) {
    const body = operationBody(operationInputs()[operation.name]);
    app.route({
      method: operation.http.method,
      url: `/api/incidents/:id/${operation.http.path}`,
      handler: guarded(async (request, _reply, actor) => {
        const argument = { ...parse(body, request.body ?? {}), by: actor };
        return deps.incidents.operate((request.params as { id: string }).id, operation.name, argument);
      }),
    });
  }
}
