/** Errors of the Temporal gateway that every entry point (API, CLI) maps to its own answer. */

export class IncidentNotFoundError extends Error {
  constructor(id: string) {
    super(`no incident ${id}`);
    this.name = 'IncidentNotFoundError';
  }
}

/** The workflow refused an operation (its validator's reason). */
export class IncidentRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IncidentRefusedError';
  }
}

/**
 * The workflow refused an operation because the actor's roles do not permit it (the policy's
 * `permissions`; the validator's failure type `Forbidden`). A refusal still, for callers that only say why.
 */
export class IncidentForbiddenError extends IncidentRefusedError {
  constructor(message: string) {
    super(message);
    this.name = 'IncidentForbiddenError';
  }
}

/** The maintenance workflow refused a window or its end (its validator's reason). */
export class MaintenanceRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MaintenanceRefusedError';
  }
}

/** No maintenance window has that id. */
export class MaintenanceNotFoundError extends Error {
  constructor(id: string) {
    super(`no maintenance window ${id}`);
    this.name = 'MaintenanceNotFoundError';
  }
}

/**
 * The incident's workflow cannot answer because no worker runs it: no worker polls the task queue, or the
 * one that does did not answer in time. The API answers 503 (`WORKER_UNAVAILABLE`), the CLI exits 3.
 */
export class WorkerUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WorkerUnavailableError';
  }
}

/**
 * A full read (`show --full`) found the incident record store without entries the incident's runs let go:
 * not the directory the worker writes, or an append still on its way. The API answers 503
 * (`RECORD_INCOMPLETE`, ask again); never part of the record as if it were all.
 */
export class RecordIncompleteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordIncompleteError';
  }
}

/** What an engineer reads when no worker polls the incidents' task queue. */
export function noWorkerMessage(taskQueue: string): string {
  return (
    `no worker is polling task queue ${taskQueue}: the incident's workflow cannot answer until one does ` +
    '(start the worker: npm run worker; in Kubernetes, check the incident-worker pods); its state is safe in Temporal'
  );
}

/** gRPC status codes that mean "Temporal is not answering" rather than "the request is wrong". */
const UNAVAILABLE_GRPC_CODES = new Set([
  4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */,
]);

export function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    // Temporal answers, but nothing runs the workflow: unreachable all the same for whoever asked (CLI exit 3).
    if (e instanceof WorkerUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && UNAVAILABLE_GRPC_CODES.has(code)) return true;
    if (e.name === 'ServiceError' && /UNAVAILABLE|DEADLINE|ECONNREFUSED|connect/i.test(e.message))
      return true;
    if (/ECONNREFUSED|Failed to connect|transport error/i.test(e.message)) return true;
  }
  return false;
}

/** The gRPC status code of the error or of one of its causes, e.g. 4 DEADLINE_EXCEEDED. */
export function grpcCodeOf(err: unknown): number | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/**
 * Temporal's own verdict on a query no worker could take: FAILED_PRECONDITION "no poller seen for task queue
 * recently, worker may be down".
 */
export function isNoPollerError(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === 9 && /no poller/i.test(e.message)) return true;
  }
  return false;
}
