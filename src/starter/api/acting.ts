import type { OperationArgs } from '../../contract/messages.ts';
import type { IncidentState } from '../../domain/incident.ts';
import type { OperationName } from '../../domain/operations.ts';
import {
  IncidentNotFoundError,
  IncidentRefusedError,
  WorkerUnavailableError,
  isTemporalUnavailable,
} from '../client/errors.ts';
import type { IncidentGateway } from '../client/incidents.ts';

/**
 * An engineer's operation sent from where the page landed (a Slack button, a
 * PagerDuty acknowledgment, an SMS reply): the outcome as something to say
 * back to them, never an HTTP error, because the provider shows our answer
 * (or drops it) rather than the person seeing a status code.
 */
export type ActOutcome =
  | { ok: true; state: IncidentState }
  /** `retryable`: Temporal did not answer; the same request may succeed later (a provider that retries should). */
  | { ok: false; reason: string; retryable: boolean };

export async function act<K extends OperationName>(
  incidents: IncidentGateway,
  id: string,
  operation: K,
  argument: OperationArgs<K>,
): Promise<ActOutcome> {
  try {
    return { ok: true, state: await incidents.operate(id, operation, argument) };
  } catch (err) {
    if (err instanceof IncidentRefusedError) return { ok: false, reason: err.message, retryable: false };
    if (err instanceof IncidentNotFoundError)
      return { ok: false, reason: `no incident ${id}`, retryable: false };
    // No worker runs the incident now: say so (the same request succeeds once one does).
    if (err instanceof WorkerUnavailableError) return { ok: false, reason: err.message, retryable: true };
    if (isTemporalUnavailable(err))
      return {
        ok: false,
        reason: 'the incident service cannot reach Temporal right now; try again',
        retryable: true,
      };
    throw err;
  }
}
