/**
 * The playbooks' Kubernetes activities (src/activities/playbooks/kubernetes.ts) against a real control plane
 * (test/support/kube-cluster.ts), run as the `playbook` user with the Role of deploy/k8s/rbac.yaml: each
 * activity's effect is checked in the cluster with the admin's client, not only in its answer. The Role is
 * checked both ways: with it every activity works, and without any one of its verbs some activity is
 * refused (so it holds nothing more than the activities need). Each test works in its own namespace.
 */
import * as diagnostics from 'node:diagnostics_channel';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureKubernetes } from '../../scripts/lib/tools/kubernetes.ts';
import {
  KubernetesCluster,
  LAST_RUN_ANNOTATION_PREFIX,
  PLAYBOOK_RBAC_RULES,
} from '../../src/activities/playbooks/kubernetes.ts';
import type { KubernetesActivityName } from '../../src/activities/playbooks/kubernetes.ts';
import type { WorkloadRef } from '../../src/domain/cluster.ts';
import { eventually } from '../support/eventually.ts';
import type { KubeCluster } from '../support/kube-cluster.ts';
import { startKubeCluster } from '../support/kube-cluster.ts';
import {
  APP,
  CONFIG_MAP,
  HPA,
  IMAGE,
  IMAGE_V1,
  INGRESS,
  SELECTOR,
  SERVICE,
  addStuckPod,
  admin,
  applyRbac,
  configMapOf,
  createWorkload,
  deploymentOf,
  hpaOf,
  loadRole,
  playbookActivities,
  podsOf,
  removePlaybookBinding,
  replicaSetsOf,
  rollOut,
  ruleVerbs,
  waitForReady,
  waitForRollout,
} from '../support/kube-fixtures.ts';

const IMAGE_V2 = `${IMAGE}:1.1.0`;
const IMAGE_V3 = `${IMAGE}:1.2.0`;

let cluster: KubeCluster;
let playbook: KubernetesCluster;

/** Every host:port this process opened a TCP connection to, and every origin undici sent a request to. */
const sockets = new Set<string>();
const origins = new Set<string>();
/** The local stand-ins of the "unreachable / silent apiserver" test, as `127.0.0.1:<port>`. */
const standIns = new Set<string>();
const onSocket = (message: unknown) => {
  const { socket } = message as { socket: Socket };
  socket.once('connect', () => sockets.add(`${socket.remoteAddress}:${socket.remotePort}`));
};
const onRequest = (message: unknown) => {
  const { request } = message as { request: { origin: string } };
  origins.add(String(request.origin));
};

beforeAll(async () => {
  const tools = await ensureKubernetes();
  cluster = await startKubeCluster({ tools });
  playbook = playbookActivities(cluster);
  // From here on (the cluster's start-up probes its members' health ports).
  diagnostics.subscribe('net.client.socket', onSocket);
  diagnostics.subscribe('undici:request:create', onRequest);
}, 60 * 60_000);

afterAll(async () => {
  diagnostics.unsubscribe('net.client.socket', onSocket);
  diagnostics.unsubscribe('undici:request:create', onRequest);
  await cluster?.stop();
});

let namespaces = 0;
/** A namespace of its own for a test. */
function freshNamespace(prefix: string): string {
  return `${prefix}-${++namespaces}`;
}

/** What `promise` rejected with (fails the test when it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

function expectPlaybookFailure(err: unknown, type: string): ApplicationFailure {
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.type).toBe(type);
  expect(failure.nonRetryable).toBe(true);
  return failure;
}

describe('reads', () => {
  it('inspectWorkload, rolloutStatus and podReadiness see pods, service, ingress, hpa and deployment', async () => {
    const namespace = freshNamespace('production');
    const ref = await createWorkload(cluster, { namespace, replicas: 2, hpa: { min: 2, max: 6 } });
    await applyRbac(cluster, { namespace });
    await waitForReady(cluster, 2, { namespace });
    await waitForRollout(cluster, { namespace });
    const stuck = await addStuckPod(cluster, { namespace });

    const snapshot = await playbook.inspectWorkload(ref);
    expect(snapshot.pods).toHaveLength(3);
    const stuckPod = snapshot.pods.find((p) => p.name === stuck);
    expect(stuckPod).toMatchObject({ phase: 'Pending', ready: false, terminating: false, restarts: 0 });
    const running = snapshot.pods.filter((p) => p.name !== stuck);
    for (const pod of running) {
      expect(pod).toMatchObject({
        phase: 'Running',
        ready: true,
        terminating: false,
        cpuRequestMillicores: 250,
        memoryRequestMi: 256,
      });
      expect(Date.parse(pod.createdAt ?? '')).toBeGreaterThan(0);
    }
    const admins = await podsOf(cluster, namespace);
    expect(snapshot.pods.map((p) => p.name)).toEqual(admins.map((p) => p.metadata?.name).sort());
    expect(snapshot.deployment).toMatchObject({
      deployment: APP,
      desired: 2,
      updated: 2,
      ready: 2,
      available: 2,
      revision: 1,
      images: [IMAGE_V1],
      complete: true,
      failed: false,
    });
    expect(snapshot.service).toEqual({ name: SERVICE, type: 'ClusterIP', ports: ['80/TCP'] });
    expect(snapshot.ingress).toEqual({ name: INGRESS, hosts: ['api.pno-physics-bench.com'] });
    expect(snapshot.hpa).toMatchObject({ name: HPA, minReplicas: 2, maxReplicas: 6 });

    expect(await playbook.rolloutStatus({ namespace, deployment: APP })).toEqual(snapshot.deployment);
    expect(await playbook.podReadiness({ namespace, selector: SELECTOR })).toEqual({
      total: 3,
      ready: 2,
      notReady: [stuck],
    });

    // Absent optional objects are null; an absent Deployment too, but a required one is NotFound.
    const absent = await playbook.inspectWorkload({
      namespace,
      deployment: APP,
      selector: 'app=nothing',
      serviceName: SERVICE,
    });
    expect(absent).toMatchObject({ pods: [], ingress: null, hpa: null });
    const empty = freshNamespace('empty');
    await admin(cluster).core.createNamespace({ body: { metadata: { name: empty } } });
    await applyRbac(cluster, { namespace: empty });
    expect(await playbook.inspectWorkload({ ...ref, namespace: empty })).toEqual({
      pods: [],
      deployment: null,
      service: null,
      ingress: null,
      hpa: null,
    });
    const missing = expectPlaybookFailure(
      await rejectionOf(playbook.rolloutStatus({ namespace: empty, deployment: APP })),
      'NotFound',
    );
    expect(missing.message).toContain(APP);
  });

  it('rolloutHistory lists every revision with its images and change cause', async () => {
    const namespace = freshNamespace('history');
    await createWorkload(cluster, { namespace, replicas: 2 });
    await applyRbac(cluster, { namespace });
    await waitForRollout(cluster, { namespace });
    expect(await rollOut(cluster, IMAGE_V2, { namespace, changeCause: 'deploy 1.1.0' })).toBe(2);
    expect(await rollOut(cluster, IMAGE_V3, { namespace, changeCause: 'deploy 1.2.0' })).toBe(3);

    const history = await playbook.rolloutHistory({ namespace, deployment: APP });
    expect(history.map((r) => [r.revision, r.images, r.changeCause, r.replicas])).toEqual([
      [1, [IMAGE_V1], undefined, 0],
      [2, [IMAGE_V2], 'deploy 1.1.0', 0],
      [3, [IMAGE_V3], 'deploy 1.2.0', 2],
    ]);
    const replicaSets = await replicaSetsOf(cluster, namespace);
    expect(history.map((r) => r.replicaSet)).toEqual(replicaSets.map((r) => r.name));
    for (const r of history) expect(Date.parse(r.createdAt)).toBeGreaterThan(0);
  });
});

describe('changes', () => {
  it('deletePods deletes only the named pods, and reports them gone the second time', async () => {
    const namespace = freshNamespace('delete');
    await createWorkload(cluster, { namespace, replicas: 2 });
    await applyRbac(cluster, { namespace });
    const running = (await waitForReady(cluster, 2, { namespace })).map((p) => p.metadata?.name).sort();
    const stuck = await addStuckPod(cluster, { namespace });

    expect(await playbook.deletePods({ namespace, names: [stuck] })).toEqual({
      deleted: [stuck],
      alreadyGone: [],
    });
    await eventually('the stuck pod to be gone', async () => {
      const names = (await podsOf(cluster, namespace)).map((p) => p.metadata?.name);
      return names.includes(stuck) ? undefined : names;
    });
    const after = await podsOf(cluster, namespace);
    expect(after.map((p) => p.metadata?.name).sort()).toEqual(running);
    expect(after.every((p) => !p.metadata?.deletionTimestamp)).toBe(true);

    expect(await playbook.deletePods({ namespace, names: [stuck] })).toEqual({
      deleted: [],
      alreadyGone: [stuck],
    });
  });

  it('scaleTo scales the Deployment through its scale subresource, once', async () => {
    const namespace = freshNamespace('scale');
    await createWorkload(cluster, { namespace, replicas: 2 });
    await applyRbac(cluster, { namespace });
    await waitForReady(cluster, 2, { namespace });

    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 4 })).toEqual({
      object: `deployment/${APP}`,
      before: 'replicas 2',
      after: 'replicas 4',
      changed: true,
      via: 'scale',
      replicasBefore: 2,
      replicasAfter: 4,
    });
    expect((await deploymentOf(cluster, namespace)).spec?.replicas).toBe(4);
    await waitForReady(cluster, 4, { namespace });
    const generation = (await deploymentOf(cluster, namespace)).metadata?.generation;

    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 4 })).toMatchObject({
      changed: false,
      before: 'replicas 4',
      after: 'replicas 4',
      via: 'scale',
    });
    expect((await deploymentOf(cluster, namespace)).metadata?.generation).toBe(generation);

    // A named HPA that does not exist: the scale subresource.
    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 3, hpa: HPA })).toMatchObject({
      via: 'scale',
      changed: true,
      replicasAfter: 3,
    });
    await waitForReady(cluster, 3, { namespace });

    expectPlaybookFailure(
      await rejectionOf(playbook.scaleTo({ namespace, deployment: APP, replicas: -1 })),
      'Invalid',
    );
  });

  it('scaleTo raises the HPA minReplicas (and maxReplicas) and brings the Deployment up to it', async () => {
    const namespace = freshNamespace('hpa');
    await createWorkload(cluster, { namespace, replicas: 2, hpa: { min: 2, max: 4 } });
    await applyRbac(cluster, { namespace });
    await waitForReady(cluster, 2, { namespace });

    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 5, hpa: HPA })).toEqual({
      object: `hpa/${HPA}`,
      before: 'minReplicas 2, maxReplicas 4',
      after: 'minReplicas 5, maxReplicas 5',
      changed: true,
      via: 'hpa',
      replicasBefore: 2,
      replicasAfter: 5,
    });
    const hpa = await hpaOf(cluster, namespace);
    expect([hpa.spec?.minReplicas, hpa.spec?.maxReplicas]).toEqual([5, 5]);
    expect((await deploymentOf(cluster, namespace)).spec?.replicas).toBe(5);
    await waitForReady(cluster, 5, { namespace });

    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 5, hpa: HPA })).toMatchObject({
      changed: false,
      via: 'hpa',
      before: 'minReplicas 5',
      after: 'minReplicas 5',
      replicasAfter: 5,
    });
    // Below the HPA's minimum: nothing is lowered.
    expect(await playbook.scaleTo({ namespace, deployment: APP, replicas: 3, hpa: HPA })).toMatchObject({
      changed: false,
      replicasAfter: 5,
    });
    expect((await hpaOf(cluster, namespace)).spec?.minReplicas).toBe(5);
  });

  it('rollbackTo restores a revision as kubectl rollout undo does, and only once', async () => {
    const namespace = freshNamespace('rollback');
    await createWorkload(cluster, {
      namespace,
      replicas: 2,
      annotations: { 'kubernetes.io/change-cause': 'initial' },
    });
    await applyRbac(cluster, { namespace });
    await waitForRollout(cluster, { namespace });
    await rollOut(cluster, IMAGE_V2, { namespace, changeCause: 'deploy 1.1.0' });
    await rollOut(cluster, IMAGE_V3, { namespace, changeCause: 'deploy 1.2.0' });
    // A record written before the rollback (the ReplicaSets do not have it) must survive it.
    const claim = await playbook.claimPlaybookRun({
      namespace,
      deployment: APP,
      playbook: 'highErrorRate',
      runId: 'run-1',
      at: new Date().toISOString(),
      cooldownMs: 60_000,
    });
    expect(claim).toEqual({ granted: true });

    const result = await playbook.rollbackTo({ namespace, deployment: APP, revision: 2 });
    expect(result).toMatchObject({
      object: `deployment/${APP}`,
      changed: true,
      fromRevision: 3,
      toRevision: 2,
      imagesBefore: [IMAGE_V3],
      imagesAfter: [IMAGE_V2],
    });
    let deployment = await deploymentOf(cluster, namespace);
    expect(deployment.spec?.template?.spec?.containers?.map((c) => c.image)).toEqual([IMAGE_V2]);
    expect(deployment.spec?.template?.metadata?.labels).toEqual({ app: APP });
    expect(deployment.metadata?.annotations?.['kubernetes.io/change-cause']).toBe('deploy 1.1.0');
    expect(deployment.metadata?.annotations?.[`${LAST_RUN_ANNOTATION_PREFIX}highErrorRate`]).toContain(
      'run-1',
    );
    deployment = await waitForRollout(cluster, { namespace });
    await waitForReady(cluster, 2, { namespace });
    const status = await playbook.rolloutStatus({ namespace, deployment: APP });
    expect(status).toMatchObject({ complete: true, images: [IMAGE_V2], revision: 4 });

    // The old ReplicaSet is revision 4 now; asking again for revision 2 changes nothing.
    const revisions = (await replicaSetsOf(cluster, namespace)).map((r) => [r.revision, r.images[0]]);
    expect(revisions).toEqual([
      [1, IMAGE_V1],
      [3, IMAGE_V3],
      [4, IMAGE_V2],
    ]);
    const again = await playbook.rollbackTo({ namespace, deployment: APP, revision: 2 });
    expect(again).toMatchObject({
      changed: false,
      fromRevision: 4,
      imagesBefore: [IMAGE_V2],
      imagesAfter: [IMAGE_V2],
    });
    expect((await deploymentOf(cluster, namespace)).metadata?.generation).toBe(
      deployment.metadata?.generation,
    );
    expect((await replicaSetsOf(cluster, namespace)).map((r) => [r.revision, r.images[0]])).toEqual(
      revisions,
    );
    expect((await playbook.rolloutHistory({ namespace, deployment: APP })).map((r) => r.revision)).toEqual([
      1, 3, 4,
    ]);

    const unknown = expectPlaybookFailure(
      await rejectionOf(playbook.rollbackTo({ namespace, deployment: APP, revision: 9 })),
      'NotFound',
    );
    expect(unknown.message).toContain('revision 9');
  });

  it('setCircuitBreaker sets a ConfigMap key (creating the ConfigMap) or a Deployment annotation, once', async () => {
    const namespace = freshNamespace('breaker');
    await createWorkload(cluster, { namespace, replicas: 1 });
    await applyRbac(cluster, { namespace });
    const breaker = { configMap: CONFIG_MAP, key: 'circuit-breaker', value: 'open' };

    expect(await playbook.setCircuitBreaker({ namespace, deployment: APP, breaker })).toEqual({
      object: `configmap/${CONFIG_MAP}`,
      before: 'circuit-breaker=closed',
      after: 'circuit-breaker=open',
      changed: true,
    });
    expect((await configMapOf(cluster, namespace))?.data).toEqual({ 'circuit-breaker': 'open' });
    expect(await playbook.setCircuitBreaker({ namespace, deployment: APP, breaker })).toMatchObject({
      changed: false,
    });

    // Another key of the same ConfigMap is added beside the first.
    await playbook.setCircuitBreaker({
      namespace,
      deployment: APP,
      breaker: { ...breaker, key: 'shed-load' },
    });
    expect((await configMapOf(cluster, namespace))?.data).toEqual({
      'circuit-breaker': 'open',
      'shed-load': 'open',
    });

    // No ConfigMap yet: it is created.
    const bare = freshNamespace('breaker');
    await createWorkload(cluster, { namespace: bare, replicas: 1, configMap: false });
    await applyRbac(cluster, { namespace: bare });
    expect(await configMapOf(cluster, bare)).toBeUndefined();
    expect(await playbook.setCircuitBreaker({ namespace: bare, deployment: APP, breaker })).toEqual({
      object: `configmap/${CONFIG_MAP}`,
      before: 'circuit-breaker unset',
      after: 'circuit-breaker=open',
      changed: true,
    });
    expect((await configMapOf(cluster, bare))?.data).toEqual({ 'circuit-breaker': 'open' });
    expect(await playbook.setCircuitBreaker({ namespace: bare, deployment: APP, breaker })).toMatchObject({
      changed: false,
    });

    // The annotation: on the Deployment's metadata, so no rollout.
    const before = await waitForRollout(cluster, { namespace });
    const annotation = { annotation: 'pno.dev/circuit-breaker', value: 'open' };
    expect(await playbook.setCircuitBreaker({ namespace, deployment: APP, breaker: annotation })).toEqual({
      object: `deployment/${APP}`,
      before: 'pno.dev/circuit-breaker unset',
      after: 'pno.dev/circuit-breaker=open',
      changed: true,
    });
    const after = await deploymentOf(cluster, namespace);
    expect(after.metadata?.annotations?.['pno.dev/circuit-breaker']).toBe('open');
    // (A Deployment's generation counts annotation changes too; its template and revision are what matter.)
    expect(after.spec?.template).toEqual(before.spec?.template);
    expect(after.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    expect(after.spec?.template?.metadata?.annotations).toBeUndefined();
    expect(
      await playbook.setCircuitBreaker({ namespace, deployment: APP, breaker: annotation }),
    ).toMatchObject({
      changed: false,
    });
    expect((await replicaSetsOf(cluster, namespace)).length).toBe(1);
  });

  it('claimPlaybookRun grants one run per cooldown, and the same run again', async () => {
    const namespace = freshNamespace('claim');
    await createWorkload(cluster, { namespace, replicas: 1 });
    await applyRbac(cluster, { namespace });
    const key = `${LAST_RUN_ANNOTATION_PREFIX}serviceOutage`;
    const base = { namespace, deployment: APP, playbook: 'serviceOutage', cooldownMs: 10 * 60_000 };
    const t0 = Date.parse('2026-03-02T10:00:00.000Z');
    const at = (minutes: number) => new Date(t0 + minutes * 60_000).toISOString();
    const record = async () => (await deploymentOf(cluster, namespace)).metadata?.annotations?.[key];

    expect(await playbook.claimPlaybookRun({ ...base, runId: 'run-a', at: at(0) })).toEqual({
      granted: true,
    });
    expect(JSON.parse((await record()) ?? '')).toEqual({ runId: 'run-a', at: at(0) });
    const { spec } = await deploymentOf(cluster, namespace);

    // A retry (or a replay) of the same run.
    expect(await playbook.claimPlaybookRun({ ...base, runId: 'run-a', at: at(1) })).toEqual({
      granted: true,
    });
    // Another run inside the cooldown.
    expect(await playbook.claimPlaybookRun({ ...base, runId: 'run-b', at: at(5) })).toEqual({
      granted: false,
      previous: { runId: 'run-a', at: at(0) },
    });
    expect(JSON.parse((await record()) ?? '')).toEqual({ runId: 'run-a', at: at(0) });
    // After the cooldown.
    expect(await playbook.claimPlaybookRun({ ...base, runId: 'run-c', at: at(11) })).toEqual({
      granted: true,
      previous: { runId: 'run-a', at: at(0) },
    });
    expect(JSON.parse((await record()) ?? '')).toEqual({ runId: 'run-c', at: at(11) });
    // Metadata only: the template is untouched, so no rollout.
    expect((await deploymentOf(cluster, namespace)).spec?.template).toEqual(spec?.template);
    expect((await replicaSetsOf(cluster, namespace)).map((r) => r.revision)).toEqual([1]);

    // Claims of several runs at once: exactly one is granted (the write carries the read resourceVersion).
    const claims = await Promise.all(
      ['x', 'y', 'z', 'w'].map((runId) => playbook.claimPlaybookRun({ ...base, runId, at: at(30) })),
    );
    expect(claims.filter((c) => c.granted)).toHaveLength(1);
  });
});

describe('errors', () => {
  it('refuses with a non-retryable Forbidden failure without the RoleBinding or without a verb', async () => {
    const namespace = freshNamespace('forbidden');
    const ref = await createWorkload(cluster, { namespace, replicas: 1 });

    const denied = expectPlaybookFailure(await rejectionOf(playbook.inspectWorkload(ref)), 'Forbidden');
    expect(denied.message).toMatch(
      /^forbidden: playbook cannot (list pods|get \S+ "[^"]+") in forbidden-\d+: /,
    );
    expect(denied.message).toContain('User "playbook" cannot');
    expect(denied.message).not.toContain(cluster.playbookToken);

    await applyRbac(cluster, { namespace });
    await playbook.inspectWorkload(ref);
    await removePlaybookBinding(cluster, namespace);
    expectPlaybookFailure(
      await rejectionOf(playbook.rolloutStatus({ namespace, deployment: APP })),
      'Forbidden',
    );

    const rules = loadRole().rules;
    const scalePatch = rules.findIndex((r) => r.resources.includes('deployments/scale'));
    await applyRbac(cluster, { namespace, withoutRule: { rule: scalePatch, verb: 'patch' } });
    await playbook.rolloutStatus({ namespace, deployment: APP });
    const refused = expectPlaybookFailure(
      await rejectionOf(playbook.scaleTo({ namespace, deployment: APP, replicas: 2 })),
      'Forbidden',
    );
    expect(refused.message).toContain(
      `forbidden: playbook cannot patch deployments/scale "${APP}" in ${namespace}`,
    );
    expect(refused.message).toContain('cannot patch resource "deployments/scale" in API group "apps"');
    expect((await deploymentOf(cluster, namespace)).spec?.replicas).toBe(1);
  });

  it('fails retryably, without credentials in the message, when the apiserver is unreachable or silent', async () => {
    const token = 'sEcReT-token-0123456789';
    const kubeconfigFor = (server: string) => {
      const config = new k8s.KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'c', server, skipTLSVerify: true }],
        users: [{ name: 'u', token }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      return config;
    };

    // Nothing listens: connection refused.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    standIns.add(`127.0.0.1:${closedPort}`);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await rejectionOf(
      new KubernetesCluster(kubeconfigFor(`https://127.0.0.1:${closedPort}`)).rolloutStatus({
        namespace: 'production',
        deployment: APP,
      }),
    );
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(ApplicationFailure);
    expect((refused as Error).message).toContain(`get deployments "${APP}" in namespace production`);
    expect((refused as Error).message).not.toContain(token);

    // Accepts the connection and never answers: the request's bound.
    const held: Socket[] = [];
    const silent: Server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as { port: number }).port;
    standIns.add(`127.0.0.1:${silentPort}`);
    try {
      const started = Date.now();
      const timedOut = await rejectionOf(
        new KubernetesCluster(kubeconfigFor(`https://127.0.0.1:${silentPort}`), {
          requestTimeoutMs: 500,
        }).scaleTo({
          namespace: 'production',
          deployment: APP,
          replicas: 3,
        }),
      );
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(timedOut).not.toBeInstanceOf(ApplicationFailure);
      expect((timedOut as Error).message).toContain('no answer from the apiserver within 500 ms');
      expect((timedOut as Error).message).not.toContain(token);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('least privilege: the Role of deploy/k8s/rbac.yaml', () => {
  /**
   * Every activity, on every path (scale with and without an HPA, the ConfigMap created then patched);
   * `progress.step` is the activity running when one fails.
   */
  async function runEverything(ref: WorkloadRef, stuck: string, progress: { step?: KubernetesActivityName }) {
    const { namespace } = ref;
    const step = async <T>(name: KubernetesActivityName, call: () => Promise<T>): Promise<T> => {
      progress.step = name;
      return await call();
    };
    const deployment = APP;
    await step('inspectWorkload', () => playbook.inspectWorkload(ref));
    await step('rolloutStatus', () => playbook.rolloutStatus({ namespace, deployment }));
    await step('rolloutHistory', () => playbook.rolloutHistory({ namespace, deployment }));
    await step('podReadiness', () => playbook.podReadiness({ namespace, selector: SELECTOR }));
    expect(await step('deletePods', () => playbook.deletePods({ namespace, names: [stuck] }))).toEqual({
      deleted: [stuck],
      alreadyGone: [],
    });
    expect(
      await step('scaleTo', () => playbook.scaleTo({ namespace, deployment, replicas: 2 })),
    ).toMatchObject({
      changed: true,
      via: 'scale',
    });
    expect(
      await step('scaleTo', () => playbook.scaleTo({ namespace, deployment, replicas: 3, hpa: HPA })),
    ).toMatchObject({ changed: true, via: 'hpa' });
    expect(
      await step('rollbackTo', () => playbook.rollbackTo({ namespace, deployment, revision: 1 })),
    ).toMatchObject({ changed: true });
    const breaker = { configMap: CONFIG_MAP, key: 'circuit-breaker', value: 'open' };
    expect(
      await step('setCircuitBreaker', () => playbook.setCircuitBreaker({ namespace, deployment, breaker })),
    ).toMatchObject({ before: 'circuit-breaker unset', changed: true });
    expect(
      await step('setCircuitBreaker', () =>
        playbook.setCircuitBreaker({ namespace, deployment, breaker: { ...breaker, value: 'closed' } }),
      ),
    ).toMatchObject({ changed: true });
    expect(
      await step('setCircuitBreaker', () =>
        playbook.setCircuitBreaker({
          namespace,
          deployment,
          breaker: { annotation: 'pno.dev/circuit-breaker', value: 'open' },
        }),
      ),
    ).toMatchObject({ changed: true });
    expect(
      await step('claimPlaybookRun', () =>
        playbook.claimPlaybookRun({
          namespace,
          deployment,
          playbook: 'highErrorRate',
          runId: 'run-1',
          at: new Date().toISOString(),
          cooldownMs: 60_000,
        }),
      ),
    ).toEqual({ granted: true });
  }

  /** A workload with two revisions, an HPA, a stuck pod and no ConfigMap, and the Role (maybe less a verb). */
  async function prepare(namespace: string, withoutRule?: { rule: number; verb: string }) {
    const ref = await createWorkload(cluster, {
      namespace,
      replicas: 1,
      hpa: { min: 1, max: 10 },
      configMap: false,
    });
    await rollOut(cluster, IMAGE_V2, { namespace, wait: false });
    const stuck = await addStuckPod(cluster, { namespace });
    await applyRbac(cluster, { namespace, ...(withoutRule ? { withoutRule } : {}) });
    return { ref, stuck };
  }

  it('with the whole Role, every activity works; without any one of its verbs, one of them is refused', async () => {
    const rules = loadRole().rules;
    const cases: ({ rule: number; verb: string } | undefined)[] = [undefined, ...ruleVerbs(rules)];
    const outcomes = new Map<string, string>();
    const run = async (drop: { rule: number; verb: string } | undefined, i: number) => {
      const namespace = `least-${i}`;
      const { ref, stuck } = await prepare(namespace, drop);
      const progress: { step?: KubernetesActivityName } = {};
      const err = await runEverything(ref, stuck, progress).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!drop) {
        expect(err).toBeUndefined();
        outcomes.set('the whole Role', 'every activity passed');
      } else {
        const rule = rules[drop.rule]!;
        const resource = rule.resources[0]!;
        const failure = expectPlaybookFailure(err, 'Forbidden');
        expect(failure.message).toContain(`cannot ${drop.verb} resource "${resource}"`);
        // The activity refused declares that call.
        expect(PLAYBOOK_RBAC_RULES[progress.step!]).toContainEqual(
          expect.objectContaining({ apiGroup: rule.apiGroups[0], resource, verb: drop.verb }),
        );
        const names = rule.resourceNames ? ` (${rule.resourceNames.join(',')})` : '';
        outcomes.set(`without ${drop.verb} ${resource}${names}`, `${progress.step} refused`);
      }
      await admin(cluster).core.deleteNamespace({ name: namespace });
    };
    // A few at a time: each case has its own namespace, Role and RoleBinding.
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < cases.length) {
          const i = next++;
          await run(cases[i], i);
        }
      }),
    );
    expect(outcomes.size).toBe(cases.length);
    console.log([...outcomes].map(([k, v]) => `${k}: ${v}`).join('\n'));
  }, 300_000);
});

describe('traffic', () => {
  it('went to the apiserver on 127.0.0.1 only, never to a pod IP', async () => {
    const apiserver = new URL(cluster.server).host;
    const allowed = new Set([apiserver, ...standIns]);
    expect(sockets.size).toBeGreaterThan(0);
    expect([...sockets].filter((address) => !allowed.has(address))).toEqual([]);
    expect(
      [...origins].filter((origin) => !allowed.has(new URL(origin).host) || !origin.startsWith('https:')),
    ).toEqual([]);
    expect(origins.has(`https://${apiserver}`)).toBe(true);
    const podIps = (await admin(cluster).core.listPodForAllNamespaces()).items.flatMap(
      (p) => p.status?.podIP ?? [],
    );
    expect(podIps.filter((ip) => [...sockets].some((address) => address.startsWith(`${ip}:`)))).toEqual([]);
  });
});
