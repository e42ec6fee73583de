import type { Client } from '@temporalio/client';
import { IncidentIdAttribute } from '../contract/search-attributes.ts';

/** What the activities need to know about earlier incidents of the same alert group. */
export interface IncidentHistory {
  /** The incident id of the newest closed run of `workflowId` other than `currentRunId`. */
  previousIncidentId(workflowId: string, currentRunId: string): Promise<string | undefined>;
}

/** Reads earlier runs from Temporal's visibility store (closed incidents stay there for the retention period). */
export class TemporalIncidentHistory implements IncidentHistory {
  private readonly client: Client;
  constructor(client: Client) {
    this.client = client;
  }

  async previousIncidentId(workflowId: string, currentRunId: string): Promise<string | undefined> {
    const escaped = workflowId.replace(/'/g, '');
    let newest: { closedAt: number; id: string } | undefined;
    const query = `WorkflowId = '${escaped}' AND ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'`;
    for await (const run of this.client.workflow.list({ query })) {
      const id = run.typedSearchAttributes.get(IncidentIdAttribute);
      const closedAt = run.closeTime?.getTime() ?? 0;
      if (run.runId === currentRunId || !id) continue;
      if (!newest || closedAt > newest.closedAt) newest = { closedAt, id };
    }
    return newest?.id;
  }
}
