import { NON_RETRYABLE_PLAYBOOK_ERRORS } from './cluster.ts';
import type {
  FiringAlert,
  PlaybookEnvironment,
  ProbeResult,
  Revision,
  WorkloadRef,
  WorkloadSnapshot,
} from './cluster.ts';
import type { InvestigationInput, PlaybookStep } from './playbook.ts';
import { describeAlerts, describeHistory, describeProbe, describeSnapshot } from './playbook-describe.ts';

/**
 * What the procedures' "Initial Investigation" reads, in order, and how each read is worded: one plan for
 * both ways it runs. Pure (no workflow or activity API), so the `initialInvestigation` child workflow of older
 * incidents and the `investigate` activity of newer ones (src/activities/playbooks/investigate.ts) read
 * the same things and say the same.
 */

/** The reads the investigation makes: the playbook activities' (src/activities/playbooks) of these names. */
export interface InvestigationReaders {
  rolloutHistory(a: { namespace: string; deployment: string }): Promise<Revision[]>;
  firingAlerts(a: { labels?: Record<string, string> }): Promise<FiringAlert[]>;
  inspectWorkload(ref: WorkloadRef): Promise<WorkloadSnapshot>;
  probe(a: { url: string }): Promise<ProbeResult>;
}

/** What an investigation found: its steps (as a run records them) and the findings to post. */
export interface Investigation {
  steps: PlaybookStep[];
  summary: string;
  /** A read failed: what was found is partial. */
  incomplete?: boolean;
  /** The incident was resolved before it finished: cancelled, nothing of it kept. */
  cancelled?: boolean;
}

/** The findings of an investigation the incident's resolution cancelled. */
export const INVESTIGATION_CANCELLED =
  'investigation cancelled: the incident was resolved before it finished';

/** What a step reads from: the cluster, Prometheus, or plain HTTP (always there). */
export type Source = 'cluster' | 'prometheus' | 'http';

type Described = Pick<PlaybookStep, 'summary' | 'read'>;

export interface InvestigationRead<T> {
  id: string;
  source: Source;
  call: (a: InvestigationReaders) => Promise<T>;
  /** The step's record of the value; its summary is also the value's line in the findings. */
  describe: (value: T) => Described;
  /** The findings' line when the worker has no source for the read (none when undefined). */
  notRead?: string;
}

/** A read's line in the findings: its summary, or (not read) what says so. */
export function findingsLine<T>(step: InvestigationRead<T>, value: T | undefined): string | undefined {
  return value === undefined ? step.notRead : step.describe(value).summary;
}

/** Keeps each read's value type while the plan is a list. */
const read = <T>(r: InvestigationRead<T>) => r as unknown as InvestigationRead<unknown>;

export function investigationReads(input: Pick<InvestigationInput, 'target'>): InvestigationRead<unknown>[] {
  const t = input.target;
  return [
    read({
      id: 'recent_deployments',
      source: 'cluster',
      call: (a) => a.rolloutHistory({ namespace: t.namespace, deployment: t.deployment }),
      describe: (h) => describeHistory(h, Date.now()),
      notRead: 'rollout history: not read (no cluster configured)',
    }),
    read({
      id: 'related_alerts',
      source: 'prometheus',
      call: (a) => a.firingAlerts({}),
      describe: (all) => {
        const related = all.filter((alert) => isRelated(alert.labels, input));
        return {
          summary: `related firing alerts: ${describeAlerts(related)}`,
          read: { source: 'prometheus', query: '/api/v1/alerts', value: related.length },
        };
      },
      notRead: 'related alerts: not read (PROMETHEUS_URL not set)',
    }),
    read({
      id: 'pod_health',
      source: 'cluster',
      call: (a) => a.inspectWorkload(t),
      describe: describeSnapshot,
      notRead: 'pods: not read (no cluster configured)',
    }),
    ...t.dependencies.map((url, i) =>
      read({
        id: `dependency_${i + 1}`,
        source: 'http',
        call: (a) => a.probe({ url }),
        describe: (r) => describeProbe('external dependency', r),
      }),
    ),
  ];
}

/**
 * The investigation of a worker that can read none of its sources (no cluster, no Prometheus, no
 * dependencies: `npm start` on a laptop), at `now`: what the `investigate` activity would find, without
 * running it. Undefined when anything can be read.
 */
export function investigationWithoutReads(
  input: Pick<InvestigationInput, 'target'>,
  environment: PlaybookEnvironment,
  now: number,
): Investigation | undefined {
  const reads = investigationReads(input);
  if (reads.some((r) => canRead(environment, r.source))) return undefined;
  const at = new Date(now).toISOString();
  const steps: PlaybookStep[] = [
    {
      id: 'start',
      kind: 'decision',
      status: 'done',
      summary: readOnlySummary('initialInvestigation', input, environment),
      at,
    },
    ...reads.map((r): PlaybookStep => ({
      id: r.id,
      kind: 'read',
      status: 'planned',
      summary: notReadSummary(r.source),
      at,
    })),
  ];
  const lines = reads.flatMap((r) => r.notRead ?? []);
  return { steps, summary: lines.join('\n') };
}

/** Whether the worker can read from `source`. */
export function canRead(environment: PlaybookEnvironment, source: Source): boolean {
  if (source === 'cluster') return environment.cluster;
  if (source === 'prometheus') return environment.prometheus;
  return true;
}

/** The summary of a read the worker has no source for. */
export function notReadSummary(source: Source): string {
  return `not read: ${source === 'cluster' ? 'no cluster configured (KUBECONFIG)' : 'Prometheus is not configured (PROMETHEUS_URL)'}`;
}

/** The investigation's opening step: what it can read from. */
export function readOnlySummary(
  name: string,
  input: Pick<InvestigationInput, 'target'>,
  environment: PlaybookEnvironment,
) {
  return `${name} on ${input.target.namespace}/${input.target.deployment}: read-only (${environment.describe.join('; ') || 'nothing to read from'})`;
}

/** Why step `id` could not run: a failure retrying cannot fix, or one that outlasted `attempts`. */
export function couldNotRun(id: string, type: string | undefined, message: string, attempts: number): string {
  const nonRetryable =
    type !== undefined && (NON_RETRYABLE_PLAYBOOK_ERRORS as readonly string[]).includes(type);
  const why = nonRetryable
    ? `${type === 'Forbidden' ? '403 ' : ''}${message}`
    : `${message} (gave up after ${attempts} attempts)`;
  return `step ${id} could not run: ${why}`;
}

/** An alert is related when one of its labels names the service, its job, namespace-and-deployment. */
function isRelated(labels: Record<string, string>, input: Pick<InvestigationInput, 'target'>): boolean {
  const t = input.target;
  const names = new Set([t.serviceId, t.prometheusJob, t.deployment].filter((n) => n !== ''));
  return Object.values(labels).some((v) => names.has(v));
}
