import axios from 'axios';
import type { AxiosInstance } from 'axios';

/**
 * The one HTTP client of the playbooks' activities (Prometheus' API, health probes): every outbound request
 * of a playbook goes through an instance from {@link createPlaybookHttp}, so the deadline, the redirect
 * limit and the User-Agent are decided here once.
 *
 * - `validateStatus: () => true`: no status throws; each caller judges the answer (a 503 of a probed
 *   service is a finding, a 400 of Prometheus a bad query, a 5xx of Prometheus worth a retry).
 * - `proxy: false`: axios would otherwise pick `HTTP_PROXY`/`HTTPS_PROXY` up from the worker's environment
 *   and send in-cluster requests (`prometheus.monitoring.svc`) to a corporate proxy.
 * - A few redirects only (a health URL behind a trailing-slash redirect), never a chain.
 * - `timeout` is axios' idle/connect deadline; callers that need a deadline for the whole exchange add an
 *   `AbortSignal.timeout(...)` of their own.
 */
export interface PlaybookHttpOptions {
  /** Deadline of a request, in milliseconds. Default {@link DEFAULT_PLAYBOOK_HTTP_TIMEOUT_MS}. */
  timeoutMs?: number;
}

export const DEFAULT_PLAYBOOK_HTTP_TIMEOUT_MS = 10_000;
export const PLAYBOOK_HTTP_USER_AGENT = 'pno-incident-response';
/** Largest answer read (Prometheus' JSON for a large vector stays far below). */
const MAX_CONTENT_BYTES = 32 * 1024 * 1024;

export function createPlaybookHttp(opts: PlaybookHttpOptions = {}): AxiosInstance {
  const timeout = opts.timeoutMs ?? DEFAULT_PLAYBOOK_HTTP_TIMEOUT_MS;
  if (!(Number.isInteger(timeout) && timeout > 0))
    throw new RangeError(`timeoutMs must be a positive whole number of milliseconds, got ${timeout}`);
  return axios.create({
    adapter: 'http',
    timeout,
    validateStatus: () => true,
    maxRedirects: 3,
    maxContentLength: MAX_CONTENT_BYTES,
    proxy: false,
    headers: { 'User-Agent': PLAYBOOK_HTTP_USER_AGENT },
  });
}
