import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { SlackError } from '../../src/activities/channels/slack.ts';
import { OPERATIONS, alertsReceivedSignal } from '../../src/contract/messages.ts';
import type { Policy } from '../../src/domain/policy.ts';
import type { Harness } from '../support/workflow-env.ts';
import { alertBatch, startAlertIncident } from '../support/workflow-env.ts';
import { playbookRunId } from '../../src/contract/playbooks.ts';
import { stateQuery } from '../../src/contract/messages.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { TemporalWatchdog } from '../../src/starter/client/watchdog.ts';
import { watchdogStateQuery } from '../../src/contract/watchdog.ts';
import { watchdogWorkflowId } from '../../src/contract/workflow-ids.ts';
import { eventually } from '../support/eventually.ts';

/**
 * Representative incidents, run on the time-skipping server. Their histories
 * are committed (test/workflows/histories) and replayed by every test run, so
 * a change that would break incidents already running fails the build.
 */
export interface Scenario {
  name: string;
  run(env: TestWorkflowEnvironment, harness: Harness, policy: Policy): Promise<WorkflowHandle>;
}

/** History length of the handle's latest run. */
export async function historyLength(handle: WorkflowHandle): Promise<number> {
  return (await handle.fetchHistory()).events?.length ?? 0;
}

/** Continue-as-new threshold of {@link slackDegradedAtContinueAsNew}: above the opening, below the updates. */
export const DEGRADED_CONTINUE_AFTER = 72;

/**
 * A P0 acknowledged at once whose history reaches its continue-as-new
 * threshold at 14 min, while Slack is failing (retry after 60 s): its status
 * updates are still being delivered when the run wants to continue as new,
 * and its 15 min deadlines (time-based escalation, the lead's matrix row)
 * fall while it waits for them. Returns at 14 min, Slack still failing.
 */
export async function slackDegradedAtContinueAsNew(env: TestWorkflowEnvironment, h: Harness, policy: Policy) {
  const started = await startAlertIncident(
    env,
    h,
    policy,
    [{ labels: { severity: 'page', alertname: 'DataCorruption' } }],
    { continueAsNewAfterEvents: DEGRADED_CONTINUE_AFTER },
  );
  const { handle } = started;
  await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
  await env.sleep('14 minutes');
  const before = await historyLength(handle);
  if (before >= DEGRADED_CONTINUE_AFTER) throw new Error(`history already ${before} events long at 14 min`);
  h.recorder.failPosts = new SlackError('Slack answered HTTP 503', true, 60_000);
  // The run compares the length its workflow task started with: one more update after the history is long enough.
  let updates = 0;
  const postUpdate = async () => {
    await handle.signal(OPERATIONS.postUpdate.signal, { by: 'alice', message: `still digging ${updates++}` });
    await env.sleep('1 second');
  };
  while ((await historyLength(handle)) < DEGRADED_CONTINUE_AFTER) await postUpdate();
  await postUpdate();
  return started;
}

/** What a P0 needs on record (a commander, a security evaluation), then its resolution; waits for the run to close. */
export async function resolveP0(handle: WorkflowHandle, rootCause: string): Promise<void> {
  await handle.executeUpdate(OPERATIONS.assignCommander.update, {
    args: [{ by: 'alice', commander: 'carol' }],
  });
  await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
    args: [{ by: 'dave', finding: 'none', related: false }],
  });
  await handle.executeUpdate(OPERATIONS.resolve.update, { args: [{ by: 'carol', rootCause }] });
  await handle.result();
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'p0-full-lifecycle',
    async run(env, h, policy) {
      const { handle } = await startAlertIncident(env, h, policy, [
        { labels: { alertname: 'ServiceDown', severity: 'page' } },
      ]);
      await env.sleep('6 minutes'); // ack_timeout
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'rolling back', actions: ['rollback'] }],
      });
      await env.sleep('40 minutes'); // time_based, no_progress
      await handle.executeUpdate(OPERATIONS.assignCommander.update, {
        args: [{ by: 'alice', commander: 'carol' }],
      });
      await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
        args: [{ by: 'dave', finding: 'none', related: false }],
      });
      await handle.signal(OPERATIONS.acknowledge.signal, { by: 'mallory' }); // rejected
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'carol', rootCause: 'bad deploy', prevention: 'canary' }],
      });
      await handle.result();
      return handle;
    },
  },
  {
    name: 'p2-alerts-clear-auto-resolve',
    async run(env, h, policy) {
      const alert = { labels: { alertname: 'PodCrash', severity: 'warning' } };
      const { handle } = await startAlertIncident(env, h, policy, [alert]);
      await handle.executeUpdate(OPERATIONS.escalate.update, {
        args: [{ by: 'alice', reason: 'needs the lead' }],
      });
      await handle.signal(
        alertsReceivedSignal,
        alertBatch(policy, { alerts: [{ ...alert, status: 'resolved' }] }),
      );
      await env.sleep('31 minutes');
      await handle.result();
      return handle;
    },
  },
  {
    name: 'p1-continue-as-new',
    async run(env, h, policy) {
      const { handle } = await startAlertIncident(env, h, policy, [{ labels: { severity: 'critical' } }], {
        continueAsNewAfterEvents: 30,
      });
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      for (let i = 0; i < 6; i += 1) {
        await handle.signal(
          alertsReceivedSignal,
          alertBatch(policy, {
            alerts: [{ labels: { severity: 'critical' }, fingerprint: `cafe00000000000${i}` }],
          }),
        );
        await env.sleep('10 minutes');
      }
      return handle;
    },
  },
  // Recorded with the patches of src/workflows/incident.ts (PATCHES): the new paths must replay too.
  {
    name: 'p2-engineer-mitigated-auto-resolve',
    async run(env, h, policy) {
      const alert = { labels: { alertname: 'PodCrash', severity: 'warning' } };
      const { handle } = await startAlertIncident(env, h, policy, [alert]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.mitigate.update, { args: [{ by: 'alice', note: 'restarted' }] });
      await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [alert] })); // redelivery
      await env.sleep('10 minutes');
      await handle.signal(
        alertsReceivedSignal,
        alertBatch(policy, { alerts: [{ ...alert, status: 'resolved' }] }),
      );
      await env.sleep('31 minutes');
      await handle.result();
      return handle;
    },
  },
  {
    name: 'p2-raised-to-p0',
    async run(env, h, policy) {
      const { handle } = await startAlertIncident(env, h, policy, [
        { labels: { alertname: 'PodCrash', severity: 'warning' } },
      ]);
      await handle.executeUpdate(OPERATIONS.escalate.update, {
        args: [{ by: 'alice', reason: 'needs the lead' }],
      });
      // P1 reaches nobody new (the lead has been told): only its channel posts go out.
      await handle.executeUpdate(OPERATIONS.changeSeverity.update, {
        args: [{ by: 'alice', severity: 'P1', reason: 'users affected' }],
      });
      await env.sleep('1 minute');
      await handle.executeUpdate(OPERATIONS.changeSeverity.update, {
        args: [{ by: 'alice', severity: 'P0', reason: 'data loss' }],
      });
      await env.sleep('20 minutes');
      await resolveP0(handle, 'bad migration');
      return handle;
    },
  },
  {
    name: 'p0-deadline-while-draining-before-continue-as-new',
    async run(env, h, policy) {
      const { handle } = await slackDegradedAtContinueAsNew(env, h, policy);
      await env.sleep('15 minutes');
      return handle;
    },
  },
  // Recorded with the `channel-events` patch: PagerDuty acknowledge/resolve of the paged role, and the
  // incident's own Slack channel (channel mode), each on its own path.
  {
    name: 'p0-channel-mode-paged-acknowledged-resolved',
    async run(env, h, policy) {
      const channelMode: Policy = {
        ...policy,
        channels: { ...policy.channels, slack: { ...policy.channels.slack, mode: 'channel' } },
      };
      const { handle } = await startAlertIncident(env, h, channelMode, [
        { labels: { alertname: 'ServiceDown', severity: 'page' } },
      ]);
      await env.sleep('1 second');
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('2 minutes');
      await resolveP0(handle, 'bad deploy');
      return handle;
    },
  },
  // Recorded before `permissions` existed, with a snapshot that has none: the on-call engineer resolves a
  // P1 by signal, which the default permissions now refuse (resolving a P1 takes the incident commander or
  // the engineering lead). Such a run must replay as it went: a signal meets the permissions only in runs
  // that began with the `engineer-permissions` patch. (Under today's code this run would not close.)
  {
    name: 'p1-resolved-by-signal-before-permissions',
    async run(env, h, policy) {
      const { permissions: _none, ...snapshot } = policy;
      const { handle } = await startAlertIncident(env, h, snapshot as Policy, [
        { labels: { alertname: 'HighLatency', severity: 'critical' } },
      ]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('5 minutes');
      await handle.signal(OPERATIONS.resolve.signal, { by: 'alice', rootCause: 'noisy neighbour' });
      await handle.result();
      return handle;
    },
  },
  // Recorded with the `listing-memo` patch: the memo listings read (src/contract/listing.ts) is upserted at
  // the opening, on a public update (not a private one), on the security flag and on resolution.
  {
    name: 'p1-listing-memo-public-update-security-resolved',
    async run(env, h, base) {
      const policy: Policy = { ...base, playbooks: { ...base.playbooks, enabled: false } };
      const { handle } = await startAlertIncident(env, h, policy, [
        { labels: { alertname: 'HighLatency', severity: 'critical' } },
      ]);
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep('1 minute');
      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'internal: the primary is thrashing' }],
      });
      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'We are investigating slow answers', eta: '1 h', public: true }],
      });
      await handle.executeUpdate(OPERATIONS.recordSecurityEvaluation.update, {
        args: [{ by: 'dave', finding: 'a leaked token was used', related: true }],
      });
      await handle.executeUpdate(OPERATIONS.assignCommander.update, {
        args: [{ by: 'carol', commander: 'carol' }],
      });
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'carol', rootCause: 'token revoked' }],
      });
      await handle.result();
      return handle;
    },
  },
  // Recorded once new starts named their policy by hash: the run obtains it with one local activity at its
  // start, its deliveries name people by handle (no e-mail or phone), and it continues as new carrying the
  // policy itself (the first run's history is the fixture).
  {
    name: 'p1-started-by-policy-hash-continue-as-new',
    async run(env, h, base) {
      const policy: Policy = { ...base, playbooks: { ...base.playbooks, enabled: false } };
      const { handle } = await startAlertIncident(env, h, policy, [{ labels: { severity: 'critical' } }], {
        continueAsNewAfterEvents: 30,
      });
      await env.sleep('6 minutes'); // ack_timeout: the lead is paged too
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.postUpdate.update, {
        args: [{ by: 'alice', message: 'rolling back', actions: ['rollback'] }],
      });
      for (let i = 0; (await handle.describe()).runId === h.firstRunIds[0]; i += 1) {
        if (i > 20) throw new Error('the run did not continue as new');
        await handle.signal(
          alertsReceivedSignal,
          alertBatch(policy, {
            alerts: [{ labels: { severity: 'critical' }, fingerprint: `beef00000000000${i % 10}` }],
          }),
        );
        await env.sleep('10 minutes');
      }
      return handle;
    },
  },
  // Bounded state (issue 11): a group with pod churn lets entries go to the record store (archive activities),
  // a flapping alert is told once per flapDamping interval, updates answer summaries, and the run continues as
  // new with its bounded state, then resolves.
  {
    name: 'p2-pod-churn-flapping-bounded-state',
    async run(env, h, base) {
      const policy: Policy = { ...base, playbooks: { ...base.playbooks, enabled: false } };
      const pod = (i: number, status: 'firing' | 'resolved' = 'firing') => ({
        status,
        labels: { alertname: 'KubePodCrashLooping', severity: 'warning', pod: `pod-${i}` },
        fingerprint: `d0d0${i.toString(16).padStart(12, '0')}`,
      });
      const { handle } = await startAlertIncident(env, h, policy, [pod(0)], { continueAsNewAfterEvents: 60 });
      for (let b = 0; b < 4; b += 1) {
        const alerts = Array.from({ length: 100 }, (_, j) => pod(b * 100 + j));
        await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts }));
      }
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      for (let i = 0; i < 6; i += 1) {
        const all = Array.from({ length: 400 }, (_, j) => pod(j, 'resolved'));
        await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: all }));
        await env.sleep('2 minutes');
        await handle.signal(alertsReceivedSignal, alertBatch(policy, { alerts: [pod(0)] }));
        await env.sleep('2 minutes');
      }
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'node drain' }],
      });
      await handle.result();
      return handle;
    },
  },
  // The alerting pipeline's dead-man's switch: heartbeats, a silence past the timeout opens an incident (a child
  // incident workflow), the Watchdog's return is told to that incident.
  {
    name: 'watchdog-silent-opens-incident-then-resumes',
    async run(env, h, base) {
      const policy: Policy = { ...base, playbooks: { ...base.playbooks, enabled: false } };
      const receiver = 'alertmanager-scenario';
      const watchdog = new TemporalWatchdog(env.client, h.taskQueue, policy);
      const handle = env.client.workflow.getHandle(watchdogWorkflowId(receiver));
      h.started.push(handle.workflowId);
      const beat = () => watchdog.heartbeat({ receiver, alerts: 1, receivedAt: new Date().toISOString() });
      await beat();
      await env.sleep('5 minutes');
      await beat();
      await env.sleep('11 minutes');
      const silent = await eventually('the watchdog to open its incident', async () => {
        const s = await handle.query(watchdogStateQuery);
        return s.incident ? s : undefined;
      });
      if (silent.incident) h.started.push(silent.incident.workflowId);
      await env.sleep('2 minutes');
      await beat();
      await eventually('the return told to the incident', async () => {
        const s = await handle.query(watchdogStateQuery);
        return s.events.some((e) => e.kind === 'incident_signalled') ? true : undefined;
      });
      return handle;
    },
  },
  {
    // The playbook's run as its incident sees it: child started, step and outcome signals, mitigated.
    name: 'p2-high-error-rate-playbook-recovered',
    async run(env, h, policy) {
      return (await highErrorRateEmergency(env, h, policy)).incident;
    },
  },
  {
    // The playbook run itself: reads, approval, scale, rollback, circuit breaker, monitoring timers.
    name: 'playbook-high-error-rate-emergency-approved',
    async run(env, h, policy) {
      return (await highErrorRateEmergency(env, h, policy)).playbook;
    },
  },
  {
    // The same incident after 'playbook-local-activities-batched-reports': steps arrive in batches.
    name: 'p2-high-error-rate-playbook-batched-reports',
    async run(env, h, policy) {
      return (await highErrorRateEmergency(env, h, policy)).incident;
    },
  },
  {
    // The same run with local-activity reads, regular-activity actions and batched reports.
    name: 'playbook-high-error-rate-local-reads',
    async run(env, h, policy) {
      return (await highErrorRateEmergency(env, h, policy)).playbook;
    },
  },
  {
    // 'lean-incident-start': one patch marker, the previous incident from the policy's local activity, the
    // initial investigation as an activity (cluster reads), its findings posted, then mitigated and resolved.
    name: 'p2-lean-start-investigated-linked-resolved',
    async run(env, h, base) {
      h.recorder.previousIncident = 'INC-0000beef';
      const cluster = new FakeCluster({ stuckPods: 1, revisionAgesMinutes: [60] });
      const handle = await podCrashIncident(env, h, base, cluster);
      await eventually(
        'the investigation',
        async () =>
          (await handle.query(stateQuery)).investigation?.status === 'completed' ? true : undefined,
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.mitigate.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'bad node' }],
      });
      await handle.result();
      return handle;
    },
  },
  {
    // 'investigation-cancel-recorded': the investigation still retrying a read when the incident is resolved
    // is cancelled and said on the timeline (completed, summary "cancelled"), not left running.
    name: 'p3-investigation-cancelled-by-resolution',
    async run(env, h, base) {
      const cluster = new FakeCluster({ revisionAgesMinutes: [60] });
      cluster.failTransiently('rolloutHistory', 100);
      const handle = await podCrashIncident(env, h, base, cluster);
      await eventually('the first read', () => (cluster.count('rolloutHistory') > 0 ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      await handle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(OPERATIONS.resolve.update, {
        args: [{ by: 'alice', rootCause: 'pod evicted by a node drain' }],
      });
      await handle.result();
      return handle;
    },
  },
];

/**
 * A PodCrash (no mapping rule gives it a playbook: the incident investigates) reading `cluster`, on a policy
 * whose health URL stays on loopback.
 */
async function podCrashIncident(
  env: TestWorkflowEnvironment,
  h: Harness,
  base: Policy,
  cluster: FakeCluster,
) {
  h.recorder.playbooks = cluster.activities();
  const policy: Policy = { ...base, service: { ...base.service, healthUrl: 'http://127.0.0.1:9/health' } };
  const { handle } = await startAlertIncident(env, h, policy, [
    { labels: { alertname: 'PodCrash', severity: 'warning' } },
  ]);
  return handle;
}

/**
 * A P2 HighErrorRate whose highErrorRate playbook finds 8 % with a rollout 30 min old: emergency scale,
 * a rollback that waits for (and gets) an engineer's approval, the circuit breaker, then recovery on
 * the first check, which mitigates the incident; an engineer resolves it.
 */
async function highErrorRateEmergency(env: TestWorkflowEnvironment, h: Harness, base: Policy) {
  const cluster = new FakeCluster({ replicas: 3, revisionAgesMinutes: [3 * 24 * 60, 30] });
  cluster.errorRates = [0.08, 0.0005];
  h.recorder.playbooks = cluster.activities();
  const policy: Policy = {
    ...base,
    service: { ...base.service, healthUrl: 'http://127.0.0.1:9/health' },
    playbooks: { ...base.playbooks, requireApproval: ['rollback'] },
  };
  const { handle, incidentId } = await startAlertIncident(env, h, policy, [
    { labels: { alertname: 'HighErrorRate', severity: 'warning' } },
  ]);
  const runId = playbookRunId(incidentId, 1);
  h.started.push(runId);
  await eventually(
    'the rollback to wait for approval',
    async () => ((await handle.query(stateQuery)).playbook?.pendingApproval ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  await handle.executeUpdate(OPERATIONS.approveAction.update, {
    args: [{ by: 'alice', stepId: 'rollback' }],
  });
  const playbook = env.client.workflow.getHandle(runId);
  await playbook.result();
  await eventually(
    'the incident to be mitigated',
    async () => ((await handle.query(stateQuery)).status === 'mitigated' ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  await handle.executeUpdate(OPERATIONS.resolve.update, { args: [{ by: 'alice', rootCause: 'bad deploy' }] });
  await handle.result();
  return { incident: handle, playbook };
}
