import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { IncidentRecordFile } from '../../src/incident-record-file.ts';
import { isAnswer } from '../../src/domain/incident-record.ts';
import type { OperationAnswer } from '../../src/domain/incident-record.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { afterEach, beforeAll, beforeEach } from 'vitest';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.ts';
import type { Activities } from '../../src/activities/index.ts';
import { playbookActivities } from '../../src/activities/playbooks/index.ts';
import type { PlaybookActivities } from '../../src/activities/playbooks/index.ts';
import {
  emailNotifier,
  notConfiguredSink,
  pagerFollowUp,
  pagerNotifier,
  phoneNotifier,
  slackNotifier,
  slackPoster,
  smsNotifier,
} from '../../src/activities/channels/notifier.ts';
import type { PagerClient } from '../../src/activities/channels/pagerduty.ts';
import type { PhoneClient } from '../../src/activities/channels/twilio.ts';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { PolicySnapshots } from '../../src/policy-snapshots.ts';
import { WORKFLOWS_PATH } from '../../src/worker.ts';
import { NOT_OPENED_YET, alertsReceivedSignal, stateQuery } from '../../src/contract/messages.ts';
import type { IncidentInput } from '../../src/contract/messages.ts';
import { alertmanagerPayload } from './alerts.ts';
import { eventually } from './eventually.ts';
import { loadDefaultPolicy } from './policy.ts';
import { createTimeSkippingEnv } from './temporal.ts';
import type { TestAlert } from './alerts.ts';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The incident's state after an update: bounded runs answer a summary (it is in history), so it is queried. */
export async function stateAfter(
  handle: WorkflowHandle,
  update: Promise<IncidentState | OperationAnswer>,
): Promise<IncidentState> {
  const answer = await update;
  return isAnswer(answer) ? await handle.query(stateQuery) : answer;
}

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

/** One message a person was sent on a channel other than Slack (Slack DMs are in `posts`). */
export interface SentMessage {
  channel: 'pager' | 'sms' | 'phone' | 'email';
  target: string;
  text: string;
  at: number;
}

/**
 * The real activities over recording clients: the tests see every message
 * that would reach Slack, PagerDuty, Twilio or SMTP, and can make Slack fail.
 */
export class RecordingActivities {
  readonly posts: { channel: string; text: string; threadTs?: string; at: number }[] = [];
  readonly messages: SentMessage[] = [];
  readonly pagerEvents: { action: 'acknowledge' | 'resolve'; dedupKey: string; at: number }[] = [];
  readonly rooms: { action: string; channel: string; users?: string[] }[] = [];
  /** When set, every Slack call fails with this (a retryable SlackError unless made otherwise). */
  failPosts: Error | undefined;
  previousIncident: string | null = null;
  /** How many times a run asked visibility for the incident before it. */
  previousLookups = 0;
  /** The playbooks' cluster and monitoring (a FakeCluster's); unset: no cluster and no Prometheus. */
  playbooks: PlaybookActivities | undefined;
  /** Where bounded runs put what they let go: a directory of this test's own. */
  readonly records = new IncidentRecordFile(mkdtempSync(path.join(tmpdir(), 'pno-incident-records-')));
  /**
   * The worker's policies: the real policy file's is its own (whose people's contacts `deliver` looks up);
   * {@link startAlertIncident} makes each test's policy known by hash, as the API's snapshot would.
   */
  readonly policies = new PolicySnapshots({ current: loadDefaultPolicy() });
  private readonly env: TestWorkflowEnvironment;
  constructor(env: TestWorkflowEnvironment) {
    this.env = env;
  }

  private async record(channel: SentMessage['channel'], target: string, text: string): Promise<void> {
    this.messages.push({ channel, target, text, at: await this.env.currentTimeMs() });
  }

  activities(): Activities {
    const slack = slackPoster({
      postMessage: async (message) => {
        if (this.failPosts) throw this.failPosts;
        this.posts.push({
          channel: message.channel,
          text: message.text,
          ...(message.threadTs ? { threadTs: message.threadTs } : {}),
          at: await this.env.currentTimeMs(),
        });
        return { channel: message.channel, ts: String(this.posts.length) };
      },
      createChannel: ({ name }) => {
        this.rooms.push({ action: 'create', channel: name });
        return Promise.resolve({ channel: `C${this.rooms.length}`, name, created: true });
      },
      invite: ({ channel, users }) => Promise.resolve(this.rooms.push({ action: 'invite', channel, users })),
      archive: (channel) => Promise.resolve(this.rooms.push({ action: 'archive', channel })),
    });
    const pager: PagerClient = {
      trigger: async (event) => {
        await this.record('pager', event.dedupKey, event.summary);
        return { dedupKey: event.dedupKey };
      },
      acknowledge: async (dedupKey) => {
        this.pagerEvents.push({ action: 'acknowledge', dedupKey, at: await this.env.currentTimeMs() });
        return { dedupKey };
      },
      resolve: async (dedupKey) => {
        this.pagerEvents.push({ action: 'resolve', dedupKey, at: await this.env.currentTimeMs() });
        return { dedupKey };
      },
    };
    const phone: PhoneClient = {
      sendSms: async ({ to, body }) => {
        await this.record('sms', to, body);
        return { sid: `SM${this.messages.length}`, status: 'queued' };
      },
      call: async ({ to, say }) => {
        await this.record('phone', to, say);
        return { sid: `CA${this.messages.length}`, status: 'queued' };
      },
    };
    const none = playbookActivities({ prometheus: false, describe: [] });
    // Looked up at each call, so a test sets `playbooks` after the worker was created.
    const playbooks = Object.fromEntries(
      Object.keys(none).map((name) => [
        name,
        (arg: never) =>
          ((this.playbooks ?? none)[name as keyof PlaybookActivities] as (a: never) => Promise<unknown>)(arg),
      ]),
    ) as unknown as PlaybookActivities;
    return createActivities({
      playbooks,
      channels: {
        notifiers: {
          pager: pagerNotifier(() => pager),
          sms: smsNotifier(phone),
          phone: phoneNotifier(phone),
          slack: slackNotifier(slack),
          email: emailNotifier({
            send: async (mail) => {
              await this.record('email', mail.to.join(', '), mail.text);
              return { messageId: `<${this.messages.length}@test>`, rejected: [] };
            },
          }),
        },
        posts: slack,
        pager: pagerFollowUp(() => pager),
        events: notConfiguredSink('no webhook in tests'),
        outbox: new Set(),
      },
      history: {
        previousIncidentId: () => {
          this.previousLookups += 1;
          return Promise.resolve(this.previousIncident ?? undefined);
        },
      },
      policies: this.policies,
      records: this.records,
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

/**
 * Starts an alert-born incident the way the webhook does (signal-with-start), naming its policy by hash
 * (made known to the harness's worker first, as the API's snapshot would); `extra.policy` starts it the way
 * runs did before policy references, with the policy in its input.
 */
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
    args: [
      (extra.policy
        ? { incidentId, ...extra, policy: extra.policy }
        : { incidentId, policyRef: harness.recorder.policies.add(policy), ...extra }) satisfies IncidentInput,
    ],
    signal: alertsReceivedSignal,
    signalArgs: [alertBatch(policy, { alerts, groupKey: workflowId })],
  });
  harness.firstRunIds.push(handle.signaledRunId);
  // A run started by policy hash opens once it has its policy (a local activity): until then `state` says so.
  await eventually(
    'the incident to open',
    () =>
      handle.query(stateQuery).then(
        () => true,
        (err: unknown) => {
          if (String(err instanceof Error ? err.cause : err).includes(NOT_OPENED_YET)) return undefined;
          throw err;
        },
      ),
    { timeoutMs: 20_000, intervalMs: 20 },
  );
  return { handle, incidentId, workflowId };
}

/**
 * Waits (in real time) until the incident's deliveries have reported back: at least one delivery is on its
 * timeline and no activity is in flight. The time-skipping server does not skip while an activity runs, so a
 * fixed `env.sleep` races them.
 */
export async function settled(handle: WorkflowHandle): Promise<void> {
  await eventually(
    'the incident’s deliveries to settle',
    async () => {
      const state = await handle.query(stateQuery);
      const reported = state.timeline.some((t) => t.kind === 'notified' || t.kind === 'notification_failed');
      const pending = (await handle.describe()).raw.pendingActivities?.length ?? 0;
      return reported && pending === 0 ? true : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
}

/**
 * One time-skipping test server per test (time skipping is global to a server, so a test's leftovers must
 * not hold it), the workflow bundle built once per file. Call at a test file's top level; the returned
 * function gives the current test's environment.
 */
export function timeSkippingPerTest(): () => TestWorkflowEnvironment {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    await workflowBundle();
  });
  beforeEach(async () => {
    env = await createTimeSkippingEnv();
  });
  afterEach(async () => {
    await env?.teardown();
    env = undefined;
  });
  return () => {
    if (!env) throw new Error('no time-skipping environment outside a test');
    return env;
  };
}
