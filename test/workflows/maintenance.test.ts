import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAINTENANCE_WORKFLOW_TYPE,
  addMaintenanceWindowUpdate,
  endMaintenanceWindowUpdate,
  maintenanceWindowsQuery,
} from '../../src/contract/maintenance.ts';
import type { MaintenanceWorkflowInput } from '../../src/contract/maintenance.ts';
import { eventually } from '../support/eventually.ts';
import { createTimeSkippingEnv } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  await workflowBundle();
  env = await createTimeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

const HOUR = 3_600_000;

/** Runs `body` against a fresh maintenance workflow (its own task queue and id), terminated afterwards. */
async function withMaintenanceWorkflow(
  input: MaintenanceWorkflowInput,
  body: (handle: WorkflowHandleWithFirstExecutionRunId) => Promise<void>,
) {
  const taskQueue = `maintenance-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
  });
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(MAINTENANCE_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `maintenance-windows-${randomUUID()}`,
      args: [input],
    });
    try {
      await body(handle);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  return cause instanceof Error ? cause.message : String(cause);
}

describe('maintenance windows workflow', () => {
  it('adds, lists and ends windows', async () => {
    await withMaintenanceWorkflow({ windows: [] }, async (handle) => {
      const now = await env.currentTimeMs();
      const added = await handle.executeUpdate(addMaintenanceWindowUpdate, {
        args: [
          {
            service: 'pno-physics-bench',
            from: new Date(now).toISOString(),
            to: new Date(now + 2 * HOUR).toISOString(),
            reason: 'database migration',
            createdBy: 'alice',
          },
        ],
      });
      expect(added).toMatchObject({
        service: 'pno-physics-bench',
        reason: 'database migration',
        createdBy: 'alice',
      });
      expect(added.id).toMatch(/^mw-[0-9a-f]{8}$/);
      const other = await handle.executeUpdate(addMaintenanceWindowUpdate, {
        args: [
          {
            service: '*',
            from: new Date(now + 24 * HOUR).toISOString(),
            to: new Date(now + 25 * HOUR).toISOString(),
            reason: 'network upgrade',
          },
        ],
      });
      expect((await handle.query(maintenanceWindowsQuery)).map((w) => w.id)).toEqual([added.id, other.id]);

      await env.sleep('30 minutes');
      const ended = await handle.executeUpdate(endMaintenanceWindowUpdate, {
        args: [{ id: added.id, by: 'bob' }],
      });
      expect(ended).toMatchObject({ id: added.id, endedBy: 'bob' });
      expect(Date.parse(ended.endedAt ?? '') - now).toBeGreaterThanOrEqual(30 * 60_000);
      const listed = await handle.query(maintenanceWindowsQuery);
      expect(listed.find((w) => w.id === added.id)?.endedAt).toBe(ended.endedAt);

      // Ending it twice, or a window that does not exist, is refused.
      expect(
        await refusal(handle.executeUpdate(endMaintenanceWindowUpdate, { args: [{ id: added.id }] })),
      ).toMatch(/already over/);
      expect(
        await refusal(handle.executeUpdate(endMaintenanceWindowUpdate, { args: [{ id: 'mw-nothere' }] })),
      ).toBe('no maintenance window mw-nothere');
    });
  });

  it('refuses a bad window before it enters history', async () => {
    await withMaintenanceWorkflow({ windows: [] }, async (handle) => {
      const now = await env.currentTimeMs();
      const backwards = {
        service: 'pno-physics-bench',
        from: new Date(now + HOUR).toISOString(),
        to: new Date(now).toISOString(),
        reason: 'oops',
      };
      expect(await refusal(handle.executeUpdate(addMaintenanceWindowUpdate, { args: [backwards] }))).toMatch(
        /^to: the window must end after it starts/,
      );
      const blank = { ...backwards, to: new Date(now + 2 * HOUR).toISOString(), reason: ' ' };
      expect(await refusal(handle.executeUpdate(addMaintenanceWindowUpdate, { args: [blank] }))).toMatch(
        /^reason: must not be blank/,
      );
      const past = {
        ...backwards,
        from: new Date(now - 2 * HOUR).toISOString(),
        to: new Date(now - HOUR).toISOString(),
      };
      expect(await refusal(handle.executeUpdate(addMaintenanceWindowUpdate, { args: [past] }))).toMatch(
        /ends in the past/,
      );
      expect(await handle.query(maintenanceWindowsQuery)).toEqual([]);
      // A validator's refusal leaves no trace in history.
      const history = await handle.fetchHistory();
      expect(JSON.stringify(history.events)).not.toContain('oops');
    });
  });

  it('keeps its windows across continue-as-new, and drops those over for more than a week', async () => {
    await withMaintenanceWorkflow({ windows: [], continueAsNewAfterEvents: 12 }, async (handle) => {
      const now = await env.currentTimeMs();
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const w = await handle.executeUpdate(addMaintenanceWindowUpdate, {
          args: [
            {
              service: `service-${i}`,
              from: new Date(now).toISOString(),
              to: new Date(now + (i === 0 ? 1 : 30 * 24) * HOUR).toISOString(),
              reason: `window ${i}`,
            },
          ],
        });
        ids.push(w.id);
      }
      await env.sleep('1 second');
      // The history limit of 12 events was passed: the windows now live in a later run.
      expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
      expect((await handle.query(maintenanceWindowsQuery)).map((w) => w.id)).toEqual(ids);

      // Window 0 ended an hour in; eight days later it is gone, the others stay.
      await env.sleep('8 days');
      // The daily clean-up runs on its timer's workflow task, which may land a moment after the skip.
      const kept = await eventually('the clean-up', async () => {
        const now = (await handle.query(maintenanceWindowsQuery)).map((w) => w.id);
        return now.length === ids.length - 1 ? now : undefined;
      });
      expect(kept).toEqual(ids.slice(1));
    });
  });
});
