import { ApplicationFailure, Context, sleep } from '@temporalio/activity';
import { NON_RETRYABLE_PLAYBOOK_ERRORS } from '../../domain/cluster.ts';
import type { InvestigationInput, PlaybookStep } from '../../domain/playbook.ts';
import type { Investigation } from '../../domain/investigation-plan.ts';
import {
  canRead,
  couldNotRun,
  investigationReads,
  notReadSummary,
  readOnlySummary,
} from '../../domain/investigation-plan.ts';
import type { PlaybookActivities } from './index.ts';

/** Backoff between attempts of one read, as the playbooks' retry policy has it (1 s, doubling, at most 20 s). */
const backoff = (attempt: number) => Math.min(1_000 * 2 ** (attempt - 1), 20_000);

/**
 * The procedures' "Initial Investigation" as one activity of the incident (no child workflow, no signals):
 * the plan of investigation-plan.ts read straight from the worker's clients. A read without its source is
 * recorded as not read; a failure retrying cannot fix (403, bad query), or that outlasts
 * `playbooks.attempts` tries, ends the investigation as incomplete and says which step and why. Read-only,
 * so a retry after a worker crash simply reads again.
 */
export function investigateActivity(activities: PlaybookActivities) {
  return async function investigate(input: InvestigationInput & { runId: string }): Promise<Investigation> {
    const steps: PlaybookStep[] = [];
    const record = (step: Omit<PlaybookStep, 'at'>) => steps.push({ ...step, at: new Date().toISOString() });
    const environment = await activities.playbookEnvironment();
    record({
      id: 'start',
      kind: 'decision',
      status: 'done',
      summary: readOnlySummary('initialInvestigation', input, environment),
    });
    const lines: string[] = [];
    let incomplete = false;
    for (const step of investigationReads(input)) {
      if (!canRead(environment, step.source)) {
        record({ id: step.id, kind: 'read', status: 'planned', summary: notReadSummary(step.source) });
        if (step.notRead !== undefined) lines.push(step.notRead);
        continue;
      }
      const read = await heartbeating(step.id, () =>
        attempts(() => step.call(activities), input.settings.attempts),
      );
      if (!read.ok) {
        const summary = couldNotRun(step.id, read.type, read.message, input.settings.attempts);
        record({ id: `${step.id}_failed`, kind: 'read', status: 'failed', summary });
        lines.push(`investigation incomplete: ${summary}`);
        incomplete = true;
        break;
      }
      const described = step.describe(read.value);
      record({ id: step.id, kind: 'read', status: 'done', ...described });
      lines.push(described.summary);
    }
    return { steps, summary: lines.join('\n'), ...(incomplete ? { incomplete } : {}) };
  };
}

/**
 * `work`, heartbeating `id` now and every third of the heartbeat timeout while it runs: one read (two calls
 * of up to 15 s against a hung API server) and its backoffs outlast the timeout, and an activity that
 * stopped heartbeating would be timed out and lose what it had read. Heartbeats also bring it a cancellation.
 */
async function heartbeating<T>(id: string, work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat(id);
  const timeout = context.info.heartbeatTimeoutMs;
  const timer = timeout ? setInterval(() => context.heartbeat(id), timeout / 3) : undefined;
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

type Attempted<T> = { ok: true; value: T } | { ok: false; type: string | undefined; message: string };

/** Calls `call` up to `max` times; a non-retryable failure (playbookFailure) ends at once. */
async function attempts<T>(call: () => Promise<T>, max: number): Promise<Attempted<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { ok: true, value: await call() };
    } catch (err) {
      const type = err instanceof ApplicationFailure ? (err.type ?? undefined) : undefined;
      const message = err instanceof Error ? err.message : String(err);
      const final =
        err instanceof ApplicationFailure &&
        (err.nonRetryable ||
          (NON_RETRYABLE_PLAYBOOK_ERRORS as readonly (string | undefined)[]).includes(type));
      if (final || attempt >= max) return { ok: false, type, message };
      await sleep(backoff(attempt));
    }
  }
}
