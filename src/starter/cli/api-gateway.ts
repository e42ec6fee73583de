import { OPERATIONS } from '../../contract/operations.ts';
import type { OperationArgs, OperationName } from '../../contract/operations.ts';
import type { IncidentState } from '../../domain/incident.ts';
import type { OutboxEntry } from '../../outbox-file.ts';
import type { DeclareInput, IncidentGateway, IncidentSummary } from '../client/incidents.ts';
import { CliError } from './errors.ts';
import type { CliErrorCode } from './errors.ts';

/**
 * The CLI's API mode (`INCIDENT_API_URL` and `INCIDENT_TOKEN`): the incident commands go through the
 * engineer API (`src/starter/api/routes/engineers.ts`) with that engineer's bearer token instead of talking
 * to Temporal, so that production gives engineers the API and never Temporal itself. The actor is the
 * token's person: the API takes no `by` from a request, so none is sent.
 *
 * Every HTTP answer becomes the CLI's error and exit code: 400 usage (2), 401 `UNAUTHORIZED` (1), 403
 * `FORBIDDEN` (1), 404 `NOT_FOUND` (1), 409 `REFUSED` with the workflow's reason (1); 503 (Temporal
 * unreachable behind the API, or the API overloaded), 502/504 from a proxy, a refused connection and no
 * answer within the timeout exit 3.
 */

/** How long one request may take before the CLI gives up (exit 3). */
export const API_TIMEOUT_MS = 15_000;

/** The placeholder `--by` of a command in API mode: never sent, the API's actor is the token's person. */
export const TOKEN_ACTOR = '(INCIDENT_TOKEN)';

/** What the incident commands need, in either mode. */
export type CliIncidents = Pick<IncidentGateway, 'listIncidents' | 'getIncident' | 'declare' | 'operate'>;

export interface ApiModeSettings {
  /** The API's base URL, ending in `/` (a path prefix behind a proxy is kept). */
  url: URL;
  token: string;
}

/**
 * API mode's settings from the environment, or undefined when `INCIDENT_API_URL` is not set (the CLI then
 * talks to Temporal). One of the two variables without the other is a configuration error rather than a
 * silent fallback to Temporal.
 */
export function apiModeSettings(
  env: Readonly<Record<string, string | undefined>>,
): ApiModeSettings | undefined {
  const rawUrl = env['INCIDENT_API_URL']?.trim();
  const token = env['INCIDENT_TOKEN']?.trim();
  if (!rawUrl) {
    if (token)
      throw new CliError(
        'CONFIG',
        'INCIDENT_TOKEN is set but INCIDENT_API_URL is not: set both to act through the API',
      );
    return undefined;
  }
  if (!token)
    throw new CliError(
      'CONFIG',
      "INCIDENT_API_URL is set but INCIDENT_TOKEN is not: set it to your API token (the policy person's tokenEnv)",
    );
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new CliError('CONFIG', `INCIDENT_API_URL: expected a URL such as https://incidents.example.com`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError('CONFIG', `INCIDENT_API_URL: expected an http or https URL, got ${url.protocol}`);
  if (url.username || url.password)
    throw new CliError('CONFIG', 'INCIDENT_API_URL: put the token in INCIDENT_TOKEN, not in the URL');
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { url, token };
}

/** The incident commands through the engineer API. */
export class ApiIncidents implements CliIncidents {
  private readonly url: URL;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(settings: ApiModeSettings, options: { timeoutMs?: number } = {}) {
    this.url = settings.url;
    this.token = settings.token;
    this.timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS;
  }

  /** Where the API is, for messages (never with the token). */
  get origin(): string {
    return this.url.href.replace(/\/$/, '');
  }

  listIncidents(filter: { status?: string; severity?: string } = {}): Promise<IncidentSummary[]> {
    const query = new URLSearchParams();
    if (filter.status) query.set('status', filter.status);
    if (filter.severity) query.set('severity', filter.severity);
    const search = query.size > 0 ? `?${query.toString()}` : '';
    return this.request<IncidentSummary[]>('GET', `api/incidents${search}`);
  }

  getIncident(id: string, options: { full?: boolean } = {}): Promise<IncidentState> {
    return this.request<IncidentState>('GET', `${incidentPath(id)}${options.full ? '?full=true' : ''}`);
  }

  declare(input: DeclareInput): Promise<IncidentState> {
    const { by: _by, ...body } = input;
    return this.request<IncidentState>('POST', 'api/incidents', body);
  }

  operate<K extends OperationName>(
    id: string,
    operation: K,
    argument: OperationArgs<K>,
  ): Promise<IncidentState> {
    const { method, path } = OPERATIONS[operation].http;
    const { by: _by, ...body } = argument as Record<string, unknown>;
    return this.request<IncidentState>(method, `${incidentPath(id)}/${path}`, body);
  }

  /** `GET /api/whoami`: the handle of the person the token belongs to. */
  async whoami(): Promise<string> {
    const { handle } = await this.request<{ handle: string }>('GET', 'api/whoami');
    return handle;
  }

  /** `GET /outbox?format=json` (only a laptop's API has one; 404 elsewhere). */
  async outbox(channel: string | undefined): Promise<OutboxEntry[]> {
    const search = channel ? `&channel=${encodeURIComponent(channel)}` : '';
    const { messages } = await this.request<{ messages: OutboxEntry[] }>(
      'GET',
      `outbox?format=json${search}`,
      undefined,
      'OUTBOX_OFF',
    );
    return messages;
  }

  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: object,
    notFound: CliErrorCode = 'NOT_FOUND',
  ): Promise<T> {
    const target = new URL(path, this.url);
    let response: Response;
    let text: string;
    try {
      // The timeout bounds the body as well as the headers.
      response = await fetch(target, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      throw new CliError(
        'API_UNAVAILABLE',
        `the API at ${this.origin} is unreachable: ${networkReason(err, this.timeoutMs)}`,
      );
    }
    if (response.ok) {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new CliError(
          'ERROR',
          `the API at ${this.origin} answered ${method} /${path} with something other than JSON`,
        );
      }
    }
    throw this.failure(response.status, text, `${method} /${path}`, notFound);
  }

  /** The CLI's error for an HTTP error answer. */
  private failure(status: number, text: string, what: string, notFound: CliErrorCode): CliError {
    const error = errorBody(text);
    const message = error?.message ?? `HTTP ${status}`;
    switch (status) {
      case 400:
        return new CliError('USAGE', `the API refused the request: ${message}`);
      case 401:
        return new CliError(
          'UNAUTHORIZED',
          `the API at ${this.origin} does not accept INCIDENT_TOKEN (401): it is not the token of any person of its policy`,
        );
      case 403:
        return new CliError('FORBIDDEN', message);
      case 404:
        // Ours carry `{"error":{code}}`; anything else is a route this API does not have.
        return error
          ? new CliError(notFound, message)
          : new CliError(
              'ERROR',
              `the API at ${this.origin} has no ${what} (is INCIDENT_API_URL the incident API?)`,
            );
      case 409:
        return new CliError('REFUSED', message);
      case 502:
      case 503:
      case 504:
        if (error?.code === 'RECORD_INCOMPLETE')
          return new CliError('RECORD_INCOMPLETE', `the API at ${this.origin}: ${message}`);
        return error?.code === 'TEMPORAL_UNAVAILABLE'
          ? new CliError(
              'TEMPORAL_UNAVAILABLE',
              `the API at ${this.origin} cannot reach Temporal (503): ${message}`,
            )
          : new CliError(
              'API_UNAVAILABLE',
              `the API at ${this.origin} is unavailable (${status}): ${message}`,
            );
      default:
        return new CliError('ERROR', `the API at ${this.origin} answered ${status}: ${message}`);
    }
  }
}

function incidentPath(id: string): string {
  return `api/incidents/${encodeURIComponent(id)}`;
}

/** The API's `{"error":{"code","message"}}`, or undefined for any other body. */
function errorBody(text: string): { code: string; message: string } | undefined {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
  } catch {
    return undefined;
  }
}

/** Why fetch failed, in a few words: `connection refused`, `no answer within 15 s`. */
function networkReason(err: unknown, timeoutMs: number): string {
  if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return `no answer within ${timeoutMs / 1000} s`;
  const cause =
    err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
