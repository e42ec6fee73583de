/**
 * A real Kubernetes control plane for e2e tests, on 127.0.0.1 only: etcd, kube-apiserver (RBAC, static
 * bearer tokens, a self-signed serving certificate), kube-controller-manager (deployments, replica sets,
 * service accounts, node lifecycle, garbage collection, HPA, namespaces), kube-scheduler, and kwok playing
 * the kubelet of one fake node, `kwok-node-0`, so pods go Running and Ready without any container runtime.
 * Pod IPs are made up: never send traffic to them.
 *
 * The programs come from `ensureKubernetes()` (built on first use, see scripts/lib/tools/kubernetes.ts).
 * Each cluster has its own temporary directory and free ports; `stop()` ends every process and removes the
 * directory. Output is dropped unless `TEST_KUBE_LOG` is set; a failed start says which process failed,
 * with the tail of its output.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../scripts/lib/ports.ts';
import type { ManagedProcess } from '../../scripts/lib/process.ts';
import { describeExit, startProcess } from '../../scripts/lib/process.ts';
import type { KubernetesTools } from '../../scripts/lib/tools/kubernetes.ts';
import { ensureKubernetes } from '../../scripts/lib/tools/kubernetes.ts';

/** The one fake node; pods reach it with {@link KWOK_NODE_SELECTOR} and {@link KWOK_TOLERATION}. */
export const KWOK_NODE_NAME = 'kwok-node-0';
/** A node selector that picks kwok's fake node. */
export const KWOK_NODE_SELECTOR = { type: 'kwok' } as const;
/** Tolerates the taint that keeps every other pod off kwok's fake node. */
export const KWOK_TOLERATION = {
  key: 'kwok.x-k8s.io/node',
  operator: 'Exists',
  effect: 'NoSchedule',
} as const;

/** Controllers kube-controller-manager runs: what makes Deployments, scaling and clean-up work. */
const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'node-lifecycle-controller',
  'garbage-collector-controller',
  'horizontal-pod-autoscaler-controller',
  'namespace-controller',
];

/** A running cluster; see {@link startKubeCluster}. */
export interface KubeCluster {
  /** `https://127.0.0.1:<port>` (self-signed: skip TLS verification). */
  server: string;
  /** Bearer token of `admin`, in group `system:masters`. */
  adminToken: string;
  /** Bearer token of `playbook`, in no group: it may do only what a test grants it with RBAC. */
  playbookToken: string;
  /** Path of a kubeconfig file that talks to {@link server} with `token` (TLS not verified). */
  kubeconfigFor(token: string): string;
  /** Stops every process (SIGTERM, SIGKILL after 5 s) and removes the cluster's directory. Idempotent. */
  stop(): Promise<void>;
}

export interface KubeClusterOptions {
  /** Default: `ensureKubernetes()`. */
  tools?: KubernetesTools;
  /** Bound on each start-up step (etcd, apiserver, the rest). Default 90 s. */
  stepTimeoutMs?: number;
}

/** One process of the cluster, named for error messages. */
interface Member {
  name: string;
  proc: ManagedProcess;
}

/** Starts a cluster and waits until it can take a Deployment; see the module comment. */
export async function startKubeCluster(opts: KubeClusterOptions = {}): Promise<KubeCluster> {
  const tools = opts.tools ?? (await ensureKubernetes());
  const stepTimeoutMs = opts.stepTimeoutMs ?? 90_000;
  const dir = await mkdtemp(path.join(tmpdir(), 'pno-kube-'));
  const members: Member[] = [];
  const show = process.env['TEST_KUBE_LOG'] !== undefined;

  const start = (name: string, bin: string, args: string[]): Member => {
    const proc = startProcess(bin, args, {
      cwd: dir,
      stopGraceMs: 5_000,
      tailLines: 60,
      onLine: (line) => {
        if (show) process.stderr.write(`[${name}] ${line}\n`);
      },
    });
    const member = { name, proc };
    members.push(member);
    return member;
  };

  let stopped: Promise<void> | undefined;
  const stop = () => {
    // Reverse order: clients first, etcd last, so nothing logs a storm of connection errors.
    stopped ??= (async () => {
      for (const m of [...members].reverse()) await m.proc.stop();
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    const adminToken = randomBytes(24).toString('hex');
    const playbookToken = randomBytes(24).toString('hex');

    // etcd
    const [etcdClientPort, etcdPeerPort] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = start('etcd', tools.etcd, [
      '--name=pno',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=pno=${peerUrl}`,
      // A throw-away test store: durability is not worth the fsync latency.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitUntil(etcd, 'etcd /health', stepTimeoutMs, async () => {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    // kube-apiserver
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    const saPublicKey = path.join(dir, 'sa.pub');
    const saPrivateKey = path.join(dir, 'sa.key');
    const tokenFile = path.join(dir, 'tokens.csv');
    await writeFile(saPublicKey, publicKey);
    await writeFile(saPrivateKey, privateKey, { mode: 0o600 });
    // token,user,uid,"group,group"
    await writeFile(
      tokenFile,
      `${adminToken},admin,admin,"system:masters"\n${playbookToken},playbook,playbook\n`,
      { mode: 0o600 },
    );
    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = start('kube-apiserver', tools.kubeApiserver, [
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--etcd-servers=${etcdUrl}`,
      // No kubernetes Service endpoints: nothing in this cluster can reach 127.0.0.1 through them anyway.
      '--endpoint-reconciler-type=none',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPublicKey}`,
      `--service-account-signing-key-file=${saPrivateKey}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
    ]);
    await waitUntil(apiserver, 'kube-apiserver /readyz', stepTimeoutMs, async () => {
      const res = await kubeRequest(server, adminToken, 'GET', '/readyz');
      return res.status === 200 && res.body.trim() === 'ok';
    });

    // Clients of the apiserver, all with the admin's credentials.
    const kubeconfigs = new Map<string, string>();
    const kubeconfigFor = (token: string): string => {
      let file = kubeconfigs.get(token);
      if (!file) {
        file = path.join(dir, `kubeconfig-${kubeconfigs.size}.yaml`);
        writeFileSync(file, kubeconfig(server, token), { mode: 0o600 });
        kubeconfigs.set(token, file);
      }
      return file;
    };
    const adminKubeconfig = kubeconfigFor(adminToken);

    const kcmPort = await freePort();
    const controllerManager = start('kube-controller-manager', tools.kubeControllerManager, [
      `--kubeconfig=${adminKubeconfig}`,
      `--controllers=${CONTROLLERS.join(',')}`,
      `--service-account-private-key-file=${saPrivateKey}`,
      '--use-service-account-credentials=false',
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
    ]);
    const schedulerPort = await freePort();
    const scheduler = start('kube-scheduler', tools.kubeScheduler, [
      `--kubeconfig=${adminKubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
    ]);
    const stageFiles = (await readdir(tools.stagesDir))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(tools.stagesDir, f));
    const kwokConfig = path.join(dir, 'kwok.yaml');
    await writeFile(
      kwokConfig,
      (await Promise.all(stageFiles.map((f) => readFile(f, 'utf8')))).join('\n---\n'),
    );
    const kwok = start('kwok', tools.kwok, [
      `--kubeconfig=${adminKubeconfig}`,
      `--config=${kwokConfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=127.0.0.1',
      // The node's liveness for the node lifecycle controller: a lease kwok renews, as a kubelet would.
      '--node-lease-duration-seconds=40',
    ]);

    const created = await kubeRequest(server, adminToken, 'POST', '/api/v1/nodes', fakeNode());
    if (created.status !== 201)
      throw new Error(`creating node ${KWOK_NODE_NAME}: HTTP ${created.status} ${created.body}`);

    await Promise.all([
      waitUntil(controllerManager, 'the default service account', stepTimeoutMs, async () => {
        const res = await kubeRequest(
          server,
          adminToken,
          'GET',
          '/api/v1/namespaces/default/serviceaccounts/default',
        );
        return res.status === 200;
      }),
      waitUntil(kwok, `node ${KWOK_NODE_NAME} Ready`, stepTimeoutMs, async () => {
        const res = await kubeRequest(server, adminToken, 'GET', `/api/v1/nodes/${KWOK_NODE_NAME}`);
        if (res.status !== 200) return false;
        const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } };
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      }),
      waitUntil(scheduler, 'kube-scheduler /healthz', stepTimeoutMs, async () => {
        const res = await kubeRequest(`https://127.0.0.1:${schedulerPort}`, undefined, 'GET', '/healthz');
        return res.status === 200;
      }),
      waitUntil(controllerManager, 'kube-controller-manager /healthz', stepTimeoutMs, async () => {
        const res = await kubeRequest(`https://127.0.0.1:${kcmPort}`, undefined, 'GET', '/healthz');
        return res.status === 200;
      }),
    ]);

    // Any member that died while another was awaited.
    for (const m of members) if (m.proc.hasExited) throw exitedError(m, 'after start-up');

    return { server, adminToken, playbookToken, kubeconfigFor, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function exitedError(m: Member, when: string): Error {
  return new Error(
    `${m.name} ${when}: it exited\n--- last output of ${m.name} ---\n${m.proc.tail().join('\n')}`,
  );
}

/**
 * Polls `check` every 200 ms until it says true; throws with `member`'s output tail when `member` exits or
 * `timeoutMs` passes. Errors from `check` count as "not yet" (the server may not listen yet).
 */
async function waitUntil(
  member: Member,
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    if (member.proc.hasExited) {
      const status = await member.proc.exited;
      throw new Error(
        `waiting for ${what}: ${member.name} ${describeExit(status)}\n` +
          `--- last output of ${member.name} ---\n${member.proc.tail().join('\n')}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not reached within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}\n` +
          `--- last output of ${member.name} ---\n${member.proc.tail().join('\n')}`,
      );
    }
    await sleep(200);
  }
}

/** One HTTPS request to a self-signed 127.0.0.1 server (TLS not verified), with a bearer token if given. */
async function kubeRequest(
  base: string,
  token: string | undefined,
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return await new Promise((resolve, reject) => {
    const req = request(
      new URL(urlPath, base),
      {
        method,
        rejectUnauthorized: false,
        timeout: 5_000,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
          accept: 'application/json',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** kwok's fake node: it manages it by the annotation; the taint keeps pods off unless they ask for it. */
function fakeNode(): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: KWOK_NODE_NAME,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        ...KWOK_NODE_SELECTOR,
        'kubernetes.io/hostname': KWOK_NODE_NAME,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/role': 'agent',
      },
    },
    spec: { taints: [{ key: KWOK_TOLERATION.key, value: 'fake', effect: KWOK_TOLERATION.effect }] },
    status: {
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        kubeletVersion: 'fake',
        kubeProxyVersion: 'fake',
        operatingSystem: 'linux',
      },
    },
  };
}

function kubeconfig(server: string, token: string): string {
  // JSON is YAML: no quoting surprises.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'pno', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'user', user: { token } }],
      contexts: [{ name: 'pno', context: { cluster: 'pno', user: 'user' } }],
      'current-context': 'pno',
    },
    null,
    2,
  );
}
