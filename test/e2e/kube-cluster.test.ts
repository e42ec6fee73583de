/**
 * The real Kubernetes control plane of test/support/kube-cluster.ts: a Deployment's pods go Running and
 * Ready on kwok's fake node, scaling through the scale subresource adds one, and RBAC refuses the
 * `playbook` user until something grants it rights. On a fresh machine `beforeAll` builds the control plane
 * first (15 to 40 min on 2 cores, once; cached in INCIDENT_TOOLS_DIR).
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureKubernetes } from '../../scripts/lib/tools/kubernetes.ts';
import { eventually } from '../support/eventually.ts';
import type { KubeCluster } from '../support/kube-cluster.ts';
import {
  KWOK_NODE_NAME,
  KWOK_NODE_SELECTOR,
  KWOK_TOLERATION,
  startKubeCluster,
} from '../support/kube-cluster.ts';

const NAMESPACE = 'production';
const APP = 'pno-physics-bench';

let cluster: KubeCluster;

beforeAll(async () => {
  const tools = await ensureKubernetes();
  cluster = await startKubeCluster({ tools });
}, 60 * 60_000);

afterAll(async () => {
  await cluster?.stop();
});

function clientsFor(token: string): { core: k8s.CoreV1Api; apps: k8s.AppsV1Api } {
  const config = new k8s.KubeConfig();
  config.loadFromFile(cluster.kubeconfigFor(token));
  return { core: config.makeApiClient(k8s.CoreV1Api), apps: config.makeApiClient(k8s.AppsV1Api) };
}

/** The app's pods that are Running and Ready, by name. */
async function readyPods(core: k8s.CoreV1Api): Promise<k8s.V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app=${APP}` });
  return pods.items.filter(
    (pod) =>
      pod.metadata?.deletionTimestamp === undefined &&
      pod.status?.phase === 'Running' &&
      (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  );
}

describe('a real Kubernetes control plane with kwok nodes', () => {
  it('runs, scales and authorizes a Deployment', async () => {
    const { core, apps } = clientsFor(cluster.adminToken);

    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: APP, labels: { app: APP } },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: APP } },
          template: {
            metadata: { labels: { app: APP } },
            spec: {
              nodeSelector: { ...KWOK_NODE_SELECTOR },
              tolerations: [{ ...KWOK_TOLERATION }],
              containers: [{ name: 'bench', image: 'registry.example/pno-physics-bench:1.0.0' }],
            },
          },
        },
      },
    });

    const two = await eventually(
      'two ready pods',
      async () => {
        const pods = await readyPods(core);
        return pods.length === 2 ? pods : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(two.map((pod) => pod.spec?.nodeName)).toEqual([KWOK_NODE_NAME, KWOK_NODE_NAME]);

    const scale = await apps.readNamespacedDeploymentScale({ name: APP, namespace: NAMESPACE });
    expect(scale.spec?.replicas).toBe(2);
    await apps.replaceNamespacedDeploymentScale({
      name: APP,
      namespace: NAMESPACE,
      body: { ...scale, spec: { replicas: 3 } },
    });
    await eventually(
      'three ready pods',
      async () => ((await readyPods(core)).length === 3 ? true : undefined),
      { timeoutMs: 60_000 },
    );
    await eventually(
      'the deployment to report three ready replicas',
      async () => {
        const deployment = await apps.readNamespacedDeployment({ name: APP, namespace: NAMESPACE });
        return deployment.status?.readyReplicas === 3 ? deployment : undefined;
      },
      { timeoutMs: 30_000 },
    );

    const playbook = clientsFor(cluster.playbookToken);
    const refused = await playbook.core.listNamespacedPod({ namespace: NAMESPACE }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(k8s.ApiException);
    expect((refused as k8s.ApiException<unknown>).code).toBe(403);
  }, 180_000);
});
