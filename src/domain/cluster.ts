/**
 * What the playbooks read from and change in the protected service's cluster and monitoring, as plain
 * JSON: the activities' inputs and results (`src/activities/playbooks/`), recorded in workflow history.
 * No client types here: the workflows only ever see these.
 */

/** The Deployment a playbook works on and the objects around it (names from the policy's `service`). */
export interface WorkloadRef {
  namespace: string;
  deployment: string;
  /** Label selector of the Deployment's pods (`app=pno-physics-bench`). */
  selector: string;
  serviceName?: string;
  ingress?: string;
  hpa?: string;
}

export interface PodHealth {
  name: string;
  /** `status.phase`: Pending, Running, Succeeded, Failed, Unknown. */
  phase: string;
  /** The pod's `Ready` condition is True. */
  ready: boolean;
  /** It has a deletionTimestamp (it is going away). */
  terminating: boolean;
  restarts: number;
  createdAt?: string;
  /** Sum of the containers' requests, when they declare them. */
  cpuRequestMillicores?: number;
  memoryRequestMi?: number;
}

/** A Deployment's rollout, as `kubectl rollout status` judges it. */
export interface RolloutStatus {
  deployment: string;
  /** `spec.replicas`. */
  desired: number;
  updated: number;
  ready: number;
  available: number;
  generation: number;
  observedGeneration: number;
  /** `deployment.kubernetes.io/revision` of the Deployment. */
  revision: number;
  images: string[];
  /** observedGeneration ≥ generation and updated = ready = available = desired (no old replicas left). */
  complete: boolean;
  /** The Progressing condition says ProgressDeadlineExceeded. */
  failed: boolean;
  message: string;
}

export interface HpaStatus {
  name: string;
  minReplicas: number;
  maxReplicas: number;
  currentReplicas: number;
  desiredReplicas: number;
  /** Conditions as `Type=Status (Reason)`. */
  conditions: string[];
}

/** Everything `kubectl get pods/svc/ingress/hpa` shows of the workload, in one read. */
export interface WorkloadSnapshot {
  pods: PodHealth[];
  /** Null when the Deployment does not exist. */
  deployment: RolloutStatus | null;
  service: { name: string; type: string; ports: string[]; endpointsReady?: number } | null;
  ingress: { name: string; hosts: string[] } | null;
  hpa: HpaStatus | null;
}

/** One revision of `kubectl rollout history`: a ReplicaSet of the Deployment. */
export interface Revision {
  revision: number;
  replicaSet: string;
  createdAt: string;
  images: string[];
  changeCause?: string;
  replicas: number;
}

/** Pods of a selector and which of them are Ready (`kubectl wait --for=condition=ready`). */
export interface PodReadiness {
  total: number;
  ready: number;
  notReady: string[];
}

/** What an action changed: one object, before → after. `changed: false` when it already was as asked. */
export interface Change {
  object: string;
  before: string;
  after: string;
  changed: boolean;
}

export interface DeletePodsResult {
  deleted: string[];
  /** Already gone (deleted by a previous attempt, or by its controller). */
  alreadyGone: string[];
}

export interface ScaleResult extends Change {
  /** `scale`: the Deployment's scale subresource; `hpa`: the HPA's minReplicas was raised instead. */
  via: 'scale' | 'hpa';
  replicasBefore: number;
  replicasAfter: number;
}

export interface RollbackResult extends Change {
  fromRevision: number;
  toRevision: number;
  imagesBefore: string[];
  imagesAfter: string[];
}

/** The circuit breaker: a key of a ConfigMap, or an annotation on the Deployment. */
export type CircuitBreaker =
  { configMap: string; key: string; value: string } | { annotation: string; value: string };

/** A run's claim on a Deployment for one playbook: the cooldown check and its record, in one call. */
export interface ClaimInput {
  namespace: string;
  deployment: string;
  playbook: string;
  runId: string;
  /** ISO time of the claim, computed once by the workflow. */
  at: string;
  cooldownMs: number;
}

/** The cooldown's record on the Deployment: which run of a playbook acted last, and when. */
export interface PlaybookClaim {
  granted: boolean;
  /** The run that acted before (when not granted: the one still inside the cooldown). */
  previous?: { runId: string; at: string };
}

/** One sample of an instant Prometheus query. */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

export interface FiringAlert {
  alertname: string;
  severity: string;
  state: string;
  labels: Record<string, string>;
  activeAt?: string;
  summary?: string;
}

/** An HTTP probe of a health URL (`curl -f`): ok for 2xx; never throws for a failing service. */
export interface ProbeResult {
  url: string;
  ok: boolean;
  status?: number;
  ms: number;
  error?: string;
}

/** A pod's CPU and memory from Prometheus' cAdvisor series (clusters without metrics-server are common). */
export interface PodUsage {
  pod: string;
  cpuMillicores: number;
  memoryMi: number;
}

/** What this worker can reach: a cluster (kubeconfig or in-cluster account) and Prometheus. */
export interface PlaybookEnvironment {
  cluster: boolean;
  prometheus: boolean;
  /** Where each comes from, for the record (`kubeconfig /path`, `in-cluster`, `PROMETHEUS_URL …`). */
  describe: string[];
}

/**
 * Error types the playbook activities fail with, not retried: the workflow stops and escalates with the
 * message. 5xx and timeouts are plain errors and retried.
 */
export const NON_RETRYABLE_PLAYBOOK_ERRORS = ['Forbidden', 'NotFound', 'Invalid', 'NotConfigured'] as const;
export type PlaybookErrorType = (typeof NON_RETRYABLE_PLAYBOOK_ERRORS)[number];
