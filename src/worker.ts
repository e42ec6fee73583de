import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { TemporalIncidentHistory } from './activities/incident-history.ts';
import { createActivities } from './activities/index.ts';
import { resolveReferences } from './secrets.ts';
import { SlackApi } from './activities/channels/slack.ts';
import { loadSettingsOrExit } from './config.ts';
import type { Settings } from './config.ts';
import { connectionOptions, lazyClient } from './starter/client/connection.ts';

/** The workflow bundle's entry: every workflow the task queue runs. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

/**
 * The one composition root: the only place that builds real clients from the
 * policy and the environment and hands them to the activities.
 */
export function buildActivities(settings: Settings, env: NodeJS.ProcessEnv = process.env) {
  const slack = settings.policy.channels.slack;
  return createActivities({
    history: new TemporalIncidentHistory(lazyClient(settings.temporal)),
    slack: new SlackApi({
      apiUrl: resolveReferences(slack.apiUrl, env, 'channels.slack.apiUrl'),
      // Resolved at each call: a missing token fails that notification (recorded on the incident), not the worker.
      token: () => resolveReferences(slack.botToken, env, 'channels.slack.botToken'),
    }),
  });
}

export async function createWorker(
  settings: Settings,
  overrides: Partial<WorkerOptions> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect(connectionOptions(settings.temporal));
  const worker = await Worker.create({
    connection,
    namespace: settings.temporal.namespace,
    taskQueue: settings.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: buildActivities(settings, env),
    ...overrides,
  });
  return { worker, connection };
}

async function main(): Promise<void> {
  const settings = loadSettingsOrExit();
  try {
    resolveReferences(settings.policy.channels.slack.botToken, process.env, 'channels.slack.botToken');
  } catch (err) {
    console.warn(`${(err as Error).message}: Slack posts will fail and be recorded on each incident`);
  }
  const { worker, connection } = await createWorker(settings);
  const stop = () => worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(
    `worker polling task queue ${settings.temporal.taskQueue} on ${settings.temporal.address} (namespace ${settings.temporal.namespace})`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
