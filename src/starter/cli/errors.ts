import { CommanderError } from 'commander';
import {
  IncidentForbiddenError,
  IncidentNotFoundError,
  IncidentRefusedError,
  MaintenanceNotFoundError,
  MaintenanceRefusedError,
  RecordIncompleteError,
  WorkerUnavailableError,
  isTemporalUnavailable,
} from '../client/errors.ts';

/** Exit codes: what a script driving the CLI can rely on. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

/**
 * Every error code the CLI prints (`{"error":{"code","message"}}` with `--json`), in one registry with
 * its exit code, as the API keeps its codes with their HTTP statuses.
 */
export const CLI_ERRORS = {
  USAGE: EXIT.usage,
  CONFIG: EXIT.usage,
  /** A command that needs Temporal or the API host's files, which API mode (INCIDENT_API_URL) does not reach. */
  NOT_IN_API_MODE: EXIT.usage,
  NOT_FOUND: EXIT.refused,
  REFUSED: EXIT.refused,
  /** The actor's roles do not permit it (the policy's `permissions`); the message says which roles may. */
  FORBIDDEN: EXIT.refused,
  ERROR: EXIT.refused,
  /** API mode: the API does not know INCIDENT_TOKEN (401). */
  UNAUTHORIZED: EXIT.refused,
  /** `incident outbox` without INCIDENT_OUTBOX: nothing writes a local outbox. */
  OUTBOX_OFF: EXIT.refused,
  TEMPORAL_UNAVAILABLE: EXIT.unreachable,
  /** API mode: the API refused the connection, did not answer in time, or answered 502/503/504. */
  API_UNAVAILABLE: EXIT.unreachable,
  /** `show --full`: the record store lacks entries the incident let go (another volume, or on their way). */
  RECORD_INCOMPLETE: EXIT.unreachable,
} as const;
export type CliErrorCode = keyof typeof CLI_ERRORS;

export class CliError extends Error {
  readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }
  get exitCode(): number {
    return CLI_ERRORS[this.code];
  }
  toJSON(): { error: { code: CliErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/**
 * What went wrong, as the CLI reports it. A commander error is a usage error whatever its own exit code
 * (commander exits 1 on a bad argument; our contract says 2); its message loses commander's `error: `
 * prefix and its line breaks (a suggestion comes on a second line), so that stderr gets one line.
 */
export function toCliError(err: unknown, temporalAddress: string | undefined): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof CommanderError) {
    return new CliError('USAGE', err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' '));
  }
  if (err instanceof IncidentNotFoundError || err instanceof MaintenanceNotFoundError)
    return new CliError('NOT_FOUND', err.message);
  if (err instanceof IncidentForbiddenError) return new CliError('FORBIDDEN', err.message);
  if (err instanceof IncidentRefusedError || err instanceof MaintenanceRefusedError)
    return new CliError('REFUSED', err.message);
  if (err instanceof RecordIncompleteError) return new CliError('RECORD_INCOMPLETE', err.message);
  // Temporal answers but no worker polls: exit 3 like an outage, saying which it is.
  if (err instanceof WorkerUnavailableError) return new CliError('TEMPORAL_UNAVAILABLE', err.message);
  if (isTemporalUnavailable(err)) {
    return new CliError(
      'TEMPORAL_UNAVAILABLE',
      `Temporal is unreachable at ${temporalAddress ?? 'its address'}`,
    );
  }
  return new CliError('ERROR', err instanceof Error ? err.message : String(err));
}
