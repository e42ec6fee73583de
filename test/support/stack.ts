import { randomUUID } from 'node:crypto';
import { loopbackEnv } from './loopback-env.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { IncidentRecordFile, incidentRecordDir } from '../../src/incident-record-file.ts';
import { Client, Connection } from '@temporalio/client';
import type { Worker, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { loadSettings } from '../../src/config.ts';
import type { Settings } from '../../src/config.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { startApi } from '../../src/starter/api/server.ts';
import { createWorker } from '../../src/worker.ts';
import { SlackStandIn } from './slack-server.ts';

/**
 * The product as `npm start` runs it (worker + API), in this process, against
 * a Temporal server the caller started, with a Slack stand-in and fresh
 * tokens: what every end-to-end test and benchmark stands on.
 */
export interface Stack {
  env: NodeJS.ProcessEnv;
  settings: Settings;
  slack: SlackStandIn;
  worker: Worker;
  /** Settles when the worker stops; a worker failure is kept in `workerFailure`. */
  workerDone: Promise<void>;
  workerFailure: () => unknown;
  api: { app: FastifyInstance; address: string };
  /** A client of its own, and the gateway the API uses, for assertions. */
  client: Client;
  incidents: TemporalIncidents;
  webhookToken: string;
  slackToken: string;
  /** POSTs an Alertmanager payload to the webhook with the bearer token. */
  postAlerts(payload: unknown): Promise<Response>;
  /** Stops the API, the worker, the client and the Slack stand-in (not the Temporal server). */
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Temporal server address. */
  address: string;
  /** Names the task queue, for telling runs apart. */
  name: string;
  workflowBundle?: WorkflowBundleWithSourceMap;
  slackChannels?: string[];
  /** Extra environment, e.g. engineer tokens or INCIDENT_CONFIG. */
  env?: NodeJS.ProcessEnv;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const webhookToken = `am-${randomUUID()}`;
  const slackToken = `xoxb-${randomUUID()}`;
  const slack = new SlackStandIn({
    token: slackToken,
    ...(options.slackChannels ? { channels: options.slackChannels } : {}),
  });
  const env: NodeJS.ProcessEnv = {
    ...loopbackEnv(),
    TEMPORAL_ADDRESS: options.address,
    TEMPORAL_TASK_QUEUE: `${options.name}-${randomUUID()}`,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: slackToken,
    ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    // What long incidents let go: a directory of this stack's own, shared by its worker and API.
    INCIDENT_RECORDS_DIR: await mkdtemp(path.join(tmpdir(), 'pno-incident-records-')),
    // The policy snapshots new incidents name by hash (src/policy-snapshots.ts): this stack's own too.
    INCIDENT_POLICY_DIR: await mkdtemp(path.join(tmpdir(), 'pno-policies-')),
    ...options.env,
  };
  const settings = loadSettings(env);
  const { worker } = await createWorker(
    settings,
    options.workflowBundle ? { workflowsPath: undefined, workflowBundle: options.workflowBundle } : {},
    env,
  );
  let failure: unknown;
  const workerDone = worker.run().catch((err: unknown) => {
    failure = err;
  });
  const api = await startApi(settings, env);
  const client = new Client({ connection: await Connection.connect({ address: options.address }) });
  return {
    env,
    settings,
    slack,
    worker,
    workerDone,
    workerFailure: () => failure,
    api,
    client,
    incidents: new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy, {
      records: new IncidentRecordFile(incidentRecordDir(env)),
    }),
    webhookToken,
    slackToken,
    postAlerts: (payload) =>
      fetch(`${api.address}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${webhookToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      }),
    stop: async () => {
      await api.app.close();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
      await client.connection.close();
      await slack.stop();
    },
  };
}
