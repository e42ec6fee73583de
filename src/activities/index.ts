import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { ObtainedPolicy } from '../contract/messages.ts';
import type { Delivery, DeliveryResult } from '../domain/delivery.ts';
import type { Person } from '../domain/policy.ts';
import { Deliverer, RetryLater } from './deliver.ts';
import type { DeliveryChannels, DeliveryProgress } from './deliver.ts';
import type { IncidentHistory } from './incident-history.ts';
import type { IncidentRecordFile } from '../incident-record-file.ts';
import type { ArchivedEntry } from '../domain/incident-record.ts';
import { playbookActivities } from './playbooks/index.ts';
import { investigateActivity } from './playbooks/investigate.ts';
import type { PlaybookActivities } from './playbooks/index.ts';
import { within } from '../within.ts';

/** What the activities need from the outside world; the worker builds the real ones. */
export interface ActivityDeps {
  /** Every channel's transport: the provider's, the laptop's outbox, or "not configured". */
  channels: DeliveryChannels;
  history: IncidentHistory;
  /**
   * The worker's policies (src/policy-snapshots.ts): an incident's policy by hash, and the people of the
   * worker's current policy, whose contacts (e-mail, phone) the `deliver` activity looks up by handle.
   */
  policies: WorkerPolicies;
  /** The playbooks' Kubernetes, Prometheus and HTTP activities; default: no cluster, no Prometheus. */
  playbooks?: PlaybookActivities;
  /** Where bounded incident runs put what they let go (src/incident-record-file.ts); the worker always has one. */
  records?: IncidentRecordFile;
}

export type { Delivery };

/** What the activities need of the worker's policies. */
export interface WorkerPolicies {
  /** The policy of that hash, else the worker's current policy with `missing` set; never throws for a miss. */
  obtain(hash: string): Promise<ObtainedPolicy>;
  /** A person of the worker's current policy (own properties only), with their contacts. */
  person(handle: string): Person | undefined;
}

export interface DeliverInput {
  incidentId: string;
  deliveries: Delivery[];
  /** The retry policy's attempt limit: on the last attempt, what still fails is reported, not retried. */
  maxAttempts: number;
}

/** Heartbeat details of an attempt; older workers heartbeated only the finished results. */
function resumeFrom(details: unknown): DeliveryProgress | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  if ('done' in details && 'partial' in details) return details as DeliveryProgress;
  return { done: details as Record<number, DeliveryResult>, partial: {}, rooms: {} };
}

/**
 * The longest the previous-incident lookup may hold a new incident's first step, and so its first page: past
 * this, no link (a slow visibility store delays paging by this much at most, never more).
 */
const PREVIOUS_LOOKUP_MS = 2_000;

export function createActivities(deps: ActivityDeps) {
  /**
   * The lookup of `findPreviousIncident`, folded into the run's first step (no activity task of its own). Best
   * effort, as that activity's was: a visibility store that fails or is slower than PREVIOUS_LOOKUP_MS means
   * no link, never a stuck or late page.
   */
  const previousIncident = async (of: { workflowId: string; runId: string }): Promise<string | undefined> => {
    const LATE = Symbol('late');
    try {
      const found = await within(
        deps.history.previousIncidentId(of.workflowId, of.runId),
        PREVIOUS_LOOKUP_MS,
        LATE,
      );
      if (found !== LATE) return found;
      log.warn('previous incident not looked up: visibility answered too slowly', {
        workflowId: of.workflowId,
        waitedMs: PREVIOUS_LOOKUP_MS,
      });
    } catch (err) {
      log.warn('previous incident not looked up', { workflowId: of.workflowId, error: String(err) });
    }
    return undefined;
  };
  const playbooks = deps.playbooks ?? playbookActivities({ prometheus: false, describe: [] });
  return {
    ...playbooks,
    /** The initial investigation of an incident with no playbook (investigate.ts). */
    investigate: investigateActivity(playbooks),
    /**
     * Sends every message one step of an incident produced, in one activity
     * (one task and one completion instead of one per message). Progress is
     * heartbeated, so a retry resends only what has not gone out yet; a
     * message that cannot succeed is reported at once, one that might is
     * retried with the activity until its last attempt.
     */
    async deliver(input: DeliverInput): Promise<DeliveryResult[]> {
      const context = Context.current();
      const progress = resumeFrom(context.info.heartbeatDetails);
      const deliverer = new Deliverer({
        channels: deps.channels,
        people: (handle) => deps.policies.person(handle),
        ...(progress ? { progress } : {}),
        lastAttempt: context.info.attempt >= input.maxAttempts,
        onProgress: (p) => context.heartbeat(p),
      });
      try {
        const results = await deliverer.deliverAll(input.incidentId, input.deliveries);
        for (const r of results) {
          if (!r.ok) log.warn('delivery failed', { incidentId: input.incidentId, error: r.error });
        }
        return results;
      } catch (err) {
        if (!(err instanceof RetryLater)) throw err;
        throw ApplicationFailure.create({
          message: err.message,
          type: 'TransientDeliveryError',
          nextRetryDelay: err.retryAfterMs,
        });
      }
    },

    /** Appends what a bounded incident run lets go to the incident's record (synced before it returns). */
    async archiveIncidentRecord(input: { incidentId: string; entries: ArchivedEntry[] }): Promise<void> {
      if (!deps.records) throw new Error('this worker has no incident record store');
      await deps.records.append(input.incidentId, input.entries);
    },

    /**
     * The policy an incident runs on, by the hash its start named (a local activity, once per run: its
     * result is the run's policy, recorded in its history). A hash the worker does not know answers the
     * worker's current policy, said loudly here and on the incident's timeline.
     */
    async incidentPolicy(input: {
      hash: string;
      previousOf?: { workflowId: string; runId: string };
      environment?: boolean;
    }): Promise<ObtainedPolicy> {
      const found = await deps.policies.obtain(input.hash);
      // What the playbooks can read, so that a run whose investigation could read nothing needs no activity.
      const obtained = input.environment
        ? { ...found, playbookEnvironment: await playbooks.playbookEnvironment() }
        : found;
      if (obtained.missing) {
        log.warn('incident policy not found: the incident runs on the worker’s current policy', {
          requested: obtained.missing.requested,
          reason: obtained.missing.reason,
          used: obtained.hash,
        });
      }
      const previousIncidentId = input.previousOf && (await previousIncident(input.previousOf));
      return previousIncidentId ? { ...obtained, previousIncidentId } : obtained;
    },

    /** The incident this alert group had before (a group that fires again after its incident was resolved). */
    async findPreviousIncident(input: { workflowId: string; runId: string }): Promise<string | null> {
      return (await deps.history.previousIncidentId(input.workflowId, input.runId)) ?? null;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
