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

/** gRPC status codes that mean "Temporal is not answering" rather than "the request is wrong". */
const UNAVAILABLE_GRPC_CODES = new Set([
  4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */,
]);

export function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && UNAVAILABLE_GRPC_CODES.has(code)) return true;
    if (e.name === 'ServiceError' && /UNAVAILABLE|DEADLINE|ECONNREFUSED|connect/i.test(e.message))
      return true;
    if (/ECONNREFUSED|Failed to connect|transport error/i.test(e.message)) return true;
  }
  return false;
}
