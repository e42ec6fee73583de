import { CancellationScope, getExternalWorkflowHandle, isCancellation, log } from '@temporalio/workflow';
import { investigationFinishedSignal } from '../../contract/playbooks.ts';
import type { InvestigationInput, InvestigationResult } from '../../domain/playbook.ts';
import { findingsLine, investigationReads } from '../../domain/investigation-plan.ts';
import { PlaybookRun, PlaybookStop } from './runner.ts';

/**
 * The procedures' "Initial Investigation" for an incident with no playbook, gathered automatically and
 * posted in the incident's thread: recent deployments, related firing alerts (Prometheus), pod health and
 * external dependencies. Read-only: it never changes anything, whatever the kill switch says. The child
 * workflow of incidents that began before the `investigate` activity (investigation-plan.ts: one plan).
 */
export async function initialInvestigation(input: InvestigationInput): Promise<InvestigationResult> {
  const run = new PlaybookRun({ ...input, name: 'initialInvestigation' });
  const a = run.activities;
  const lines: string[] = [];
  let incomplete = false;
  try {
    await run.start({ readOnly: true });
    for (const step of investigationReads(input)) {
      const value = await run.read(step.id, step.source, () => step.call(a), step.describe);
      const line = findingsLine(step, value);
      if (line !== undefined) lines.push(line);
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    if (!(err instanceof PlaybookStop)) throw err;
    lines.push(`investigation incomplete: ${err.reason}`);
    incomplete = true;
  }
  const result: InvestigationResult = {
    runId: run.runId,
    summary: lines.join('\n'),
    steps: run.steps.length,
    ...(incomplete ? { incomplete } : {}),
  };
  await CancellationScope.nonCancellable(async () => {
    // Ordered step reports are sent one by one: the last ones must go out before the run ends.
    await run.reported();
    await getExternalWorkflowHandle(input.incidentWorkflowId)
      .signal(investigationFinishedSignal, result)
      .catch((err: unknown) =>
        log.warn('the incident did not take the investigation', { error: String(err) }),
      );
  });
  return result;
}
