/**
 * The world of the playbook e2e tests (test/e2e/playbooks.test.ts, test/e2e/playbook-crash.test.ts), all on
 * 127.0.0.1 with free ports: a real Kubernetes control plane (kube-cluster.ts) with the protected service's
 * workload per case in a namespace of its own, the `playbook` user bound only to the Role of
 * deploy/k8s/rbac.yaml; the stand-in exporter Prometheus scrapes (request counters, latency histogram,
 * cAdvisor series); a scrape target that stands for the service as Prometheus sees it (its scrape failing is
 * what fires ServiceDown); the service's /health stand-in; the real Prometheus with the repository's rules
 * (second-scale windows) plus a small test rule for HighLatency, which deploy/prometheus/rules.yml does not
 * have; the real Alertmanager; a real Temporal dev server. Each case gets a policy file of its own
 * (INCIDENT_CONFIG: its namespace, short waits, `[10s]` windows, the procedures' thresholds) and an
 * Alertmanager receiver of its own, so every case's alert opens its own incident (the incident's workflow
 * id is derived from receiver and group).
 */
import { listenOnLoopback } from './stand-in.ts';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import type { DevServer } from '../../scripts/lib/dev-server.ts';
import { ensureKubernetes } from '../../scripts/lib/tools/kubernetes.ts';
import { stateQuery } from '../../src/contract/messages.ts';
import { playbookRunId } from '../../src/contract/playbooks.ts';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { parsePolicy } from '../../src/domain/policy.ts';
import { eventually } from './eventually.ts';
import { startExporter } from './exporter.ts';
import type { Exporter } from './exporter.ts';
import { startKubeCluster } from './kube-cluster.ts';
import type { KubeCluster } from './kube-cluster.ts';
import {
  APP,
  IMAGE,
  SELECTOR,
  addStuckPod,
  admin,
  applyRbac,
  createWorkload,
  loadRole,
  rollOut,
  waitForReady,
  waitForRollout,
} from './kube-fixtures.ts';
import { loadDefaultDocument } from './policy.ts';
import type { PolicyPatch } from './policy.ts';
import {
  REPO_RULES_FILE,
  alertmanagerConfig,
  promtoolPath,
  secondScaleRules,
  startAlertmanager,
  startPrometheus,
} from './prometheus.ts';
import type { AlertmanagerOptions, Daemon, PrometheusApi } from './prometheus.ts';
import { startServiceStandIn } from './service-stand-in.ts';
import type { ServiceStandIn } from './service-stand-in.ts';
import { startTestDevServer } from './temporal.ts';

export const IMAGE_V2 = `${IMAGE}:1.1.0`;
export const IMAGE_V3 = `${IMAGE}:1.2.0`;

/** The procedures' queries (config/default.yaml) with their `[5m]` windows as `[10s]`. */
const shortWindow = (query: string) => query.replaceAll('[5m]', '[10s]');
const defaultPlaybooks = () =>
  (loadDefaultDocument()['playbooks'] ?? {}) as {
    highErrorRate: { errorRateQuery: string; errorPatternsQuery: string };
    performanceDegradation: { latencyQuery: string };
  };
export const TEST_QUERIES = {
  errorRate: shortWindow(defaultPlaybooks().highErrorRate.errorRateQuery),
  errorPatterns: shortWindow(defaultPlaybooks().highErrorRate.errorPatternsQuery),
  latency: shortWindow(defaultPlaybooks().performanceDegradation.latencyQuery),
};

/**
 * The playbooks' test parameters: the procedures' thresholds (untouched defaults), second-scale waits and
 * windows. `remeasureAfter` outlasts the latency query's 10 s window, so the second measurement sees only
 * what happened after the scale-up (as the procedures' 2 min do with their 5 min window… roughly).
 */
export const TEST_PLAYBOOKS: PolicyPatch = {
  pollEvery: '1s',
  cooldown: '1s',
  approvalTimeout: '5m',
  serviceOutage: { settle: '2s', readyTimeout: '60s' },
  highErrorRate: {
    errorRateQuery: TEST_QUERIES.errorRate,
    errorPatternsQuery: TEST_QUERIES.errorPatterns,
    usageWindow: '10s',
    standardWait: '5s',
    monitorEvery: '2s',
    monitorFor: '60s',
  },
  performanceDegradation: {
    latencyQuery: TEST_QUERIES.latency,
    usageWindow: '10s',
    remeasureAfter: '15s',
    monitorEvery: '2s',
    monitorFor: '30s',
    rolloutTimeout: '60s',
  },
};

/**
 * The alert that deploy/prometheus/rules.yml lacks (only HighErrorRate and ServiceDown are there): the
 * performance-degradation playbook's, matched by config/default.yaml's `performance-degradation` rule
 * (`~High(Latency|ResponseTime)|PerformanceDegradation`). Test-only; nothing is added to deploy/.
 */
export const TEST_LATENCY_RULES = `
groups:
  - name: pno-physics-bench-test-latency
    rules:
      - alert: HighLatency
        expr: ${TEST_QUERIES.latency} > 500
        for: 2s
        labels:
          severity: warning
          service: pno-physics-bench
        annotations:
          summary: 'p95 latency above 500 ms on pno-physics-bench'
`;

/** The group key Alertmanager gives a group of one alertname (the route groups by alertname). */
export const groupKeyOf = (alertname: string) => `{}:{alertname="${alertname}"}`;

// ---------------------------------------------------------------------------------------------------------
// The service as Prometheus sees it

/**
 * A scrape target of job pno-physics-bench with no series of its own: `/metrics` answers 200 while `up()`
 * says so and 503 otherwise, so Prometheus' `up` for it (the ServiceDown rule) is what a test decides.
 */
export class ScrapeTarget {
  private readonly server: Server;
  private up: () => Promise<boolean> | boolean = () => true;
  private port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      Promise.resolve()
        .then(() => this.up())
        .catch(() => false)
        .then(
          (up) => {
            if (up) res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('');
            else res.writeHead(503, { 'content-type': 'text/plain' }).end('service unavailable\n');
          },
          () => res.destroy(),
        );
    });
  }

  /** From now on the scrape succeeds iff `up` says so. */
  setUp(up: () => Promise<boolean> | boolean): void {
    this.up = up;
  }

  async start(): Promise<string> {
    this.port = await listenOnLoopback(this.server);
    return this.target;
  }

  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The world

export interface World {
  cluster: KubeCluster;
  temporal: DevServer;
  /** A Temporal client of its own, for assertions (queries, histories, clean-up). */
  client: Client;
  exporter: Exporter;
  /** The protected service's `/health`. */
  service: ServiceStandIn;
  /** The service's scrape target (ServiceDown). */
  target: ScrapeTarget;
  prometheus: Daemon & PrometheusApi;
  alertmanager: Daemon;
  /** Temporary directory of the policy files. */
  dir: string;
  /** Points Alertmanager's one route at `webhookUrl` as receiver `receiver` (reloads its configuration). */
  route(receiver: string, webhookUrl: string, bearerToken: string): Promise<void>;
  /**
   * Everything back to normal (100 requests/s without errors, 100 ms latency, the service up and healthy)
   * and waits until no alert is pending or firing in Prometheus nor active in Alertmanager.
   */
  quiet(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts everything of the module comment but the product (the cases start it with their policy). */
export async function startWorld(): Promise<World> {
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(path.join(tmpdir(), 'pno-playbook-world-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    const [cluster, temporal] = await Promise.all([
      ensureKubernetes().then((tools) => startKubeCluster({ tools })),
      startTestDevServer(),
    ]);
    stops.push(
      () => cluster.stop(),
      () => temporal.stop(),
    );
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    stops.push(() => client.connection.close());

    const exporter = await startExporter({ rates: { '200': 100 }, latencyMs: 100 });
    stops.push(() => exporter.stop());
    const target = new ScrapeTarget();
    await target.start();
    stops.push(() => target.stop());
    const service = await startServiceStandIn();
    stops.push(() => service.stop());

    // Until a case routes it: a receiver that nobody listens to (no alert fires before a case starts).
    const idle: AlertmanagerOptions = {
      webhookUrl: 'http://127.0.0.1:9/webhooks/alertmanager',
      bearerToken: 'idle',
      receiver: 'idle',
    };
    const alertmanager = await startAlertmanager(idle);
    stops.push(() => alertmanager.stop());
    const rules = await testRules(dir);
    const prometheus = await startPrometheus({
      targets: [exporter.target, target.target],
      alertmanager: alertmanager.hostPort,
      rules,
    });
    stops.push(() => prometheus.stop());
    // Both targets scraped before any case relies on `up` or a rate.
    await eventually(
      'Prometheus scraping the exporter and the service',
      async () =>
        (await prometheus.query('up{job="pno-physics-bench"} == 1')).length === 2 ? true : undefined,
      { timeoutMs: 30_000 },
    );

    const route = async (receiver: string, webhookUrl: string, bearerToken: string) => {
      await writeFile(
        path.join(alertmanager.dir, 'alertmanager.yml'),
        alertmanagerConfig({ webhookUrl, bearerToken, receiver }),
        { mode: 0o600 },
      );
      const res = await fetch(`${alertmanager.url}/-/reload`, {
        method: 'POST',
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error(`Alertmanager reload: HTTP ${res.status} ${await res.text()}`);
      await eventually(`Alertmanager routing to ${receiver}`, async () => {
        const status = (await (await fetch(`${alertmanager.url}/api/v2/status`)).json()) as {
          config?: { original?: string };
        };
        return status.config?.original?.includes(webhookUrl) &&
          status.config.original.includes(`name: ${receiver}`)
          ? true
          : undefined;
      });
    };

    const quiet = async () => {
      exporter.setRates({ '200': 100 });
      exporter.setLatencyMs(100);
      target.setUp(() => true);
      service.setHealth(() => Promise.resolve(true));
      await eventually(
        'no alert pending or firing in Prometheus, none active in Alertmanager',
        async () => {
          const pending = await prometheus.alerts();
          const active = (
            (await (await fetch(`${alertmanager.url}/api/v2/alerts?active=true`)).json()) as {
              status: { state: string };
            }[]
          ).filter((a) => a.status.state === 'active');
          return pending.length === 0 && active.length === 0 ? true : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
    };

    return {
      cluster,
      temporal,
      client,
      exporter,
      service,
      target,
      prometheus,
      alertmanager,
      dir,
      route,
      quiet,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The repository's rules, second-scale, plus {@link TEST_LATENCY_RULES}; checked with promtool. */
async function testRules(dir: string): Promise<string> {
  const scaled = parse(secondScaleRules(await readFile(REPO_RULES_FILE, 'utf8'))) as { groups: unknown[] };
  const extra = parse(TEST_LATENCY_RULES) as { groups: unknown[] };
  const rules = stringify({ groups: [...scaled.groups, ...extra.groups] });
  const file = path.join(dir, 'rules.yml');
  await writeFile(file, rules);
  await promisify(execFile)(await promtoolPath(), ['check', 'rules', file]);
  return rules;
}

// ---------------------------------------------------------------------------------------------------------
// A case: its namespace, workload, RBAC and policy

export interface CaseOptions {
  /** Names the namespace (`pb-<name>`) and the Alertmanager receiver. */
  name: string;
  replicas?: number;
  /** Images rolled out after the first revision (1.0.0), each a new revision. */
  rollouts?: string[];
  hpa?: { min: number; max: number };
  stuckPod?: boolean;
  /** Bind a Role without this verb of the rule on this resource (a 403 for that call). */
  without?: { resource: string; verb: string };
  /** Merged into {@link TEST_PLAYBOOKS}. */
  playbooks?: PolicyPatch;
  /** CPU and memory the exporter reports for each Ready pod (waited for in Prometheus). */
  podUsage?: { cpuMillicores: number; memoryMi: number };
}

export interface Case {
  name: string;
  namespace: string;
  receiver: string;
  policyFile: string;
  /** The product's environment for this case (the worker's and the API's): policy, cluster, Prometheus. */
  env: NodeJS.ProcessEnv;
  /** The Ready pods once the workload is set up. */
  pods: string[];
  /** The pod that stays Pending, when asked for. */
  stuckPod?: string;
  /** The incident workflow id of an alert of this case. */
  workflowId(alertname: string): string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) out[key] = merge(base[key], value);
  return out;
}

/** Engineer tokens of the default policy's people (INCIDENT_TOKEN_<NAME>), for the API. */
export const ENGINEER_TOKENS = {
  alice: `alice-${randomUUID()}`,
};

/**
 * Sets a case up: namespace with the workload (Ready), its rollouts, a stuck pod, the Role bound to the
 * `playbook` user, pod usage in Prometheus, and the policy file the product reads.
 */
export async function prepareCase(world: World, opts: CaseOptions): Promise<Case> {
  const { cluster } = world;
  const namespace = `pb-${opts.name}`;
  const replicas = opts.replicas ?? 2;
  await createWorkload(cluster, { namespace, replicas, ...(opts.hpa ? { hpa: opts.hpa } : {}) });
  let withoutRule: { rule: number; verb: string } | undefined;
  if (opts.without) {
    const { resource, verb } = opts.without;
    const rule = loadRole().rules.findIndex((r) => r.resources.includes(resource) && r.verbs.includes(verb));
    if (rule < 0) throw new Error(`the Role has no rule with ${verb} on ${resource}`);
    withoutRule = { rule, verb };
  }
  await applyRbac(cluster, { namespace, ...(withoutRule ? { withoutRule } : {}) });
  await waitForRollout(cluster, { namespace });
  for (const image of opts.rollouts ?? []) await rollOut(cluster, image, { namespace });
  const pods = (await waitForReady(cluster, replicas, { namespace })).map((p) => p.metadata?.name ?? '');
  const stuckPod = opts.stuckPod ? await addStuckPod(cluster, { namespace }) : undefined;

  if (opts.podUsage) {
    for (const pod of pods) world.exporter.setPodUsage(pod, { ...opts.podUsage, namespace });
    await eventually(
      `CPU and memory of ${namespace}'s pods in Prometheus`,
      async () => {
        const regex = pods.join('|');
        const cpu = await world.prometheus.query(
          `sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="${namespace}",pod=~"${regex}",container!="",container!="POD"}[10s]))`,
        );
        return cpu.length === pods.length ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
  }

  const document = merge(loadDefaultDocument(), {
    service: { namespace, selector: SELECTOR, deployment: APP, healthUrl: world.service.healthUrl },
    playbooks: merge(TEST_PLAYBOOKS, opts.playbooks ?? {}),
  });
  // Checked now: a typo in a test policy should fail here, not as a product error later.
  parsePolicy(document, `${opts.name} test policy`);
  const policyFile = path.join(world.dir, `policy-${opts.name}.yaml`);
  await writeFile(policyFile, stringify(document));

  const receiver = `pb-${opts.name}`;
  return {
    name: opts.name,
    namespace,
    receiver,
    policyFile,
    env: {
      INCIDENT_CONFIG: policyFile,
      KUBECONFIG: cluster.kubeconfigFor(cluster.playbookToken),
      PROMETHEUS_URL: world.prometheus.url,
      SERVICE_HEALTH_URL: '',
      INCIDENT_TOKEN_ALICE: ENGINEER_TOKENS.alice,
      INCIDENT_USER: 'alice',
      LOG_LEVEL: 'warn',
    },
    pods,
    ...(stuckPod ? { stuckPod } : {}),
    workflowId: (alertname) => alertGroupWorkflowId(receiver, groupKeyOf(alertname)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The cluster, as the test's admin sees it

/** Whether every pod of the app in `namespace` (none being deleted) is Running and Ready. */
export async function allPodsReady(world: World, namespace: string): Promise<boolean> {
  const pods = (
    await admin(world.cluster).core.listNamespacedPod({ namespace, labelSelector: SELECTOR })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);
  return (
    pods.length > 0 &&
    pods.every(
      (p) =>
        p.status?.phase === 'Running' &&
        (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    )
  );
}

/** The Deployment's replicas, revision, images and ready count. */
export async function deploymentFacts(
  world: World,
  namespace: string,
): Promise<{
  replicas: number;
  revision: number;
  images: string[];
  ready: number;
  annotations: Record<string, string>;
}> {
  const d = await admin(world.cluster).apps.readNamespacedDeployment({ namespace, name: APP });
  return {
    replicas: d.spec?.replicas ?? 0,
    revision: Number(d.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0),
    images: (d.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? ''),
    ready: d.status?.readyReplicas ?? 0,
    annotations: d.metadata?.annotations ?? {},
  };
}

/** A kubeconfig of the admin for watches. */
export function adminKubeConfig(world: World): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  config.loadFromFile(world.cluster.kubeconfigFor(world.cluster.adminToken));
  return config;
}

// ---------------------------------------------------------------------------------------------------------
// Incidents

/** The incident of `workflowId`, once it has opened. */
export async function incidentOf(
  world: World,
  workflowId: string,
  timeoutMs = 60_000,
): Promise<IncidentState> {
  return await eventually(
    `the incident of ${workflowId}`,
    async () => await world.client.workflow.getHandle(workflowId).query(stateQuery),
    { timeoutMs, intervalMs: 500 },
  );
}

/** The incident's state once `done` says so. */
export async function incidentWhen(
  world: World,
  workflowId: string,
  what: string,
  done: (s: IncidentState) => boolean,
  timeoutMs = 60_000,
): Promise<IncidentState> {
  return await eventually(
    what,
    async () => {
      const s = await world.client.workflow.getHandle(workflowId).query(stateQuery);
      return done(s) ? s : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

export const playbookDone = (s: IncidentState) =>
  s.playbook?.status === 'completed' || s.playbook?.status === 'cancelled';

/** The run's steps as `id:status`. */
export const stepIds = (s: IncidentState) => (s.playbook?.steps ?? []).map((st) => `${st.id}:${st.status}`);

/** The `playbook_step` timeline entries of the playbook's steps (`<id> [<status>] …`), as `id:status`. */
export function timelineSteps(s: IncidentState, playbook: string): string[] {
  return s.timeline
    .filter((t) => t.kind === 'playbook_step' && t.actor === `playbook:${playbook}`)
    .flatMap((t) => {
      const m = /^(\S+) \[(\w+)\] /.exec(t.message);
      return m ? [`${m[1]}:${m[2]}`] : [];
    });
}

/** One activity call of a run, from its history: a task through the server or a local activity's marker. */
export interface ActivityCall {
  name: string;
  local: boolean;
  /** The attempt that ended it. */
  attempt: number;
  /** Only recorded for activities through the server. */
  input?: unknown;
  result?: unknown;
  failure?: { message: string; type?: string; nonRetryable?: boolean };
}

const decode = (p: { data?: Uint8Array | null } | null | undefined): unknown =>
  p?.data ? (JSON.parse(Buffer.from(p.data).toString('utf8')) as unknown) : undefined;

/** Every activity call recorded in the history of workflow `workflowId`, in order. */
export async function activityCalls(world: World, workflowId: string): Promise<ActivityCall[]> {
  const events = (await world.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const byScheduled = new Map<string, ActivityCall>();
  const calls: ActivityCall[] = [];
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const call: ActivityCall = {
        name: scheduled.activityType?.name ?? '',
        local: false,
        attempt: 0,
        input: decode(scheduled.input?.payloads?.[0]),
      };
      byScheduled.set(String(e.eventId), call);
      calls.push(call);
    }
    const started = e.activityTaskStartedEventAttributes;
    const startedCall = started && byScheduled.get(String(started.scheduledEventId));
    if (started && startedCall) startedCall.attempt = started.attempt ?? 0;
    const completed = e.activityTaskCompletedEventAttributes;
    const completedCall = completed && byScheduled.get(String(completed.scheduledEventId));
    if (completed && completedCall) completedCall.result = decode(completed.result?.payloads?.[0]);
    const failed = e.activityTaskFailedEventAttributes;
    const failedCall = failed && byScheduled.get(String(failed.scheduledEventId));
    if (failed && failedCall) {
      const info = failed.failure?.applicationFailureInfo;
      failedCall.failure = {
        message: failed.failure?.message ?? '',
        ...(info?.type ? { type: info.type } : {}),
        ...(info ? { nonRetryable: info.nonRetryable === true } : {}),
      };
    }
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      const data = (decode(marker.details?.['data']?.payloads?.[0]) ?? {}) as Record<string, unknown>;
      const info = marker.failure?.applicationFailureInfo;
      calls.push({
        name: [data['activity_type'], data['activityType']].find((n) => typeof n === 'string') ?? '',
        local: true,
        attempt: Number(data['attempt'] ?? 0),
        ...(marker.details?.['result'] ? { result: decode(marker.details['result'].payloads?.[0]) } : {}),
        ...(marker.failure
          ? {
              failure: {
                message: marker.failure.message ?? '',
                ...(info?.type ? { type: info.type } : {}),
                ...(info ? { nonRetryable: info.nonRetryable === true } : {}),
              },
            }
          : {}),
      });
    }
  }
  return calls;
}

/**
 * Terminates what a case left running on the dev server (its incident and playbook runs): their worker is
 * gone with the case. Best effort.
 */
export async function terminateCase(world: World, workflowIds: string[]): Promise<void> {
  for (const workflowId of workflowIds) {
    let state: IncidentState | undefined;
    try {
      state = await world.client.workflow.getHandle(workflowId).query(stateQuery);
    } catch {
      // not started, or gone
    }
    const runs = state?.playbook?.runs ?? 0;
    const ids = [
      ...(state ? Array.from({ length: runs }, (_, i) => playbookRunId(state.id, i + 1)) : []),
      ...(state?.investigation ? [state.investigation.runId] : []),
      workflowId,
    ];
    for (const id of ids) {
      await world.client.workflow
        .getHandle(id)
        .terminate('e2e case over')
        .catch(() => undefined);
    }
  }
}
