/**
 * The playbooks' Kubernetes activities: what the procedures' `kubectl` lines do (get pods/svc/ingress/hpa,
 * rollout status/history/undo, delete pods, scale), plus the circuit breaker and the playbook cooldown
 * record, against the cluster of a kubeconfig or the in-cluster service account.
 *
 * Every method of {@link KubernetesCluster} is a Temporal activity of the same name: plain JSON in and out
 * (the types of src/domain/cluster.ts), idempotent under retries (each one reads, compares and changes only
 * what differs; writes carry the read `resourceVersion`, so a concurrent change is a 409 and a retry), and
 * bounded (every request has a timeout). Errors a retry cannot fix are non-retryable `ApplicationFailure`s
 * (`Forbidden`, `NotFound`, `Invalid`); everything else (5xx, 409, 429, timeouts, connection refused) is a
 * plain `Error` the workflow's retry policy retries. No message ever carries a credential.
 *
 * The API calls of each method are listed in {@link PLAYBOOK_RBAC_RULES}; deploy/k8s/rbac.yaml grants
 * exactly their union.
 */
import { existsSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type {
  Change,
  CircuitBreaker,
  DeletePodsResult,
  HpaStatus,
  ClaimInput,
  PlaybookClaim,
  PodHealth,
  PodReadiness,
  Revision,
  RollbackResult,
  RolloutStatus,
  ScaleResult,
  WorkloadRef,
  WorkloadSnapshot,
} from '../../domain/cluster.ts';
import { playbookFailure } from './errors.ts';

/** Annotations this project writes on the Deployment start with this. */
export const ANNOTATION_PREFIX = 'incident-response.pno.dev/';
/** The cooldown record of playbook `<name>`: annotation `<this><name>` = JSON `{runId, at}`. */
export const LAST_RUN_ANNOTATION_PREFIX = `${ANNOTATION_PREFIX}last-run.`;

const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';
const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';
const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** Where a pod finds its service account (the in-cluster configuration). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Attempts of a read-compare-write when the object changes in between (409 Conflict). */
const CONFLICT_ATTEMPTS = 5;

// ---------------------------------------------------------------------------------------------------------
// Configuration

/**
 * The cluster the playbooks act on: the kubeconfig file(s) of `KUBECONFIG` (its current context), else the
 * in-cluster service account (`KUBERNETES_SERVICE_HOST` set and its token mounted), else undefined (no
 * cluster: the playbooks run dry). `describe` says which, for the record; it never holds a credential.
 */
export function loadKubeConfig(
  env: Readonly<Record<string, string | undefined>>,
  opts: { serviceAccountDir?: string } = {},
): { config: k8s.KubeConfig; describe: string } | undefined {
  const kubeconfig = env['KUBECONFIG']?.trim();
  if (kubeconfig) {
    const files = kubeconfig.split(path.delimiter).filter((f) => f !== '');
    const config = new k8s.KubeConfig();
    let loaded = 0;
    for (const file of files) {
      // Like kubectl: missing files in the list are skipped, the first file's context wins.
      if (!existsSync(file)) continue;
      if (loaded === 0) {
        config.loadFromFile(file);
      } else {
        const more = new k8s.KubeConfig();
        more.loadFromFile(file);
        config.mergeConfig(more, true);
      }
      loaded++;
    }
    if (loaded === 0) throw new Error(`KUBECONFIG names no readable file: ${kubeconfig}`);
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error(`KUBECONFIG ${kubeconfig}: no current context with a cluster`);
    return {
      config,
      describe: `kubeconfig ${files.join(path.delimiter)} (context ${config.getCurrentContext()}, server ${cluster.server})`,
    };
  }

  const host = env['KUBERNETES_SERVICE_HOST']?.trim();
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const tokenFile = path.join(dir, 'token');
  if (!host || !existsSync(tokenFile)) return undefined;
  const port = env['KUBERNETES_SERVICE_PORT']?.trim() || '443';
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const config = new k8s.KubeConfig();
  const caFile = path.join(dir, 'ca.crt');
  config.loadFromClusterAndUser(
    { name: 'in-cluster', server, skipTLSVerify: false, ...(existsSync(caFile) ? { caFile } : {}) },
    // The kubelet rotates the projected token: the tokenFile provider re-reads it.
    { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile } } },
  );
  return { config, describe: `in-cluster service account (server ${server})` };
}

// ---------------------------------------------------------------------------------------------------------
// What each activity may call: the Role in deploy/k8s/rbac.yaml is exactly the union.

/** One API call an activity makes: `verb` on `resource` (with `/subresource`) of `apiGroup` ('' = core). */
export interface RbacUse {
  apiGroup: string;
  resource: string;
  verb: string;
  /**
   * The call names the object (get/patch/delete of one object), so a Role may restrict it with
   * `resourceNames`; list and create cannot be restricted so.
   */
  byName: boolean;
}

/** The Kubernetes activities; the workflows proxy them by this type. */
export interface KubernetesActivities {
  inspectWorkload(ref: WorkloadRef): Promise<WorkloadSnapshot>;
  rolloutStatus(a: { namespace: string; deployment: string }): Promise<RolloutStatus>;
  rolloutHistory(a: { namespace: string; deployment: string }): Promise<Revision[]>;
  podReadiness(a: { namespace: string; selector: string }): Promise<PodReadiness>;
  deletePods(a: { namespace: string; names: string[] }): Promise<DeletePodsResult>;
  scaleTo(a: { namespace: string; deployment: string; replicas: number; hpa?: string }): Promise<ScaleResult>;
  rollbackTo(a: { namespace: string; deployment: string; revision: number }): Promise<RollbackResult>;
  setCircuitBreaker(a: { namespace: string; deployment: string; breaker: CircuitBreaker }): Promise<Change>;
  claimPlaybookRun(a: ClaimInput): Promise<PlaybookClaim>;
}

export type KubernetesActivityName = keyof KubernetesActivities;

const use = (apiGroup: string, resource: string, verb: string): RbacUse => ({
  apiGroup,
  resource,
  verb,
  byName: verb !== 'list' && verb !== 'create' && verb !== 'watch' && verb !== 'deletecollection',
});
const PODS_LIST = use('', 'pods', 'list');
const DEPLOYMENT_GET = use('apps', 'deployments', 'get');
const DEPLOYMENT_PATCH = use('apps', 'deployments', 'patch');
const REPLICASETS_LIST = use('apps', 'replicasets', 'list');
const HPA_GET = use('autoscaling', 'horizontalpodautoscalers', 'get');

/** Per activity, every API call it may make (some only on some paths, e.g. configmaps create). */
export const PLAYBOOK_RBAC_RULES: Readonly<Record<KubernetesActivityName, readonly RbacUse[]>> = {
  inspectWorkload: [
    PODS_LIST,
    DEPLOYMENT_GET,
    use('', 'services', 'get'),
    use('networking.k8s.io', 'ingresses', 'get'),
    HPA_GET,
  ],
  rolloutStatus: [DEPLOYMENT_GET],
  rolloutHistory: [DEPLOYMENT_GET, REPLICASETS_LIST],
  podReadiness: [PODS_LIST],
  deletePods: [use('', 'pods', 'delete')],
  scaleTo: [
    use('apps', 'deployments/scale', 'get'),
    use('apps', 'deployments/scale', 'patch'),
    HPA_GET,
    use('autoscaling', 'horizontalpodautoscalers', 'patch'),
  ],
  rollbackTo: [DEPLOYMENT_GET, REPLICASETS_LIST, DEPLOYMENT_PATCH],
  setCircuitBreaker: [
    use('', 'configmaps', 'get'),
    use('', 'configmaps', 'patch'),
    use('', 'configmaps', 'create'),
    DEPLOYMENT_GET,
    DEPLOYMENT_PATCH,
  ],
  claimPlaybookRun: [DEPLOYMENT_GET, DEPLOYMENT_PATCH],
};

/** The union of {@link PLAYBOOK_RBAC_RULES}, each (apiGroup, resource, verb) once, sorted. */
export function playbookRbacUnion(): RbacUse[] {
  const seen = new Map<string, RbacUse>();
  for (const uses of Object.values(PLAYBOOK_RBAC_RULES)) {
    for (const u of uses) seen.set(`${u.apiGroup}|${u.resource}|${u.verb}`, u);
  }
  return [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, u]) => u);
}

// ---------------------------------------------------------------------------------------------------------
// Pure helpers (exported for unit tests)

/**
 * A Kubernetes quantity (`100m`, `0.5`, `128Mi`, `1G`, `1e3`) as a number of base units (cores, bytes);
 * undefined when it is not one.
 */
export function parseQuantity(quantity: string): number | undefined {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(
    quantity.trim(),
  );
  if (!m) return undefined;
  const value = Number(m[1]);
  if (m[2]) return value * 10 ** Number(m[2].slice(1));
  const factor: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
  };
  return m[3] ? value * (factor[m[3]] ?? 1) : value;
}

/** `deployment.kubernetes.io/revision` (and the like) as a number; 0 when absent or not a number. */
export function parseRevision(value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value.trim())) return 0;
  return Number(value.trim());
}

/** A LabelSelector as the `labelSelector` query string (`app=x,tier in (a,b),!legacy`). */
export function labelSelectorToString(selector: k8s.V1LabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  ))
    parts.push(`${key}=${value}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(',');
    switch (e.operator) {
      case 'In':
        parts.push(`${e.key} in (${values})`);
        break;
      case 'NotIn':
        parts.push(`${e.key} notin (${values})`);
        break;
      case 'Exists':
        parts.push(e.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${e.key}`);
        break;
      default:
        throw new Error(`unknown label selector operator ${e.operator}`);
    }
  }
  return parts.join(',');
}

/** Plain JSON of a client object (Dates as ISO strings), without null or undefined members. */
function plainJson(value: unknown): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = strip(x);
      return out;
    }
    return v;
  };
  return strip(JSON.parse(JSON.stringify(value ?? null)) as unknown);
}

/**
 * A pod template as `kubectl rollout undo` compares and restores it: plain JSON without the
 * `pod-template-hash` label the ReplicaSet's copy carries.
 */
export function normalizeTemplate(template: unknown): Record<string, unknown> {
  const t = (plainJson(template) ?? {}) as { metadata?: { labels?: Record<string, string> } };
  if (t.metadata?.labels) {
    delete t.metadata.labels[POD_TEMPLATE_HASH_LABEL];
    if (Object.keys(t.metadata.labels).length === 0) delete t.metadata.labels;
  }
  return t;
}

/** JSON with object keys sorted: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Whether two pod templates are the same, ignoring `pod-template-hash` (kubectl's equalIgnoreHash). */
export function sameTemplate(a: unknown, b: unknown): boolean {
  return canonicalJson(normalizeTemplate(a)) === canonicalJson(normalizeTemplate(b));
}

function imagesOf(template: k8s.V1PodTemplateSpec | undefined): string[] {
  return (template?.spec?.containers ?? []).map((c) => c.image ?? '');
}

function isoTime(value: Date | string | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return String(value);
}

/** A pod as the playbooks see it (`kubectl get pods`, plus its requests). */
export function podHealthOf(pod: k8s.V1Pod): PodHealth {
  const containers = pod.spec?.containers ?? [];
  let cpuCores: number | undefined;
  let memoryBytes: number | undefined;
  for (const c of containers) {
    const cpu = c.resources?.requests?.['cpu'];
    const memory = c.resources?.requests?.['memory'];
    const cpuValue = cpu === undefined ? undefined : parseQuantity(String(cpu));
    const memoryValue = memory === undefined ? undefined : parseQuantity(String(memory));
    if (cpuValue !== undefined) cpuCores = (cpuCores ?? 0) + cpuValue;
    if (memoryValue !== undefined) memoryBytes = (memoryBytes ?? 0) + memoryValue;
  }
  const createdAt = isoTime(pod.metadata?.creationTimestamp);
  return {
    name: pod.metadata?.name ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    terminating: pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
    restarts: (pod.status?.containerStatuses ?? []).reduce((sum, s) => sum + (s.restartCount ?? 0), 0),
    ...(createdAt ? { createdAt } : {}),
    ...(cpuCores !== undefined ? { cpuRequestMillicores: Math.round(cpuCores * 1000) } : {}),
    ...(memoryBytes !== undefined
      ? { memoryRequestMi: Math.round((memoryBytes / 2 ** 20) * 100) / 100 }
      : {}),
  };
}

/** A Deployment's rollout as `kubectl rollout status` judges it. */
export function rolloutStatusOf(d: k8s.V1Deployment): RolloutStatus {
  const name = d.metadata?.name ?? '';
  const desired = d.spec?.replicas ?? 1;
  const generation = d.metadata?.generation ?? 0;
  const observedGeneration = d.status?.observedGeneration ?? 0;
  const replicas = d.status?.replicas ?? 0;
  const updated = d.status?.updatedReplicas ?? 0;
  const ready = d.status?.readyReplicas ?? 0;
  const available = d.status?.availableReplicas ?? 0;
  const progressing = (d.status?.conditions ?? []).find((c) => c.type === 'Progressing');
  const failed = progressing?.reason === 'ProgressDeadlineExceeded';
  const observed = observedGeneration >= generation;
  const complete = observed && updated === desired && replicas === updated && available === desired;
  let message: string;
  if (!observed) message = `waiting for deployment "${name}" spec update to be observed`;
  else if (failed) message = `deployment "${name}" exceeded its progress deadline`;
  else if (updated < desired)
    message = `waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated`;
  else if (replicas > updated)
    message = `waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination`;
  else if (available < updated)
    message = `waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available`;
  else if (!complete) message = `waiting for deployment "${name}" rollout to finish`;
  else message = `deployment "${name}" successfully rolled out`;
  return {
    deployment: name,
    desired,
    updated,
    ready,
    available,
    generation,
    observedGeneration,
    revision: parseRevision(d.metadata?.annotations?.[REVISION_ANNOTATION]),
    images: imagesOf(d.spec?.template),
    complete,
    failed,
    message,
  };
}

function hpaStatusOf(h: k8s.V2HorizontalPodAutoscaler): HpaStatus {
  return {
    name: h.metadata?.name ?? '',
    minReplicas: h.spec?.minReplicas ?? 1,
    maxReplicas: h.spec?.maxReplicas ?? 0,
    currentReplicas: h.status?.currentReplicas ?? 0,
    desiredReplicas: h.status?.desiredReplicas ?? 0,
    conditions: (h.status?.conditions ?? []).map(
      (c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}`,
    ),
  };
}

/** The revision numbers a ReplicaSet has had: its revision and its `revision-history` (after undos). */
function revisionsOf(rs: k8s.V1ReplicaSet): number[] {
  const annotations = rs.metadata?.annotations ?? {};
  const history = (annotations[REVISION_HISTORY_ANNOTATION] ?? '').split(',').map(parseRevision);
  return [parseRevision(annotations[REVISION_ANNOTATION]), ...history].filter((r) => r > 0);
}

/** The cooldown record (`{runId, at}`) in an annotation's value; undefined when absent or unreadable. */
export function parseClaimRecord(value: string | undefined): { runId: string; at: string } | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (parsed && typeof parsed === 'object') {
      const { runId, at } = parsed as { runId?: unknown; at?: unknown };
      if (typeof runId === 'string' && typeof at === 'string' && !Number.isNaN(Date.parse(at)))
        return { runId, at };
    }
  } catch {
    // An unreadable record is no record: it is overwritten.
  }
  return undefined;
}

/**
 * Annotations `kubectl rollout undo` does not copy from the ReplicaSet (the controller's own and kubectl's
 * last-applied), plus this project's records: a cooldown record must not travel back in time with an old
 * revision.
 */
function copiedOnRollback(key: string): boolean {
  return (
    !key.startsWith('deployment.kubernetes.io/') &&
    key !== 'kubectl.kubernetes.io/last-applied-configuration' &&
    key !== 'deprecated.deployment.rollback.to' &&
    !key.startsWith(ANNOTATION_PREFIX)
  );
}

/** A JSON-pointer segment (RFC 6901). */
function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describeImages(revision: number, images: string[]): string {
  return `revision ${revision}: ${images.join(', ') || '(no containers)'}`;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/** What a request was doing, for error messages. */
interface Op {
  verb: string;
  resource: string;
  namespace: string;
  name?: string;
}

function describeOp(op: Op): string {
  return `${op.verb} ${op.resource}${op.name ? ` "${op.name}"` : ''} in namespace ${op.namespace}`;
}

/** The apiserver's Status (message, reason) of a failed request, when its body is one. */
function statusOf(err: k8s.ApiException<unknown>): { message?: string; reason?: string } {
  let body: unknown = err.body;
  if (Buffer.isBuffer(body)) body = body.toString('utf8');
  if (typeof body === 'string') {
    const text = body.trim();
    try {
      body = JSON.parse(text);
    } catch {
      return text ? { message: text.slice(0, 500) } : {};
    }
  }
  if (body && typeof body === 'object') {
    const { message, reason } = body as { message?: unknown; reason?: unknown };
    return {
      ...(typeof message === 'string' ? { message } : {}),
      ...(typeof reason === 'string' ? { reason } : {}),
    };
  }
  return {};
}

/** A 409 Conflict: the object changed since it was read. Retried by re-reading; a plain Error at the end. */
class ConflictError extends Error {
  override name = 'ConflictError';
}

function isApiException(err: unknown): err is k8s.ApiException<unknown> {
  return err instanceof k8s.ApiException;
}

function httpStatus(err: unknown): number | undefined {
  return isApiException(err) ? err.code : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The activities

type Deployment = k8s.V1Deployment;

/**
 * The Kubernetes activities against one cluster. Methods are arrow properties (each one an activity); the
 * API clients are private fields, so spreading an instance yields only the activities.
 */
export class KubernetesCluster implements KubernetesActivities {
  readonly #core: k8s.CoreV1Api;
  readonly #apps: k8s.AppsV1Api;
  readonly #networking: k8s.NetworkingV1Api;
  readonly #autoscaling: k8s.AutoscalingV2Api;
  readonly #timeoutMs: number;
  readonly #secrets: string[];

  constructor(config: k8s.KubeConfig, opts: { requestTimeoutMs?: number } = {}) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current context with a cluster');
    this.#timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const user = config.getCurrentUser();
    this.#secrets = [user?.token, user?.password].filter((s): s is string => !!s && s.length >= 4);
    const timeoutMs = this.#timeoutMs;
    const configuration = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(cluster.server, {}),
      authMethods: { default: config },
      middleware: [k8s.setHeaderMiddleware('User-Agent', 'pno-incident-response')],
      promiseMiddleware: [
        {
          // Every request is bounded: the signal covers connecting, the answer and reading its body.
          pre: (context) => {
            context.setSignal(AbortSignal.timeout(timeoutMs));
            return Promise.resolve(context);
          },
          post: (response) => Promise.resolve(response),
        },
      ],
    });
    this.#core = new k8s.CoreV1Api(configuration);
    this.#apps = new k8s.AppsV1Api(configuration);
    this.#networking = new k8s.NetworkingV1Api(configuration);
    this.#autoscaling = new k8s.AutoscalingV2Api(configuration);
  }

  // ----- reads

  readonly inspectWorkload = async (ref: WorkloadRef): Promise<WorkloadSnapshot> => {
    const { namespace, serviceName, ingress: ingressName, hpa: hpaName } = ref;
    const [pods, deployment, service, ingress, hpa] = await Promise.all([
      this.#listPods(namespace, ref.selector),
      this.#optional({ verb: 'get', resource: 'deployments', namespace, name: ref.deployment }, () =>
        this.#apps.readNamespacedDeployment({ namespace, name: ref.deployment }),
      ),
      serviceName
        ? this.#optional({ verb: 'get', resource: 'services', namespace, name: serviceName }, () =>
            this.#core.readNamespacedService({ namespace, name: serviceName }),
          )
        : undefined,
      ingressName
        ? this.#optional({ verb: 'get', resource: 'ingresses', namespace, name: ingressName }, () =>
            this.#networking.readNamespacedIngress({ namespace, name: ingressName }),
          )
        : undefined,
      hpaName
        ? this.#optional(
            { verb: 'get', resource: 'horizontalpodautoscalers', namespace, name: hpaName },
            () => this.#autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name: hpaName }),
          )
        : undefined,
    ]);
    return {
      pods: pods.map(podHealthOf).sort((a, b) => a.name.localeCompare(b.name)),
      deployment: deployment ? rolloutStatusOf(deployment) : null,
      service: service
        ? {
            name: service.metadata?.name ?? '',
            type: service.spec?.type ?? 'ClusterIP',
            ports: (service.spec?.ports ?? []).map(
              (p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`,
            ),
          }
        : null,
      ingress: ingress
        ? {
            name: ingress.metadata?.name ?? '',
            hosts: [...new Set((ingress.spec?.rules ?? []).map((r) => r.host ?? '*'))],
          }
        : null,
      hpa: hpa ? hpaStatusOf(hpa) : null,
    };
  };

  readonly rolloutStatus = async (a: { namespace: string; deployment: string }): Promise<RolloutStatus> =>
    rolloutStatusOf(await this.#readDeployment(a.namespace, a.deployment));

  readonly rolloutHistory = async (a: { namespace: string; deployment: string }): Promise<Revision[]> => {
    const deployment = await this.#readDeployment(a.namespace, a.deployment);
    const replicaSets = await this.#ownedReplicaSets(deployment);
    return replicaSets
      .map((rs): Revision => {
        const changeCause = rs.metadata?.annotations?.[CHANGE_CAUSE_ANNOTATION];
        return {
          revision: parseRevision(rs.metadata?.annotations?.[REVISION_ANNOTATION]),
          replicaSet: rs.metadata?.name ?? '',
          createdAt: isoTime(rs.metadata?.creationTimestamp) ?? '',
          images: imagesOf(rs.spec?.template),
          ...(changeCause !== undefined ? { changeCause } : {}),
          replicas: rs.spec?.replicas ?? 0,
        };
      })
      .filter((r) => r.revision > 0)
      .sort((x, y) => x.revision - y.revision);
  };

  readonly podReadiness = async (a: { namespace: string; selector: string }): Promise<PodReadiness> => {
    const pods = (await this.#listPods(a.namespace, a.selector))
      .map(podHealthOf)
      .filter((p) => !p.terminating);
    return {
      total: pods.length,
      ready: pods.filter((p) => p.ready).length,
      notReady: pods
        .filter((p) => !p.ready)
        .map((p) => p.name)
        .sort(),
    };
  };

  // ----- changes

  readonly deletePods = async (a: { namespace: string; names: string[] }): Promise<DeletePodsResult> => {
    const names = [...new Set(a.names)];
    const gone = await Promise.all(
      names.map(async (name) => {
        const deleted = await this.#optional(
          { verb: 'delete', resource: 'pods', namespace: a.namespace, name },
          () => this.#core.deleteNamespacedPod({ namespace: a.namespace, name }),
        );
        return deleted === undefined;
      }),
    );
    return {
      deleted: names.filter((_, i) => !gone[i]),
      alreadyGone: names.filter((_, i) => gone[i]),
    };
  };

  readonly scaleTo = async (a: {
    namespace: string;
    deployment: string;
    replicas: number;
    hpa?: string;
  }): Promise<ScaleResult> => {
    if (!Number.isInteger(a.replicas) || a.replicas < 0)
      throw playbookFailure(
        'Invalid',
        `scale ${a.deployment}: replicas must be a whole number ≥ 0, not ${a.replicas}`,
      );
    if (a.hpa) {
      const name = a.hpa;
      const hpaOp: Op = { verb: 'get', resource: 'horizontalpodautoscalers', namespace: a.namespace, name };
      const hpa = await this.#optional(hpaOp, () =>
        this.#autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: a.namespace, name }),
      );
      if (hpa) return await this.#scaleWithHpa(a, hpa);
    }
    const { before, after } = await this.#scaleDeployment(a.namespace, a.deployment, (current) =>
      current === a.replicas ? undefined : a.replicas,
    );
    return {
      object: `deployment/${a.deployment}`,
      before: `replicas ${before}`,
      after: `replicas ${after}`,
      changed: before !== after,
      via: 'scale',
      replicasBefore: before,
      replicasAfter: after,
    };
  };

  readonly rollbackTo = async (a: {
    namespace: string;
    deployment: string;
    revision: number;
  }): Promise<RollbackResult> => {
    const { namespace } = a;
    // kubectl's --to-revision=0 ("the previous one") is not idempotent: after an undo, the previous one is
    // another. The workflow names the revision it chose from the history.
    if (!Number.isInteger(a.revision) || a.revision <= 0)
      throw playbookFailure(
        'Invalid',
        `roll back ${a.deployment}: revision must be a revision number ≥ 1, not ${a.revision}`,
      );
    return await this.#withConflictRetry(`roll back deployment ${a.deployment}`, async () => {
      const deployment = await this.#readDeployment(namespace, a.deployment);
      if (deployment.spec?.paused)
        throw playbookFailure('Invalid', `cannot roll back deployment ${a.deployment}: it is paused`);
      const replicaSets = await this.#ownedReplicaSets(deployment);
      // After an undo the controller renumbers the restored ReplicaSet and records its former numbers in
      // revision-history: a retry still finds the revision it asked for.
      const target =
        replicaSets.find(
          (rs) => parseRevision(rs.metadata?.annotations?.[REVISION_ANNOTATION]) === a.revision,
        ) ?? replicaSets.find((rs) => revisionsOf(rs).includes(a.revision));
      if (!target) {
        const known = replicaSets
          .map((rs) => parseRevision(rs.metadata?.annotations?.[REVISION_ANNOTATION]))
          .filter((r) => r > 0)
          .sort((x, y) => x - y);
        throw playbookFailure(
          'NotFound',
          `revision ${a.revision} of deployment ${a.deployment} not found in namespace ${namespace} ` +
            `(revisions: ${known.join(', ') || 'none'})`,
        );
      }
      const fromRevision = parseRevision(deployment.metadata?.annotations?.[REVISION_ANNOTATION]);
      const imagesBefore = imagesOf(deployment.spec?.template);
      const imagesAfter = imagesOf(target.spec?.template);
      const object = `deployment/${a.deployment}`;
      if (sameTemplate(deployment.spec?.template, target.spec?.template)) {
        return {
          object,
          before: describeImages(fromRevision, imagesBefore),
          after: describeImages(fromRevision, imagesBefore),
          changed: false,
          fromRevision,
          toRevision: a.revision,
          imagesBefore,
          imagesAfter: imagesBefore,
        };
      }
      await this.#request({ verb: 'patch', resource: 'deployments', namespace, name: a.deployment }, () =>
        this.#apps.patchNamespacedDeployment(
          { namespace, name: a.deployment, body: rollbackPatch(deployment, target) },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        ),
      );
      return {
        object,
        before: describeImages(fromRevision, imagesBefore),
        after: describeImages(a.revision, imagesAfter),
        changed: true,
        fromRevision,
        toRevision: a.revision,
        imagesBefore,
        imagesAfter,
      };
    });
  };

  readonly setCircuitBreaker = async (a: {
    namespace: string;
    deployment: string;
    breaker: CircuitBreaker;
  }): Promise<Change> => {
    const { namespace, breaker } = a;
    if ('configMap' in breaker) {
      const name = breaker.configMap;
      const object = `configmap/${name}`;
      return await this.#withConflictRetry(`set ${object} ${breaker.key}`, async () => {
        const cm = await this.#optional({ verb: 'get', resource: 'configmaps', namespace, name }, () =>
          this.#core.readNamespacedConfigMap({ namespace, name }),
        );
        const current = cm?.data?.[breaker.key];
        const before = current === undefined ? `${breaker.key} unset` : `${breaker.key}=${current}`;
        const after = `${breaker.key}=${breaker.value}`;
        if (current === breaker.value) return { object, before, after, changed: false };
        if (!cm) {
          await this.#request({ verb: 'create', resource: 'configmaps', namespace, name }, () =>
            this.#core.createNamespacedConfigMap({
              namespace,
              body: { metadata: { name, namespace }, data: { [breaker.key]: breaker.value } },
            }),
          );
        } else {
          await this.#request({ verb: 'patch', resource: 'configmaps', namespace, name }, () =>
            this.#core.patchNamespacedConfigMap(
              {
                namespace,
                name,
                body: {
                  metadata: { resourceVersion: cm.metadata?.resourceVersion },
                  data: { [breaker.key]: breaker.value },
                },
              },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            ),
          );
        }
        return { object, before, after, changed: true };
      });
    }
    const object = `deployment/${a.deployment}`;
    return await this.#withConflictRetry(`set ${object} annotation ${breaker.annotation}`, async () => {
      const deployment = await this.#readDeployment(namespace, a.deployment);
      const current = deployment.metadata?.annotations?.[breaker.annotation];
      const before =
        current === undefined ? `${breaker.annotation} unset` : `${breaker.annotation}=${current}`;
      const after = `${breaker.annotation}=${breaker.value}`;
      if (current === breaker.value) return { object, before, after, changed: false };
      // Metadata only: the pod template is untouched, so nothing rolls out.
      await this.#patchDeploymentAnnotation(deployment, breaker.annotation, breaker.value);
      return { object, before, after, changed: true };
    });
  };

  readonly claimPlaybookRun = async (a: ClaimInput): Promise<PlaybookClaim> => {
    const at = Date.parse(a.at);
    if (Number.isNaN(at)) throw playbookFailure('Invalid', `claim ${a.playbook}: "${a.at}" is not a time`);
    const key = `${LAST_RUN_ANNOTATION_PREFIX}${a.playbook}`;
    return await this.#withConflictRetry(
      `claim playbook ${a.playbook} on deployment ${a.deployment}`,
      async () => {
        const deployment = await this.#readDeployment(a.namespace, a.deployment);
        const previous = parseClaimRecord(deployment.metadata?.annotations?.[key]);
        // The same run again: a retry of this activity, or a replay of the workflow.
        if (previous?.runId === a.runId) return { granted: true };
        // Inside the cooldown (a record newer than this claim, e.g. a clock ahead, counts as inside too).
        if (previous && at - Date.parse(previous.at) < a.cooldownMs) return { granted: false, previous };
        await this.#patchDeploymentAnnotation(deployment, key, JSON.stringify({ runId: a.runId, at: a.at }));
        return previous ? { granted: true, previous } : { granted: true };
      },
    );
  };

  // ----- helpers

  async #scaleWithHpa(
    a: { namespace: string; deployment: string; replicas: number },
    hpa: k8s.V2HorizontalPodAutoscaler,
  ): Promise<ScaleResult> {
    const name = hpa.metadata?.name ?? '';
    const minBefore = hpa.spec?.minReplicas ?? 1;
    const maxBefore = hpa.spec?.maxReplicas ?? 0;
    const minAfter = Math.max(minBefore, a.replicas);
    const maxAfter = Math.max(maxBefore, minAfter);
    // The replicas before anything changes: the HPA controller may act on the new minimum at once.
    const scaleOp: Op = {
      verb: 'get',
      resource: 'deployments/scale',
      namespace: a.namespace,
      name: a.deployment,
    };
    const initial = await this.#request(scaleOp, () =>
      this.#apps.readNamespacedDeploymentScale({ namespace: a.namespace, name: a.deployment }),
    );
    const before = initial.spec?.replicas ?? 0;
    if (minAfter !== minBefore || maxAfter !== maxBefore) {
      await this.#request(
        { verb: 'patch', resource: 'horizontalpodautoscalers', namespace: a.namespace, name },
        () =>
          this.#autoscaling.patchNamespacedHorizontalPodAutoscaler(
            {
              namespace: a.namespace,
              name,
              body: {
                metadata: { resourceVersion: hpa.metadata?.resourceVersion },
                spec: { minReplicas: minAfter, maxReplicas: maxAfter },
              },
            },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          ),
      );
    }
    // The HPA only acts on its next sync (and not at all on a target it cannot read): bring the Deployment
    // up now, so the HPA and the Deployment agree. Never lower it here: the HPA owns the replica count.
    const { after } = await this.#scaleDeployment(a.namespace, a.deployment, (current) =>
      current < a.replicas ? a.replicas : undefined,
    );
    const hpaChanged = minAfter !== minBefore || maxAfter !== maxBefore;
    const describe = (min: number, max: number, showMax: boolean) =>
      `minReplicas ${min}${showMax ? `, maxReplicas ${max}` : ''}`;
    const maxChanged = maxAfter !== maxBefore;
    return {
      object: `hpa/${name}`,
      before: describe(minBefore, maxBefore, maxChanged),
      after: describe(minAfter, maxAfter, maxChanged),
      changed: hpaChanged || before !== after,
      via: 'hpa',
      replicasBefore: before,
      replicasAfter: after,
    };
  }

  /** Reads the Deployment's scale subresource and, when `target` says so, patches it (with its resourceVersion). */
  async #scaleDeployment(
    namespace: string,
    deployment: string,
    target: (current: number) => number | undefined,
  ): Promise<{ before: number; after: number }> {
    return await this.#withConflictRetry(`scale deployment ${deployment}`, async () => {
      const scale = await this.#request(
        { verb: 'get', resource: 'deployments/scale', namespace, name: deployment },
        () => this.#apps.readNamespacedDeploymentScale({ namespace, name: deployment }),
      );
      const before = scale.spec?.replicas ?? 0;
      const after = target(before);
      if (after === undefined || after === before) return { before, after: before };
      await this.#request({ verb: 'patch', resource: 'deployments/scale', namespace, name: deployment }, () =>
        this.#apps.patchNamespacedDeploymentScale(
          {
            namespace,
            name: deployment,
            body: {
              metadata: { resourceVersion: scale.metadata?.resourceVersion },
              spec: { replicas: after },
            },
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
      return { before, after };
    });
  }

  /** One annotation on the Deployment's metadata (merge patch, with the read resourceVersion). */
  async #patchDeploymentAnnotation(deployment: Deployment, key: string, value: string): Promise<void> {
    const namespace = deployment.metadata?.namespace ?? '';
    const name = deployment.metadata?.name ?? '';
    await this.#request({ verb: 'patch', resource: 'deployments', namespace, name }, () =>
      this.#apps.patchNamespacedDeployment(
        {
          namespace,
          name,
          body: {
            metadata: {
              resourceVersion: deployment.metadata?.resourceVersion,
              annotations: { [key]: value },
            },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    );
  }

  async #readDeployment(namespace: string, name: string): Promise<Deployment> {
    return await this.#request({ verb: 'get', resource: 'deployments', namespace, name }, () =>
      this.#apps.readNamespacedDeployment({ namespace, name }),
    );
  }

  async #listPods(namespace: string, selector: string): Promise<k8s.V1Pod[]> {
    const list = await this.#request({ verb: 'list', resource: 'pods', namespace }, () =>
      this.#core.listNamespacedPod({ namespace, labelSelector: selector }),
    );
    return list.items;
  }

  /** The Deployment's ReplicaSets, as kubectl finds them: by its selector, controlled by its uid. */
  async #ownedReplicaSets(deployment: Deployment): Promise<k8s.V1ReplicaSet[]> {
    const namespace = deployment.metadata?.namespace ?? '';
    const uid = deployment.metadata?.uid;
    const list = await this.#request({ verb: 'list', resource: 'replicasets', namespace }, () =>
      this.#apps.listNamespacedReplicaSet({
        namespace,
        labelSelector: labelSelectorToString(deployment.spec?.selector),
      }),
    );
    return list.items.filter((rs) =>
      (rs.metadata?.ownerReferences ?? []).some((o) => o.controller === true && o.uid === uid),
    );
  }

  /** Runs a read-compare-write again (re-reading) when its write meets a 409 Conflict. */
  async #withConflictRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (i >= CONFLICT_ATTEMPTS)
          throw new Error(
            `${what}: the object kept changing (${CONFLICT_ATTEMPTS} conflicts): ${err.message}`,
            {
              cause: err,
            },
          );
      }
    }
  }

  /** A request whose 404 means "absent" (undefined); any other failure as {@link #request}. */
  async #optional<T>(op: Op, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw this.#failure(op, err);
    }
  }

  async #request<T>(op: Op, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.#failure(op, err);
    }
  }

  /** Maps a client error to what the workflow should see; see the module comment. */
  #failure(op: Op, err: unknown): Error {
    const what = describeOp(op);
    if (isApiException(err)) {
      const status = statusOf(err);
      const apiMessage = this.#redact(
        status.message ?? status.reason ?? STATUS_CODES[err.code] ?? 'no message',
      );
      switch (err.code) {
        case 403: {
          const user = /User "([^"]+)"/.exec(apiMessage)?.[1] ?? "this worker's account";
          return playbookFailure(
            'Forbidden',
            `forbidden: ${user} cannot ${op.verb} ${op.resource}${op.name ? ` "${op.name}"` : ''} in ${op.namespace}: ${apiMessage}`,
          );
        }
        case 404:
          return playbookFailure('NotFound', `not found: ${what}: ${apiMessage}`);
        case 400:
        case 422:
          return playbookFailure('Invalid', `invalid: ${what}: ${apiMessage}`);
        case 409:
          return new ConflictError(`conflict: ${what}: ${apiMessage}`);
        default:
          return new Error(
            `${what} failed: HTTP ${err.code}${status.reason ? ` ${status.reason}` : ''}: ${apiMessage}`,
          );
      }
    }
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
      return new Error(`${what}: no answer from the apiserver within ${this.#timeoutMs} ms`);
    if (err instanceof Error) {
      const cause = (err as { cause?: unknown }).cause;
      const why = cause instanceof Error ? ` (${cause.message})` : '';
      return new Error(this.#redact(`${what} failed: ${err.message}${why}`));
    }
    return new Error(this.#redact(`${what} failed: ${String(err)}`));
  }

  #redact(text: string): string {
    let out = text.replace(/(bearer\s+)[^\s"',;]+/gi, '$1<redacted>');
    for (const secret of this.#secrets) out = out.split(secret).join('<redacted>');
    return out;
  }
}

/**
 * The JSON patch `kubectl rollout undo --to-revision` sends, guarded by the Deployment's resourceVersion:
 * the ReplicaSet's template (without pod-template-hash) replaces the Deployment's, and the ReplicaSet's
 * annotations (but the controller's, kubectl's last-applied and this project's records) are set on the
 * Deployment. Unlike kubectl, other annotations of the Deployment are kept (kubectl replaces the whole map,
 * dropping what anyone wrote since), except the change cause, which follows the revision.
 */
export function rollbackPatch(deployment: k8s.V1Deployment, target: k8s.V1ReplicaSet): object[] {
  const current = deployment.metadata?.annotations;
  const copied = Object.fromEntries(
    Object.entries(target.metadata?.annotations ?? {}).filter(([key]) => copiedOnRollback(key)),
  );
  const ops: object[] = [
    { op: 'replace', path: '/metadata/resourceVersion', value: deployment.metadata?.resourceVersion },
    { op: 'replace', path: '/spec/template', value: normalizeTemplate(target.spec?.template) },
  ];
  if (!current) {
    if (Object.keys(copied).length > 0) ops.push({ op: 'add', path: '/metadata/annotations', value: copied });
    return ops;
  }
  for (const [key, value] of Object.entries(copied)) {
    if (current[key] !== value) ops.push({ op: 'add', path: `/metadata/annotations/${pointer(key)}`, value });
  }
  if (current[CHANGE_CAUSE_ANNOTATION] !== undefined && copied[CHANGE_CAUSE_ANNOTATION] === undefined)
    ops.push({ op: 'remove', path: `/metadata/annotations/${pointer(CHANGE_CAUSE_ANNOTATION)}` });
  return ops;
}
