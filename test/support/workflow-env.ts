import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.ts';
import type { Activities } from '../../src/activities/index.ts';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { WORKFLOWS_PATH } from '../../src/worker.ts';
import { alertsReceivedSignal } from '../../src/contract/messages.ts';
import type { IncidentInput } from '../../src/contract/messages.ts';
import { alertmanagerPayload } from './alerts.ts';
import type { TestAlert } from './alerts.ts';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow bundle, built once per test file (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};

/**
 * The real activities over a recording Slack client: the tests see every
 * message that would reach Slack, and can make Slack fail.
 */
export class RecordingActivities {
  readonly posts: { channel: string; text: string; at: number }[] = [];
  /** When set, every Slack call fails with this (a retryable SlackError unless made otherwise). */
  failPosts: Error | undefined;
  previousIncident: string | null = null;
  private readonly env: TestWorkflowEnvironment;
  constructor(env: TestWorkflowEnvironment) {
    this.env = env;
  }

  activities(): Activities {
    return createActivities({
      slack: {
        postMessage: async (message) => {
          if (this.failPosts) throw this.failPosts;
          this.posts.push({ ...message, at: await this.env.currentTimeMs() });
          return { channel: message.channel, ts: String(this.posts.length) };
        },
      },
      history: { previousIncidentId: () => Promise.resolve(this.previousIncident ?? undefined) },
    });
  }
}

export interface Harness {
  taskQueue: string;
  worker: Worker;
  recorder: RecordingActivities;
  /** Workflow ids this test started: terminated when it ends. */
  started: string[];
  /** The first run id of each workflow started, in order. */
  firstRunIds: string[];
  /**
   * Runs the test body with the worker polling, then terminates what is still
   * running: otherwise a workflow left with work for a worker that is gone
   * stops the time-skipping server from skipping, stalling every later test.
   */
  run(body: () => Promise<void>): Promise<void>;
}

export async function createHarness(env: TestWorkflowEnvironment): Promise<Harness> {
  const taskQueue = `test-${randomUUID()}`;
  const recorder = new RecordingActivities(env);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: recorder.activities(),
  });
  const started: string[] = [];
  const firstRunIds: string[] = [];
  return {
    taskQueue,
    worker,
    recorder,
    started,
    firstRunIds,
    run: (body) =>
      worker.runUntil(async () => {
        try {
          await body();
        } finally {
          // Terminate while the worker still runs, so no activity task is left handed out to a worker
          // that is gone: the test server holds its time-skipping lock until such a task completes.
          for (const id of started) {
            await env.client.workflow
              .getHandle(id)
              .terminate('test over')
              .catch(() => undefined);
          }
        }
      }),
  };
}

export function alertBatch(
  policy: Policy,
  options: Parameters<typeof alertmanagerPayload>[0] = {},
): AlertBatch {
  return toAlertBatch(policy, webhookPayloadSchema.parse(alertmanagerPayload(options)), 1000);
}

/** Starts an alert-born incident the way the webhook does (signal-with-start). */
export async function startAlertIncident(
  env: TestWorkflowEnvironment,
  harness: Harness,
  policy: Policy,
  alerts: TestAlert[],
  extra: Partial<IncidentInput> = {},
) {
  const workflowId = `alertgroup-${randomUUID()}`;
  const incidentId = `INC-${randomUUID().slice(0, 8)}`;
  harness.started.push(workflowId);
  const handle = await env.client.workflow.signalWithStart('incidentWorkflow', {
    workflowId,
    taskQueue: harness.taskQueue,
    args: [{ incidentId, policy, ...extra } satisfies IncidentInput],
    signal: alertsReceivedSignal,
    signalArgs: [alertBatch(policy, { alerts, groupKey: workflowId })],
  });
  harness.firstRunIds.push(handle.signaledRunId);
  return { handle, incidentId, workflowId };
}
