import { ApplicationFailure } from '@temporalio/activity';
import type { PlaybookErrorType } from '../../domain/cluster.ts';

/**
 * A playbook activity's failure that retrying cannot fix (403, a missing object, a bad query, nothing
 * configured): not retried, so the playbook stops at once and escalates with `message`. Anything else an
 * activity throws (5xx, timeouts, connection refused) is retried by the workflow's retry policy.
 */
export function playbookFailure(type: PlaybookErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}
