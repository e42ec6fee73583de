import type { PlaybookEnvironment } from '../../domain/cluster.ts';
import { playbookFailure } from './errors.ts';
import type { KubernetesActivities } from './kubernetes.ts';
import type { MonitoringActivities } from './monitoring.ts';

/**
 * The playbooks' activities, by the names the workflows call them: Kubernetes reads and actions
 * (`kubernetes.ts`), Prometheus and HTTP probes (`monitoring.ts`), and what this worker can reach. The
 * workflows see this interface only (as a type).
 */
export interface PlaybookActivities extends KubernetesActivities, MonitoringActivities {
  playbookEnvironment(): Promise<PlaybookEnvironment>;
}

/** The Kubernetes half: `KubernetesCluster` (kubernetes.ts), or nothing when no cluster is configured. */
export type ClusterActivities = KubernetesActivities;
export type { MonitoringActivities };

export interface PlaybookDeps {
  /** Absent: no kubeconfig and no in-cluster account; the playbooks run dry and never call these. */
  cluster?: ClusterActivities;
  monitoring?: MonitoringActivities;
  /** Whether Prometheus is configured (PROMETHEUS_URL). */
  prometheus: boolean;
  /** Where each points, for the record. */
  describe: string[];
}

const CLUSTER_METHODS = [
  'inspectWorkload',
  'rolloutStatus',
  'rolloutHistory',
  'podReadiness',
  'deletePods',
  'scaleTo',
  'rollbackTo',
  'setCircuitBreaker',
  'claimPlaybookRun',
] as const satisfies readonly (keyof ClusterActivities)[];
const MONITORING_METHODS = [
  'queryPrometheus',
  'firingAlerts',
  'podUsage',
  'probe',
] as const satisfies readonly (keyof MonitoringActivities)[];

/**
 * The playbook activities over what the worker has. A half that is not there fails each call loudly as
 * `NotConfigured` (never retried), so a step that cannot act is recorded as not done.
 */
export function playbookActivities(deps: PlaybookDeps): PlaybookActivities {
  return {
    playbookEnvironment: () =>
      Promise.resolve({
        cluster: deps.cluster !== undefined,
        prometheus: deps.prometheus,
        describe: deps.describe,
      }),
    ...delegate(CLUSTER_METHODS, deps.cluster, 'no cluster configured (set KUBECONFIG, or run in a cluster)'),
    ...delegate(MONITORING_METHODS, deps.monitoring, 'monitoring is not configured'),
  };
}

/** Each of `methods` calling `impl`'s, or failing as `NotConfigured` when there is no `impl`. */
function delegate<T extends object, K extends keyof T & string>(
  methods: readonly K[],
  impl: T | undefined,
  missing: string,
): Pick<T, K> {
  return Object.fromEntries(
    methods.map((name) => [
      name,
      impl
        ? (arg: never) => (impl[name] as (a: never) => Promise<unknown>)(arg)
        : () => Promise.reject(playbookFailure('NotConfigured', `${name}: ${missing}`)),
    ]),
  ) as Pick<T, K>;
}
