import type { Client } from '@temporalio/client';
import type { Policy } from '../../domain/policy.ts';
import { policySnapshot } from '../../policy-snapshots.ts';
import { watchdogSettings } from '../../domain/watchdog.ts';
import { watchdogWorkflowId } from '../../contract/workflow-ids.ts';
import { WATCHDOG_WORKFLOW_TYPE, watchdogHeartbeatSignal } from '../../contract/watchdog.ts';
import type { WatchdogHeartbeat, WatchdogInput } from '../../contract/watchdog.ts';

/** One delivery's Watchdog alerts, as the webhook passes them on. */
export interface WatchdogBeat {
  receiver: string;
  /** Firing Watchdog alerts in the delivery. */
  alerts: number;
  receivedAt: string;
}

export interface WatchdogBeatResult {
  workflowId: string;
  action: 'heartbeat';
}

/** What the webhook needs to keep a receiver's dead-man's switch alive; tests substitute their own. */
export interface WatchdogGateway {
  heartbeat(beat: WatchdogBeat): Promise<WatchdogBeatResult>;
}

/** Receivers whose watchdog this process already sent its policy to (bounded, like the run caches). */
const POLICY_SENT_LIMIT = 1_000;

/**
 * Heartbeats as signal-with-start of the receiver's watchdog workflow (src/workflows/watchdog.ts): the first
 * one starts it, every later one lands in it. Bounded by `deadlineMs` like the webhook's other calls, so an
 * unreachable Temporal answers a quick 503 that Alertmanager retries.
 */
export class TemporalWatchdog implements WatchdogGateway {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly policy: Policy;
  private readonly deadlineMs: number;
  private readonly policySent = new Set<string>();

  constructor(client: Client, taskQueue: string, policy: Policy, options: { deadlineMs?: number } = {}) {
    this.client = client;
    this.taskQueue = taskQueue;
    // What workflows get of the policy: no one's contact details (the worker looks them up by handle).
    this.policy = policySnapshot(policy).policy;
    this.deadlineMs = options.deadlineMs ?? 5_000;
  }

  async heartbeat(beat: WatchdogBeat): Promise<WatchdogBeatResult> {
    const workflowId = watchdogWorkflowId(beat.receiver);
    const settings = watchdogSettings(this.policy);
    // The policy goes with this process's first heartbeat to each watchdog, so a running one opens its next
    // incident with the policy deployed now; later heartbeats are a few bytes of history each.
    const withPolicy = !this.policySent.has(workflowId);
    const heartbeat: WatchdogHeartbeat = {
      receiver: beat.receiver,
      receivedAt: beat.receivedAt,
      alerts: beat.alerts,
      settings,
      ...(withPolicy ? { policy: this.policy } : {}),
    };
    await this.client.withDeadline(Date.now() + this.deadlineMs, () =>
      this.client.workflow.signalWithStart(WATCHDOG_WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [{ receiver: beat.receiver, settings, policy: this.policy } satisfies WatchdogInput],
        signal: watchdogHeartbeatSignal,
        signalArgs: [heartbeat],
        staticSummary: `watchdog: ${settings.alertname} from Alertmanager receiver ${beat.receiver}`.slice(
          0,
          400,
        ),
      }),
    );
    if (withPolicy) {
      if (this.policySent.size >= POLICY_SENT_LIMIT) this.policySent.clear();
      this.policySent.add(workflowId);
    }
    return { workflowId, action: 'heartbeat' };
  }
}
