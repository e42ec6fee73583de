/**
 * Every error the HTTP API answers with, in one registry with its status
 * (fastify's `lib/errors.js` habit). Bodies are `{"error":{code,message,field?}}`.
 */
export const API_ERRORS = {
  BAD_REQUEST: 400,
  INVALID_PAYLOAD: 400,
  UNAUTHORIZED: 401,
  /** The actor's roles do not permit the operation (the policy's `permissions`). */
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  REFUSED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL: 500,
  OVERLOADED: 503,
  TEMPORAL_UNAVAILABLE: 503,
  /** Temporal answers but no worker runs the incident's workflow (none polls, or it did not answer in time). */
  WORKER_UNAVAILABLE: 503,
  /** `?full=true` found the record store without entries the incident let go (not shared, or not yet written). */
  RECORD_INCOMPLETE: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly field: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(
    code: ApiErrorCode,
    message: string,
    options: { field?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
  get status(): number {
    return API_ERRORS[this.code];
  }
  toJSON(): { error: { code: ApiErrorCode; message: string; field?: string } } {
    return {
      error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) },
    };
  }
}
