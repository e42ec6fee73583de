/**
 * bench/playbook: the service-outage playbook's wall time as Temporal runs it, against the same API calls
 * made by a plain script, on the same cluster, in the same run (issue 10, "Benchmark").
 *
 * One real control plane on 127.0.0.1 (test/support/kube-cluster.ts: etcd, kube-apiserver, controllers,
 * kwok), the fixture's workload in `production` with deploy/k8s/rbac.yaml bound to the `playbook` user, one
 * Temporal dev server, one worker process (`src/worker.ts`, as `npm start` runs it) whose KUBECONFIG is the
 * `playbook` user's, and a /health stand-in that answers 503 while any pod of the selector is not Ready.
 * The policy is the real one with the waits zeroed: `serviceOutage.settle: 0s`, `cooldown: 0s` (every run
 * still reads and patches its claim on the Deployment), `pollEvery` from `--poll-every`.
 *
 * Each iteration adds a pod that stays Pending (setup, not timed), then runs, alternately (A B A B …):
 *   (a) the playbook as Temporal runs it: the `runPlaybook` update on a declared incident (what the gateway
 *       sends after finding the incident), the incident starts `serviceOutagePlaybook` as its child, timed
 *       until the child's result reaches the client (outcome must be `recovered`);
 *   (b) a plain script making the same calls in the same order with @kubernetes/client-node and the same
 *       user: probe /health; list pods + get deployment, service, ingress, hpa; get deployment + list
 *       replicasets; get + patch the Deployment's claim annotation; delete the not-Running pods; list pods
 *       every `pollEvery` until all are Ready; sleep `settle`; probe /health (must answer 200).
 * A run that does not finish within `--run-timeout-seconds` is a failure and stays in the percentiles (as
 * ∞). Prints p50/p95/max/mean of both, the ratios, where (a)'s time goes (from the child's history), the
 * per-step times, and the worker's RSS.
 *
 *   npm run bench:playbook [-- --iterations 15 --warmup 1 --poll-every 200ms]
 *   (or BENCH_PLAYBOOK_ITERATIONS=15)
 *
 * Diagnosis: `--direct` adds (c), the worker's activity code called in this process without Temporal
 * (A B C …); `--server-timer-shift 10ms` lowers the dev server's timer floor (default 1 s: any shorter
 * workflow sleep, even the 1 ms the SDK makes of a 0 s settle, fires about 1 s later); `--timeline` prints the
 * last (a) run's history event by event.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { stringify } from 'yaml';
import { startDevServer } from '../scripts/lib/dev-server.ts';
import { freePort } from '../scripts/lib/ports.ts';
import { ensureKubernetes } from '../scripts/lib/tools/kubernetes.ts';
import { createPlaybookHttp } from '../src/activities/playbooks/http.ts';
import { KubernetesCluster, LAST_RUN_ANNOTATION_PREFIX } from '../src/activities/playbooks/kubernetes.ts';
import { Monitoring } from '../src/activities/playbooks/monitoring.ts';
import { OPERATIONS } from '../src/contract/operations.ts';
import { stateQuery } from '../src/contract/messages.ts';
import { declaredWorkflowId } from '../src/contract/workflow-ids.ts';
import { loadSettings } from '../src/config.ts';
import { parseDuration } from '../src/domain/duration.ts';
import { parsePolicy } from '../src/domain/policy.ts';
import { playbookTarget } from '../src/domain/playbook.ts';
import type { PlaybookResult } from '../src/domain/playbook.ts';
import { TemporalIncidents } from '../src/starter/client/incidents.ts';
import { startKubeCluster } from '../test/support/kube-cluster.ts';
import type { KubeCluster } from '../test/support/kube-cluster.ts';
import {
  APP,
  HPA,
  INGRESS,
  NAMESPACE,
  SELECTOR,
  SERVICE,
  addStuckPod,
  admin,
  applyRbac,
  createWorkload,
  waitForReady,
} from '../test/support/kube-fixtures.ts';
import { loadDefaultDocument } from '../test/support/policy.ts';
import { startServiceStandIn } from '../test/support/service-stand-in.ts';
import { SlackStandIn } from '../test/support/slack-server.ts';
import { loopbackEnv } from '../test/support/loopback-env.ts';
import { percentile, startChild, stopChild, waitUntil, giveUpAfter } from './support.ts';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: process.env['BENCH_PLAYBOOK_ITERATIONS'] ?? '15' },
    warmup: { type: 'string', default: '1' },
    'poll-every': { type: 'string', default: '200ms' },
    settle: { type: 'string', default: '0s' },
    cooldown: { type: 'string', default: '0s' },
    'run-timeout-seconds': { type: 'string', default: '60' },
    'timeout-seconds': { type: 'string', default: '1200' },
    /**
     * Diagnosis: the dev server's `history.timerProcessorMaxTimeShift` (e.g. `10ms`). The server's default
     * (1 s) floors every timer's fire time at about now + 1 s, so shorter workflow sleeps take about 1 s.
     */
    'server-timer-shift': { type: 'string' },
    /**
     * Diagnosis: also (c), the worker's own activity code (KubernetesCluster, Monitoring.probe) called in
     * this process in the playbook's order, without Temporal: A B C A B C …
     */
    direct: { type: 'boolean', default: false },
    /** Also print the last measured (a) run's history, event by event. */
    timeline: { type: 'boolean', default: false },
  },
});
const ITERATIONS = Number(values.iterations);
const WARMUP = Number(values.warmup);
const RUN_TIMEOUT_MS = Number(values['run-timeout-seconds']) * 1000;
const TIMER_SHIFT = values['server-timer-shift'];
if (
  !Number.isInteger(ITERATIONS) ||
  ITERATIONS < 1 ||
  ITERATIONS > 1000 ||
  !Number.isInteger(WARMUP) ||
  WARMUP < 0 ||
  WARMUP > 100 ||
  !(RUN_TIMEOUT_MS > 0) ||
  (TIMER_SHIFT !== undefined && parseDuration(TIMER_SHIFT) === undefined)
) {
  console.error('--iterations must be 1..1000, --warmup 0..100, --run-timeout-seconds a positive number');
  process.exit(2);
}

giveUpAfter('bench:playbook', values['timeout-seconds']);

// ---------------------------------------------------------------------------------------------------------
// The policy: the real one, waits zeroed (validated here, so a duration the schema refuses says so now).

const document = loadDefaultDocument();
const playbooksDoc = (document['playbooks'] ?? {}) as Record<string, unknown>;
document['playbooks'] = {
  ...playbooksDoc,
  cooldown: values.cooldown,
  pollEvery: values['poll-every'],
  serviceOutage: {
    ...((playbooksDoc['serviceOutage'] ?? {}) as Record<string, unknown>),
    settle: values.settle,
  },
};
const policy = parsePolicy(document, 'config/default.yaml (bench:playbook)');
const playbooks = policy.playbooks;
const POLL_EVERY_MS = playbooks.pollEvery;
const SETTLE_MS = playbooks.serviceOutage.settle;
const READY_TIMEOUT_MS = playbooks.serviceOutage.readyTimeout;
const CLAIM_KEY = `${LAST_RUN_ANNOTATION_PREFIX}serviceOutage`;

const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'FAILED');
const mb = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 1e6).toFixed(0)} MB`);

/** VmRSS and VmHWM (peak) of a process, from /proc. */
function rssOf(pid: number | undefined): { rss?: number; peak?: number } {
  if (pid === undefined) return {};
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m?.[1] ? Number(m[1]) * 1024 : undefined;
    };
    const rss = kb('VmRSS');
    const peak = kb('VmHWM');
    return { ...(rss !== undefined ? { rss } : {}), ...(peak !== undefined ? { peak } : {}) };
  } catch {
    return {};
  }
}

/** `work`, or 'timeout' once `ms` passed (the work is left to settle on its own). */
async function bounded<T>(ms: number, work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** {@link waitUntil} whose failure says what was awaited. */
async function awaiting(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  try {
    await waitUntil(check, timeoutMs);
  } catch (err) {
    throw new Error(`${what}: ${errorText(err)}`, { cause: err });
  }
}

/** Runs a step and adds its time to `steps[name]`. */
function timedSteps(steps: Record<string, number>) {
  return async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const value = await call();
    steps[name] = (steps[name] ?? 0) + performance.now() - t;
    return value;
  };
}

function isReady(pod: k8s.V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

// ---------------------------------------------------------------------------------------------------------
// Where (a)'s time goes: the child workflow's history.

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

interface Breakdown {
  /** Child WorkflowExecutionStarted → WorkflowExecutionCompleted (server clock). */
  spanMs: number;
  /** The span's ends (server clock). */
  window: [number, number];
  /** Client's update call → child started; child closed → result at the client. */
  beforeMs: number;
  afterMs: number;
  activities: { type: string; queueMs: number; execMs: number }[];
  workflowTasks: { queueMs: number; execMs: number }[];
  /** Part of the span covered by no activity and no workflow task (timers, signals, transfer gaps). */
  uncoveredMs: number;
  events: HistoryEvent[];
}

const num = (v: unknown) => Number(String(v));

function breakdownOf(events: HistoryEvent[], sentAt: number, receivedAt: number): Breakdown {
  const at = (e: HistoryEvent | undefined) => (e ? tsToMs(e.eventTime) : Number.NaN);
  const byId = new Map(events.map((e) => [num(e.eventId), e]));
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const closed = events.at(-1);
  const activities: Breakdown['activities'] = [];
  const workflowTasks: Breakdown['workflowTasks'] = [];
  const intervals: [number, number][] = [];
  const startedOf = new Map<number, HistoryEvent>();
  for (const e of events) {
    const s =
      e.activityTaskStartedEventAttributes?.scheduledEventId ??
      e.workflowTaskStartedEventAttributes?.scheduledEventId;
    if (s !== undefined && s !== null) startedOf.set(num(s), e);
  }
  for (const e of events) {
    const activityDone = e.activityTaskCompletedEventAttributes;
    const taskDone = e.workflowTaskCompletedEventAttributes;
    const scheduledId = activityDone?.scheduledEventId ?? taskDone?.scheduledEventId;
    if (scheduledId === undefined || scheduledId === null) continue;
    const scheduled = byId.get(num(scheduledId));
    const begun = startedOf.get(num(scheduledId));
    const [s, b, c] = [at(scheduled), at(begun), at(e)];
    intervals.push([s, c]);
    if (activityDone) {
      const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
      activities.push({ type, queueMs: b - s, execMs: c - b });
    } else {
      workflowTasks.push({ queueMs: b - s, execMs: c - b });
    }
  }
  const spanStart = at(started);
  const spanEnd = at(closed);
  // The union of the covered intervals, clipped to the span.
  intervals.sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let reach = spanStart;
  for (const [s, c] of intervals) {
    const from = Math.max(s, reach);
    const to = Math.min(c, spanEnd);
    if (to > from) covered += to - from;
    reach = Math.max(reach, c);
  }
  return {
    spanMs: spanEnd - spanStart,
    window: [spanStart, spanEnd],
    beforeMs: spanStart - sentAt,
    afterMs: receivedAt - spanEnd,
    activities,
    workflowTasks,
    uncoveredMs: spanEnd - spanStart - covered,
    events,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Start everything.

console.log(
  `playbook: serviceOutage, ${ITERATIONS} iterations of each (+${WARMUP} warm-up), interleaved A B A B …; ` +
    `pollEvery ${POLL_EVERY_MS} ms, settle ${SETTLE_MS} ms, cooldown ${playbooks.cooldown} ms; ` +
    `server timer shift ${TIMER_SHIFT ?? 'default (1s)'}; node ${process.version}, ${cpus().length} CPUs, ` +
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
const dir = await mkdtemp(path.join(tmpdir(), 'pno-bench-playbook-'));
let cluster: KubeCluster | undefined;
let failed = false;
const cleanups: (() => Promise<unknown>)[] = [];
try {
  const started = performance.now();
  const [tools, server] = await Promise.all([
    ensureKubernetes({ log: (line: string) => console.log(`  [tools] ${line}`) }),
    startDevServer({
      headless: true,
      port: await freePort(),
      log: () => undefined,
      ...(TIMER_SHIFT
        ? { extraArgs: ['--dynamic-config-value', `history.timerProcessorMaxTimeShift="${TIMER_SHIFT}"`] }
        : {}),
    }),
  ]);
  cleanups.push(() => server.stop());
  cluster = await startKubeCluster({ tools });
  const kube = cluster;
  await createWorkload(kube, { replicas: 2 });
  await applyRbac(kube);
  await waitForReady(kube, 2);
  const { core: adminCore } = admin(kube);

  // The service: healthy iff every (not terminating) pod of the selector is Ready.
  const service = await startServiceStandIn({
    health: async () => {
      const pods = (await adminCore.listNamespacedPod({ namespace: NAMESPACE, labelSelector: SELECTOR }))
        .items;
      const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
      return live.length > 0 && live.every(isReady);
    },
  });
  cleanups.push(() => service.stop());

  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(document));
  const slackToken = `xoxb-${randomUUID()}`;
  const slack = new SlackStandIn({ token: slackToken });
  const playbookKubeconfig = kube.kubeconfigFor(kube.playbookToken);
  const env: NodeJS.ProcessEnv = {
    ...loopbackEnv(),
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `bench-playbook-${randomUUID()}`,
    INCIDENT_CONFIG: policyFile,
    KUBECONFIG: playbookKubeconfig,
    SERVICE_HEALTH_URL: service.healthUrl,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: slackToken,
    ALERTMANAGER_WEBHOOK_TOKEN: `am-${randomUUID()}`,
    LOG_LEVEL: 'warn',
  };
  cleanups.push(() => slack.stop());

  const worker = startChild('worker', ['src/worker.ts'], env);
  cleanups.push(() => stopChild(worker));
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  cleanups.push(() => client.connection.close());
  // The policy as the API would hand it to an incident: the file, with SERVICE_HEALTH_URL applied.
  const settings = loadSettings(env);
  const incidents = new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy);
  await awaiting(
    'the worker polling its task queue',
    async () => worker.hasExited || (await incidents.workerHealth()).polling,
    180_000,
  );
  if (worker.hasExited) throw new Error(`the worker exited:\n${worker.tail().join('\n')}`);
  const mode = worker.tail().find((line) => line.startsWith('playbooks:'));
  if (!mode?.startsWith('playbooks: live'))
    throw new Error(`the worker's playbooks are not live: ${mode ?? worker.tail().join('\n')}`);

  // The incident the playbook runs under: declared, acknowledged (no escalation going on), its initial
  // investigation finished before anything is timed.
  const incident = await incidents.declare({ by: 'alice', title: 'bench: service outage', severity: 'P3' });
  const incidentHandle = client.workflow.getHandle(declaredWorkflowId(incident.id));
  await incidentHandle.executeUpdate(OPERATIONS.acknowledge.update, { args: [{ by: 'alice' }] });
  await awaiting(
    "the incident's initial investigation",
    async () => (await incidentHandle.query(stateQuery)).investigation?.status !== 'running',
    120_000,
  );
  console.log(
    `ready in ${((performance.now() - started) / 1000).toFixed(1)} s: control plane ${kube.server} (kwok), ` +
      `dev server ${server.address}, worker pid ${worker.pid} as user "playbook" (deploy/k8s/rbac.yaml), ` +
      `incident ${incident.id}, /health ${service.healthUrl}`,
  );

  // The plain script's clients: the same user, the same library, built once (as the worker builds its own).
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(playbookKubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const networking = kc.makeApiClient(k8s.NetworkingV1Api);
  const autoscaling = kc.makeApiClient(k8s.AutoscalingV2Api);
  // The same HTTP client the probe activity uses, so (b) differs from (a) by Temporal only.
  const http = createPlaybookHttp();
  const ns = NAMESPACE;
  const absentOn404 = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      throw err;
    }
  };

  interface Run {
    ms: number;
    ok: boolean;
    detail: string;
    steps?: Record<string, number>;
    breakdown?: Breakdown;
  }

  async function runPlain(id: string, abort: AbortSignal): Promise<Run> {
    const steps: Record<string, number> = {};
    const step = timedSteps(steps);
    const probe = async () => (await http.get<string>(service.healthUrl, { responseType: 'text' })).status;
    const t0 = performance.now();
    const first = await step('probe', probe);
    if (first >= 200 && first < 300) return { ms: performance.now() - t0, ok: false, detail: 'false alarm' };
    const [pods] = await step('inspectWorkload', () =>
      Promise.all([
        core.listNamespacedPod({ namespace: ns, labelSelector: SELECTOR }),
        absentOn404(() => apps.readNamespacedDeployment({ namespace: ns, name: APP })),
        absentOn404(() => core.readNamespacedService({ namespace: ns, name: SERVICE })),
        absentOn404(() => networking.readNamespacedIngress({ namespace: ns, name: INGRESS })),
        absentOn404(() => autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: HPA })),
      ]),
    );
    await step('rolloutHistory', async () => {
      await apps.readNamespacedDeployment({ namespace: ns, name: APP });
      return await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: SELECTOR });
    });
    await step('claimPlaybookRun', async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: APP });
      await apps.patchNamespacedDeployment(
        {
          namespace: ns,
          name: APP,
          body: {
            metadata: {
              resourceVersion: d.metadata?.resourceVersion,
              annotations: { [CLAIM_KEY]: JSON.stringify({ runId: id, at: new Date().toISOString() }) },
            },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    });
    const unhealthy = pods.items.filter(
      (p) => p.status?.phase !== 'Running' && !p.metadata?.deletionTimestamp,
    );
    await step('deletePods', () =>
      Promise.all(
        unhealthy.map((p) =>
          absentOn404(() => core.deleteNamespacedPod({ namespace: ns, name: p.metadata?.name ?? '' })),
        ),
      ),
    );
    const waitStarted = performance.now();
    for (;;) {
      const list = await step('podReadiness', () =>
        core.listNamespacedPod({ namespace: ns, labelSelector: SELECTOR }),
      );
      const live = list.items.filter((p) => !p.metadata?.deletionTimestamp);
      if (live.length > 0 && live.every(isReady)) break;
      if (performance.now() - waitStarted >= READY_TIMEOUT_MS || abort.aborted)
        return { ms: performance.now() - t0, ok: false, detail: 'pods not Ready in time', steps };
      await sleep(POLL_EVERY_MS);
    }
    await sleep(SETTLE_MS);
    const after = await step('probe', probe);
    const ok = after >= 200 && after < 300;
    return { ms: performance.now() - t0, ok, detail: ok ? 'recovered' : `health ${after}`, steps };
  }

  // (c): the activities' own code, as the worker builds it, called here without Temporal.
  const activityCluster = new KubernetesCluster(kc);
  const monitoring = new Monitoring({ http: createPlaybookHttp() });
  const target = playbookTarget(settings.policy);

  async function runDirect(id: string, abort: AbortSignal): Promise<Run> {
    const steps: Record<string, number> = {};
    const step = timedSteps(steps);
    const t0 = performance.now();
    const first = await step('probe', () => monitoring.probe({ url: target.healthUrl }));
    if (first.ok) return { ms: performance.now() - t0, ok: false, detail: 'false alarm' };
    const snapshot = await step('inspectWorkload', () => activityCluster.inspectWorkload(target));
    const where = { namespace: target.namespace, deployment: target.deployment };
    await step('rolloutHistory', () => activityCluster.rolloutHistory(where));
    await step('claimPlaybookRun', () =>
      activityCluster.claimPlaybookRun({
        ...where,
        playbook: 'serviceOutage',
        runId: id,
        at: new Date().toISOString(),
        cooldownMs: playbooks.cooldown,
      }),
    );
    const names = snapshot.pods
      .filter((pod) => pod.phase !== 'Running' && !pod.terminating)
      .map((pod) => pod.name);
    await step('deletePods', () => activityCluster.deletePods({ namespace: target.namespace, names }));
    const waitStarted = performance.now();
    for (;;) {
      const r = await step('podReadiness', () =>
        activityCluster.podReadiness({ namespace: target.namespace, selector: target.selector }),
      );
      if (r.total > 0 && r.ready === r.total) break;
      if (performance.now() - waitStarted >= READY_TIMEOUT_MS || abort.aborted)
        return { ms: performance.now() - t0, ok: false, detail: 'pods not Ready in time', steps };
      await sleep(POLL_EVERY_MS);
    }
    await sleep(SETTLE_MS);
    const after = await step('probe', () => monitoring.probe({ url: target.healthUrl }));
    return {
      ms: performance.now() - t0,
      ok: after.ok,
      detail: after.ok ? 'recovered' : `health ${after.status}`,
      steps,
    };
  }

  async function runTemporal(): Promise<Run> {
    const sentAt = Date.now();
    const t0 = performance.now();
    await incidentHandle.executeUpdate(OPERATIONS.runPlaybook.update, {
      args: [{ by: 'alice', name: 'serviceOutage' }],
    });
    const state = await incidentHandle.query(stateQuery);
    const runId = state.playbook?.runId;
    if (!runId) throw new Error('the incident started no playbook run');
    const child = client.workflow.getHandle(runId);
    let result: PlaybookResult;
    // The incident starts the child in the workflow task that answered the update: it may not exist yet.
    for (;;) {
      try {
        result = (await child.result()) as PlaybookResult;
        break;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError) || performance.now() - t0 > RUN_TIMEOUT_MS) throw err;
        await sleep(2);
      }
    }
    const ms = performance.now() - t0;
    const receivedAt = Date.now();
    const events = (await child.fetchHistory()).events ?? [];
    const ok = result.outcome === 'recovered';
    // A run that did not recover says why: its steps as the incident recorded them.
    const steps = ok ? [] : ((await incidentHandle.query(stateQuery)).playbook?.steps ?? []);
    return {
      ms,
      ok,
      detail: `${result.outcome}: ${result.reason}${steps.map((st) => `\n      ${st.id} [${st.status}] ${st.summary}`).join('')}`,
      breakdown: breakdownOf(events, sentAt, receivedAt),
    };
  }

  /** Setup (not timed): the 2 replicas Ready, a fresh stuck pod, /health saying 503. */
  async function setUp(name: string): Promise<void> {
    await waitForReady(kube, 2, { timeoutMs: 30_000 });
    await addStuckPod(kube, { name });
    await awaiting(
      '/health answering 503',
      async () => (await fetch(service.healthUrl)).status === 503,
      10_000,
    );
  }

  /** After a run: the stuck pod must be gone (a failed run leaves it; remove it for the next one). */
  async function tidy(name: string): Promise<void> {
    await absentOn404(() => adminCore.deleteNamespacedPod({ namespace: ns, name }));
  }

  type Kind = 'a' | 'b' | 'c';
  const kinds: Kind[] = values.direct ? ['a', 'b', 'c'] : ['a', 'b'];
  const samples: Record<Kind, number[]> = { a: [], b: [], c: [] };
  const failures: Record<Kind, string[]> = { a: [], b: [], c: [] };
  const breakdowns: Breakdown[] = [];
  const stepsOf: Record<Kind, Record<string, number>[]> = { a: [], b: [], c: [] };
  const rssBefore = rssOf(worker.pid);
  const serverRssBefore = rssOf(server.pid);

  for (let i = -WARMUP; i < ITERATIONS; i += 1) {
    const measured = i >= 0;
    const label = measured ? `[${String(i + 1).padStart(2)}/${ITERATIONS}]` : '[warm-up]';
    const line: string[] = [];
    for (const kind of kinds) {
      const pod = `${APP}-stuck-${kind}-${i + WARMUP}`;
      await setUp(pod);
      const abort = new AbortController();
      const work =
        kind === 'a'
          ? runTemporal()
          : kind === 'b'
            ? runPlain(`plain-${i + WARMUP}`, abort.signal)
            : runDirect(`direct-${i + WARMUP}`, abort.signal);
      work.catch(() => undefined);
      let run: Run;
      try {
        const r = await bounded(RUN_TIMEOUT_MS, work);
        run =
          r === 'timeout'
            ? { ms: Number.POSITIVE_INFINITY, ok: false, detail: `not finished within ${RUN_TIMEOUT_MS} ms` }
            : r;
      } catch (err) {
        run = { ms: Number.POSITIVE_INFINITY, ok: false, detail: errorText(err) };
      }
      abort.abort();
      if (!run.ok) {
        run.ms = Number.POSITIVE_INFINITY;
        if (kind === 'a') {
          // Let the incident take the next run: end whatever is still running.
          const running = (await incidentHandle.query(stateQuery)).playbook;
          if (running?.status === 'running' && running.runId)
            await client.workflow
              .getHandle(running.runId)
              .terminate('bench:playbook: run bound reached')
              .catch(() => undefined);
        }
      }
      await tidy(pod);
      line.push(`(${kind}) ${fmt(run.ms)}${run.ok ? '' : ` ← ${run.detail}`}`);
      if (!measured) continue;
      samples[kind].push(run.ms);
      if (!run.ok) failures[kind].push(run.detail);
      if (run.ok && run.breakdown) breakdowns.push(run.breakdown);
      if (run.ok && run.steps) stepsOf[kind].push(run.steps);
    }
    console.log(`${label} ${line.join('   ')}`);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Figures.

  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    return {
      n: xs.length,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      max: sorted.at(-1) ?? Number.NaN,
      mean: xs.reduce((s, x) => s + x, 0) / xs.length,
    };
  };
  const a = stats(samples.a);
  const b = stats(samples.b);
  const c = stats(samples.c);
  console.log('');
  for (const [name, s, f] of [
    ['(a) playbook via Temporal', a, failures.a],
    ['(b) plain script', b, failures.b],
    ...(values.direct ? [['(c) activity code, no Temporal', c, failures.c] as const] : []),
  ] as const) {
    console.log(
      `${name.padEnd(31)} n=${s.n}  failures ${f.length}  p50 ${fmt(s.p50)}  p95 ${fmt(s.p95)}  ` +
        `max ${fmt(s.max)}  mean ${fmt(s.mean)}`,
    );
    for (const why of new Set(f)) console.log(`    failed: ${why}`);
  }
  const ratio = (x: number, y: number) => (Number.isFinite(x / y) ? `${(x / y).toFixed(2)}×` : 'n/a');
  console.log(
    `ratio (a)/(b): medians ${ratio(a.p50, b.p50)}, means ${ratio(a.mean, b.mean)}, ` +
      `difference of medians ${fmt(a.p50 - b.p50)} (aim: under 1.1×)`,
  );
  const spans = stats(breakdowns.map((x) => x.spanMs));
  if (breakdowns.length > 0)
    console.log(
      `  the child workflow alone (its span on the server clock, ${spans.n} runs): p50 ${fmt(spans.p50)}, ` +
        `mean ${fmt(spans.mean)}: ${ratio(spans.p50, b.p50)} / ${ratio(spans.mean, b.mean)} of (b)`,
    );
  if (values.direct)
    console.log(
      `  (c)/(b): medians ${ratio(c.p50, b.p50)}, means ${ratio(c.mean, b.mean)}; ` +
        `(a)/(c): medians ${ratio(a.p50, c.p50)}, means ${ratio(a.mean, c.mean)}`,
    );
  if (failures.a.length + failures.b.length + failures.c.length > 0) failed = true;

  if (breakdowns.length > 0) {
    const mean = (f: (x: Breakdown) => number) =>
      breakdowns.reduce((s, x) => s + f(x), 0) / breakdowns.length;
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    const activities = mean((x) => x.activities.length);
    const tasks = mean((x) => x.workflowTasks.length);
    console.log('');
    console.log(
      `where (a)'s time goes, mean of ${breakdowns.length} runs (server clock, from the child's history):`,
    );
    const rows: [string, number][] = [
      ['client update → child workflow started', mean((x) => x.beforeMs)],
      ['child workflow span (started → completed)', mean((x) => x.spanMs)],
      [
        `  activity execution (${activities.toFixed(1)} activities)`,
        mean((x) => sum(x.activities.map((y) => y.execMs))),
      ],
      ['  activity scheduled → started', mean((x) => sum(x.activities.map((y) => y.queueMs)))],
      [
        `  workflow tasks (${tasks.toFixed(1)}): scheduled → started`,
        mean((x) => sum(x.workflowTasks.map((y) => y.queueMs))),
      ],
      ['  workflow tasks: started → completed', mean((x) => sum(x.workflowTasks.map((y) => y.execMs)))],
      ['  covered by neither (timer, signals, gaps)', mean((x) => x.uncoveredMs)],
      ['child completed → result at the client', mean((x) => x.afterMs)],
    ];
    for (const [what, ms] of rows) console.log(`  ${what.padEnd(46)} ${fmt(ms)}`);

    // Per step: the plain call's time against the activity's execution (started → completed) in the worker.
    const stepNames = [
      'probe',
      'inspectWorkload',
      'rolloutHistory',
      'claimPlaybookRun',
      'deletePods',
      'podReadiness',
    ];
    console.log('');
    console.log(
      `  per step, mean ms per run      (b) plain call   (a) activity started→completed   (a) scheduled→started` +
        (values.direct ? '   (c) activity code here' : ''),
    );
    const stepMean = (kind: Kind, name: string) =>
      stepsOf[kind].length > 0
        ? stepsOf[kind].reduce((s, x) => s + (x[name] ?? 0), 0) / stepsOf[kind].length
        : Number.NaN;
    for (const name of ['playbookEnvironment', ...stepNames]) {
      const plain = stepMean('b', name);
      const exec = mean((x) => sum(x.activities.filter((y) => y.type === name).map((y) => y.execMs)));
      const queue = mean((x) => sum(x.activities.filter((y) => y.type === name).map((y) => y.queueMs)));
      const count = mean((x) => x.activities.filter((y) => y.type === name).length);
      console.log(
        `  ${`${name} (×${count.toFixed(1)})`.padEnd(30)} ${(name === 'playbookEnvironment' ? '—' : fmt(plain)).padStart(16)} ` +
          `${fmt(exec).padStart(32)} ${fmt(queue).padStart(23)}` +
          (values.direct
            ? `${(name === 'playbookEnvironment' ? '—' : fmt(stepMean('c', name))).padStart(26)}`
            : ''),
      );
    }
  }

  // The incident's side of the same runs: each step report is a signal that costs it a workflow task too.
  if (breakdowns.length > 0) {
    const events = (await incidentHandle.fetchHistory()).events ?? [];
    const byId = new Map(events.map((e) => [num(e.eventId), e]));
    let tasks = 0;
    let busy = 0;
    let runs = 0;
    for (const { window } of breakdowns) {
      const [from, to] = window;
      if (from < tsToMs(events[0]?.eventTime)) continue; // before a continue-as-new: not in this history
      runs += 1;
      for (const e of events) {
        const startedId = e.workflowTaskCompletedEventAttributes?.startedEventId;
        if (startedId === undefined || startedId === null) continue;
        const begun = tsToMs(byId.get(num(startedId))?.eventTime);
        const done = tsToMs(e.eventTime);
        if (done < from || begun > to) continue;
        tasks += 1;
        busy += done - begun;
      }
    }
    if (runs > 0)
      console.log(
        `  meanwhile the incident workflow (same worker): ${(tasks / runs).toFixed(1)} workflow tasks per run, ` +
          `${fmt(busy / runs)} started → completed`,
      );
  }

  const last = breakdowns.at(-1);
  if (values.timeline && last) {
    const zero = tsToMs(last.events[0]?.eventTime);
    console.log('');
    console.log("the last (a) run's child workflow history (ms since it started):");
    for (const e of last.events) {
      const type = proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
      const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
      console.log(
        `  ${String(tsToMs(e.eventTime) - zero).padStart(6)}  #${num(e.eventId)} ${type.replace('EVENT_TYPE_', '')}${activity ? ` ${activity}` : ''}`,
      );
    }
  }

  console.log('');
  console.log(
    `load average at the end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const rssAfter = rssOf(worker.pid);
  const serverRssAfter = rssOf(server.pid);
  console.log('');
  console.log(
    `worker RSS ${mb(rssBefore.rss)} → ${mb(rssAfter.rss)} (peak ${mb(rssAfter.peak)}); ` +
      `dev server RSS ${mb(serverRssBefore.rss)} → ${mb(serverRssAfter.rss)}; ` +
      `this process ${mb(process.memoryUsage().rss)}`,
  );
} catch (err) {
  failed = true;
  console.error(`bench:playbook failed: ${errorText(err)}`);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
