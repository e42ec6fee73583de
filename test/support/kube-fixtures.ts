/**
 * The protected service in a test cluster (test/support/kube-cluster.ts), as the playbooks expect it: the
 * Deployment `pno-physics-bench` with its Service, Ingress, optional HPA and the circuit-breaker ConfigMap,
 * rollouts, a stuck pod, and the Role of deploy/k8s/rbac.yaml granted to the `playbook` user. Everything is
 * done with the admin's credentials; every helper takes a `namespace` (default `production`) and tolerates
 * a cluster shared by several tests (creating what exists already is not an error).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { WorkloadRef } from '../../src/domain/cluster.ts';
import { KubernetesCluster } from '../../src/activities/playbooks/kubernetes.ts';
import { eventually } from './eventually.ts';
import type { KubeCluster } from './kube-cluster.ts';
import { KWOK_NODE_SELECTOR, KWOK_TOLERATION } from './kube-cluster.ts';

export const NAMESPACE = 'production';
export const APP = 'pno-physics-bench';
export const SELECTOR = `app=${APP}`;
export const SERVICE = 'pno-service';
export const INGRESS = 'pno-ingress';
export const HPA = 'pno-hpa';
export const CONFIG_MAP = 'pno-flags';
export const IMAGE = 'registry.example/pno-physics-bench';
export const IMAGE_V1 = `${IMAGE}:1.0.0`;
export const RBAC_FILE = path.resolve(import.meta.dirname, '../../deploy/k8s/rbac.yaml');
/** The RoleBinding {@link applyRbac} creates for the `playbook` user. */
export const PLAYBOOK_BINDING = 'incident-remediation-playbook';

export interface AdminClients {
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  networking: k8s.NetworkingV1Api;
  autoscaling: k8s.AutoscalingV2Api;
  rbac: k8s.RbacAuthorizationV1Api;
  authorization: k8s.AuthorizationV1Api;
}

const adminCache = new WeakMap<KubeCluster, AdminClients>();

/** API clients with the admin's credentials (cached per cluster). */
export function admin(cluster: KubeCluster): AdminClients {
  let clients = adminCache.get(cluster);
  if (!clients) {
    const config = new k8s.KubeConfig();
    config.loadFromFile(cluster.kubeconfigFor(cluster.adminToken));
    clients = {
      core: config.makeApiClient(k8s.CoreV1Api),
      apps: config.makeApiClient(k8s.AppsV1Api),
      networking: config.makeApiClient(k8s.NetworkingV1Api),
      autoscaling: config.makeApiClient(k8s.AutoscalingV2Api),
      rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api),
      authorization: config.makeApiClient(k8s.AuthorizationV1Api),
    };
    adminCache.set(cluster, clients);
  }
  return clients;
}

/** The activities as the `playbook` user (whose rights are what {@link applyRbac} granted). */
export function playbookActivities(
  cluster: KubeCluster,
  opts: { requestTimeoutMs?: number } = {},
): KubernetesCluster {
  const config = new k8s.KubeConfig();
  config.loadFromFile(cluster.kubeconfigFor(cluster.playbookToken));
  return new KubernetesCluster(config, opts);
}

/** Runs `create`, treating 409 AlreadyExists as done. */
async function createIfAbsent(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
  }
}

export interface WorkloadOptions {
  namespace?: string;
  /** Default 2. */
  replicas?: number;
  /** Unset: the API's default (10). */
  revisionHistoryLimit?: number;
  /** An HPA `pno-hpa` (autoscaling/v2, CPU utilization 80 %) with these bounds. Default: none. */
  hpa?: { min: number; max: number };
  /** Create the ConfigMap `pno-flags` (`circuit-breaker: closed`). Default true. */
  configMap?: boolean;
  /** Annotations of the Deployment (e.g. `kubernetes.io/change-cause`). */
  annotations?: Record<string, string>;
}

/** The WorkloadRef of the fixture's objects in `namespace`. */
export function workloadRef(namespace = NAMESPACE): WorkloadRef {
  return { namespace, deployment: APP, selector: SELECTOR, serviceName: SERVICE, ingress: INGRESS, hpa: HPA };
}

/**
 * Creates the namespace and the workload in it (what exists already is left as it is); does not wait for
 * pods (see {@link waitForReady}).
 */
export async function createWorkload(cluster: KubeCluster, opts: WorkloadOptions = {}): Promise<WorkloadRef> {
  const namespace = opts.namespace ?? NAMESPACE;
  const { core, apps, networking, autoscaling } = admin(cluster);
  await createIfAbsent(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
  await createIfAbsent(() =>
    apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: {
          name: APP,
          labels: { app: APP },
          ...(opts.annotations ? { annotations: opts.annotations } : {}),
        },
        spec: {
          replicas: opts.replicas ?? 2,
          ...(opts.revisionHistoryLimit !== undefined
            ? { revisionHistoryLimit: opts.revisionHistoryLimit }
            : {}),
          selector: { matchLabels: { app: APP } },
          template: {
            metadata: { labels: { app: APP } },
            spec: {
              nodeSelector: { ...KWOK_NODE_SELECTOR },
              tolerations: [{ ...KWOK_TOLERATION }],
              containers: [
                {
                  name: 'bench',
                  image: IMAGE_V1,
                  ports: [{ containerPort: 8080 }],
                  resources: { requests: { cpu: '250m', memory: '256Mi' } },
                },
              ],
            },
          },
        },
      },
    }),
  );
  await createIfAbsent(() =>
    core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: SERVICE, labels: { app: APP } },
        spec: { selector: { app: APP }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    }),
  );
  await createIfAbsent(() =>
    networking.createNamespacedIngress({
      namespace,
      body: {
        metadata: { name: INGRESS },
        spec: {
          rules: [
            {
              host: 'api.pno-physics-bench.com',
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: SERVICE, port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      },
    }),
  );
  if (opts.hpa) {
    const { min, max } = opts.hpa;
    await createIfAbsent(() =>
      autoscaling.createNamespacedHorizontalPodAutoscaler({
        namespace,
        body: {
          metadata: { name: HPA },
          spec: {
            scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: APP },
            minReplicas: min,
            maxReplicas: max,
            metrics: [
              {
                type: 'Resource',
                resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } },
              },
            ],
          },
        },
      }),
    );
  }
  if (opts.configMap ?? true) {
    await createIfAbsent(() =>
      core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: CONFIG_MAP }, data: { 'circuit-breaker': 'closed' } },
      }),
    );
  }
  return workloadRef(namespace);
}

export async function deploymentOf(cluster: KubeCluster, namespace = NAMESPACE): Promise<k8s.V1Deployment> {
  return await admin(cluster).apps.readNamespacedDeployment({ namespace, name: APP });
}

export async function hpaOf(
  cluster: KubeCluster,
  namespace = NAMESPACE,
): Promise<k8s.V2HorizontalPodAutoscaler> {
  return await admin(cluster).autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name: HPA });
}

/** The ConfigMap, or undefined when it does not exist. */
export async function configMapOf(
  cluster: KubeCluster,
  namespace = NAMESPACE,
  name = CONFIG_MAP,
): Promise<k8s.V1ConfigMap | undefined> {
  try {
    return await admin(cluster).core.readNamespacedConfigMap({ namespace, name });
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 404) return undefined;
    throw err;
  }
}

/** The app's pods (terminating ones included). */
export async function podsOf(cluster: KubeCluster, namespace = NAMESPACE): Promise<k8s.V1Pod[]> {
  return (await admin(cluster).core.listNamespacedPod({ namespace, labelSelector: SELECTOR })).items;
}

/** The Deployment's ReplicaSets by revision number (ascending). */
export async function replicaSetsOf(
  cluster: KubeCluster,
  namespace = NAMESPACE,
): Promise<{ name: string; revision: number; images: string[]; replicas: number }[]> {
  const list = await admin(cluster).apps.listNamespacedReplicaSet({ namespace, labelSelector: SELECTOR });
  return list.items
    .map((rs) => ({
      name: rs.metadata?.name ?? '',
      revision: Number(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0),
      images: (rs.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? ''),
      replicas: rs.spec?.replicas ?? 0,
    }))
    .sort((a, b) => a.revision - b.revision);
}

function isReady(pod: k8s.V1Pod): boolean {
  return (
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === 'Running' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** Waits until exactly `n` of the app's pods are Running and Ready (and none is terminating). */
export async function waitForReady(
  cluster: KubeCluster,
  n: number,
  opts: { namespace?: string; timeoutMs?: number } = {},
): Promise<k8s.V1Pod[]> {
  return await eventually(
    `${n} ready pods of ${APP} in ${opts.namespace ?? NAMESPACE}`,
    async () => {
      const pods = (await podsOf(cluster, opts.namespace)).filter((p) => !p.metadata?.deletionTimestamp);
      const ready = pods.filter(isReady);
      return ready.length === n &&
        pods.filter((p) => p.metadata?.ownerReferences?.[0]?.kind === 'ReplicaSet').length === n
        ? ready
        : undefined;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000 },
  );
}

/** Waits until the Deployment's rollout is complete (as `kubectl rollout status`), returning it. */
export async function waitForRollout(
  cluster: KubeCluster,
  opts: { namespace?: string; timeoutMs?: number } = {},
): Promise<k8s.V1Deployment> {
  return await eventually(
    `the rollout of ${APP} in ${opts.namespace ?? NAMESPACE}`,
    async () => {
      const d = await deploymentOf(cluster, opts.namespace);
      const desired = d.spec?.replicas ?? 1;
      const s = d.status;
      const done =
        (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
        s?.updatedReplicas === desired &&
        (s?.replicas ?? 0) === desired &&
        (s?.availableReplicas ?? 0) === desired;
      return done || desired === 0 ? d : undefined;
    },
    { timeoutMs: opts.timeoutMs ?? 90_000 },
  );
}

/**
 * Rolls out `image` (a new revision, with `changeCause` as `kubernetes.io/change-cause`) and, unless
 * `wait: false`, waits until the rollout is complete. Returns the new revision number.
 */
export async function rollOut(
  cluster: KubeCluster,
  image: string,
  opts: { changeCause?: string; namespace?: string; wait?: boolean } = {},
): Promise<number> {
  const namespace = opts.namespace ?? NAMESPACE;
  const before = await deploymentOf(cluster, namespace);
  const container = before.spec?.template?.spec?.containers?.[0]?.name ?? 'bench';
  await admin(cluster).apps.patchNamespacedDeployment(
    {
      namespace,
      name: APP,
      body: {
        ...(opts.changeCause
          ? { metadata: { annotations: { 'kubernetes.io/change-cause': opts.changeCause } } }
          : {}),
        spec: { template: { spec: { containers: [{ name: container, image }] } } },
      },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
  );
  // The controller makes the new ReplicaSet and stamps the Deployment with its revision.
  const revised = await eventually(
    `a ReplicaSet of ${APP} with ${image} in ${namespace}`,
    async () => {
      const d = await deploymentOf(cluster, namespace);
      const revision = Number(d.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
      const rs = (await replicaSetsOf(cluster, namespace)).find((r) => r.revision === revision);
      return (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
        rs?.images.includes(image)
        ? revision
        : undefined;
    },
    { timeoutMs: 30_000 },
  );
  if (opts.wait ?? true) await waitForRollout(cluster, { namespace });
  return revised;
}

/**
 * A pod with the app's label that stays Pending: its node selector matches no node. A controller owner
 * reference to the Service keeps the ReplicaSet from adopting it (and the garbage collector from removing
 * it). Returns its name.
 */
export async function addStuckPod(
  cluster: KubeCluster,
  opts: { namespace?: string; name?: string } = {},
): Promise<string> {
  const namespace = opts.namespace ?? NAMESPACE;
  const name = opts.name ?? `${APP}-stuck`;
  const { core } = admin(cluster);
  const service = await core.readNamespacedService({ namespace, name: SERVICE });
  await createIfAbsent(() =>
    core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name,
          labels: { app: APP },
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Service',
              name: SERVICE,
              uid: service.metadata?.uid ?? '',
              controller: true,
            },
          ],
        },
        spec: {
          nodeSelector: { 'pno.dev/no-such-node': 'true' },
          tolerations: [{ ...KWOK_TOLERATION }],
          containers: [{ name: 'bench', image: IMAGE_V1 }],
        },
      },
    }),
  );
  return name;
}

// ---------------------------------------------------------------------------------------------------------
// RBAC

export interface RoleRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The Role of deploy/k8s/rbac.yaml (or `file`). */
export function loadRole(file = RBAC_FILE): { name: string; rules: RoleRule[] } {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown);
  const role = docs.find(
    (d): d is { kind: string; metadata: { name: string }; rules: RoleRule[] } =>
      typeof d === 'object' && d !== null && (d as { kind?: unknown }).kind === 'Role',
  );
  if (!role) throw new Error(`${file} has no Role`);
  return { name: role.metadata.name, rules: role.rules };
}

/** Every (rule index, verb) of a Role's rules. */
export function ruleVerbs(rules: readonly RoleRule[]): { rule: number; verb: string }[] {
  return rules.flatMap((r, rule) => r.verbs.map((verb) => ({ rule, verb })));
}

/** The rules without one verb of one rule (the rule dropped when it has no verb left). */
export function withoutVerb(rules: readonly RoleRule[], drop: { rule: number; verb: string }): RoleRule[] {
  return rules
    .map((r, i) => (i === drop.rule ? { ...r, verbs: r.verbs.filter((v) => v !== drop.verb) } : r))
    .filter((r) => r.verbs.length > 0);
}

/** One request the `playbook` user may or may not make, as a SubjectAccessReview asks it. */
interface Access {
  group: string;
  resource: string;
  subresource?: string;
  verb: string;
  name?: string;
}

function accessesOf(rules: readonly RoleRule[]): Access[] {
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((group) =>
      r.resources.flatMap((full) => {
        const [resource = full, subresource] = full.split('/');
        return r.verbs.flatMap((verb) =>
          (r.resourceNames?.length ? r.resourceNames : [undefined]).map((name): Access => ({
            group,
            resource,
            verb,
            ...(subresource ? { subresource } : {}),
            ...(name ? { name } : {}),
          })),
        );
      }),
    ),
  );
}

async function allowed(cluster: KubeCluster, namespace: string, a: Access): Promise<boolean> {
  const review = await admin(cluster).authorization.createSubjectAccessReview({
    body: { spec: { user: 'playbook', resourceAttributes: { namespace, ...a } } },
  });
  return review.status?.allowed === true;
}

/** Waits until the apiserver's authorizer (an informer cache) allows `allow` and denies `deny` to `playbook`. */
async function waitForAccess(
  cluster: KubeCluster,
  namespace: string,
  allow: readonly Access[],
  deny: readonly Access[],
): Promise<void> {
  await eventually(
    `RBAC for playbook in ${namespace} to take effect`,
    async () => {
      const results = await Promise.all([
        ...allow.map((a) => allowed(cluster, namespace, a)),
        ...deny.map(async (a) => !(await allowed(cluster, namespace, a))),
      ]);
      return results.every(Boolean) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

/**
 * Creates (or replaces) the Role of `file` in `namespace`, optionally without one verb of one rule, and a
 * RoleBinding of it to the user `playbook`; waits until the authorizer applies both. Returns the rules.
 */
export async function applyRbac(
  cluster: KubeCluster,
  opts: { namespace?: string; file?: string; withoutRule?: { rule: number; verb: string } } = {},
): Promise<RoleRule[]> {
  const namespace = opts.namespace ?? NAMESPACE;
  const role = loadRole(opts.file);
  const rules = opts.withoutRule ? withoutVerb(role.rules, opts.withoutRule) : role.rules;
  const { rbac } = admin(cluster);
  const body: k8s.V1Role = { metadata: { name: role.name, namespace }, rules };
  try {
    await rbac.createNamespacedRole({ namespace, body });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
    await rbac.replaceNamespacedRole({ namespace, name: role.name, body });
  }
  await createIfAbsent(() =>
    rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: PLAYBOOK_BINDING, namespace },
        subjects: [{ kind: 'User', name: 'playbook', apiGroup: 'rbac.authorization.k8s.io' }],
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      },
    }),
  );
  const granted = accessesOf(rules);
  const removed = opts.withoutRule
    ? accessesOf([{ ...role.rules[opts.withoutRule.rule]!, verbs: [opts.withoutRule.verb] }])
    : [];
  await waitForAccess(cluster, namespace, granted, removed);
  return rules;
}

/** Deletes the `playbook` user's RoleBinding and waits until the authorizer denies what it granted. */
export async function removePlaybookBinding(cluster: KubeCluster, namespace = NAMESPACE): Promise<void> {
  try {
    await admin(cluster).rbac.deleteNamespacedRoleBinding({ namespace, name: PLAYBOOK_BINDING });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
  }
  await waitForAccess(cluster, namespace, [], accessesOf(loadRole().rules));
}
