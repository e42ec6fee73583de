import type {
  Change,
  CircuitBreaker,
  DeletePodsResult,
  FiringAlert,
  PlaybookClaim,
  PlaybookEnvironment,
  PodReadiness,
  PodUsage,
  ProbeResult,
  PromSample,
  Revision,
  RollbackResult,
  RolloutStatus,
  ScaleResult,
  WorkloadRef,
  WorkloadSnapshot,
} from '../../domain/cluster.ts';
import { playbookFailure } from './errors.ts';

/**
 * The playbooks' activities, by the names the workflows call them: Kubernetes reads and actions
 * (`kubernetes.ts`), Prometheus and HTTP probes (`monitoring.ts`), and what this worker can reach. The
 * workflows see this interface only (as a type).
 */
export interface PlaybookActivities {
  playbookEnvironment(): Promise<PlaybookEnvironment>;
  // Kubernetes
  inspectWorkload(ref: WorkloadRef): Promise<WorkloadSnapshot>;
  rolloutStatus(a: { namespace: string; deployment: string }): Promise<RolloutStatus>;
  rolloutHistory(a: { namespace: string; deployment: string }): Promise<Revision[]>;
  podReadiness(a: { namespace: string; selector: string }): Promise<PodReadiness>;
  deletePods(a: { namespace: string; names: string[] }): Promise<DeletePodsResult>;
  scaleTo(a: { namespace: string; deployment: string; replicas: number; hpa?: string }): Promise<ScaleResult>;
  rollbackTo(a: { namespace: string; deployment: string; revision: number }): Promise<RollbackResult>;
  setCircuitBreaker(a: { namespace: string; deployment: string; breaker: CircuitBreaker }): Promise<Change>;
  claimPlaybookRun(a: {
    namespace: string;
    deployment: string;
    playbook: string;
    runId: string;
    at: string;
    cooldownMs: number;
  }): Promise<PlaybookClaim>;
  // Prometheus and HTTP
  queryPrometheus(a: { query: string }): Promise<PromSample[]>;
  firingAlerts(a: { labels?: Record<string, string> }): Promise<FiringAlert[]>;
  podUsage(a: { namespace: string; pods: string[]; window?: string }): Promise<PodUsage[]>;
  probe(a: { url: string; timeoutMs?: number }): Promise<ProbeResult>;
}

/** The Kubernetes half: `KubernetesCluster` (kubernetes.ts), or nothing when no cluster is configured. */
export type ClusterActivities = Pick<
  PlaybookActivities,
  | 'inspectWorkload'
  | 'rolloutStatus'
  | 'rolloutHistory'
  | 'podReadiness'
  | 'deletePods'
  | 'scaleTo'
  | 'rollbackTo'
  | 'setCircuitBreaker'
  | 'claimPlaybookRun'
>;
/** The Prometheus and HTTP half: `Monitoring` (monitoring.ts). */
export type MonitoringActivities = Pick<
  PlaybookActivities,
  'queryPrometheus' | 'firingAlerts' | 'podUsage' | 'probe'
>;

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
  const missing = (what: string) => () => Promise.reject(playbookFailure('NotConfigured', what));
  const cluster = Object.fromEntries(
    CLUSTER_METHODS.map((name) => {
      const impl = deps.cluster;
      return [
        name,
        impl
          ? (arg: never) => (impl[name] as (a: never) => Promise<unknown>)(arg)
          : missing(`${name}: no cluster configured (set KUBECONFIG, or run in a cluster)`),
      ];
    }),
  ) as unknown as ClusterActivities;
  const monitoring = Object.fromEntries(
    MONITORING_METHODS.map((name) => {
      const impl = deps.monitoring;
      return [
        name,
        impl
          ? (arg: never) => (impl[name] as (a: never) => Promise<unknown>)(arg)
          : missing(`${name}: monitoring is not configured`),
      ];
    }),
  ) as unknown as MonitoringActivities;
  return {
    playbookEnvironment: () =>
      Promise.resolve({
        cluster: deps.cluster !== undefined,
        prometheus: deps.prometheus,
        describe: deps.describe,
      }),
    ...cluster,
    ...monitoring,
  };
}
