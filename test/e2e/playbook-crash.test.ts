/**
 * A worker crash in the middle of the high-error-rate playbook (issue 10: "a worker crash in the middle of
 * a rollback neither loses it nor repeats it"). The worker runs as a child process (`node src/worker.ts`,
 * the way `npm start` runs it) so that it can be SIGKILLed; the API runs in this process and takes the
 * alert from the real Alertmanager. The test watches the Deployment with the admin's client and kills the
 * worker the moment the emergency scale-up lands (before the rollback), then starts a new worker: the run
 * goes on from its history — the scale's activity is retried after its start-to-close timeout (1 min) if
 * its completion never reached the server, with the target computed before the crash — and the rollback
 * happens exactly once.
 */
import { loopbackEnv } from '../support/loopback-env.ts';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagedProcess } from '../../scripts/lib/process.ts';
import { startProcess } from '../../scripts/lib/process.ts';
import { loadSettings } from '../../src/config.ts';
import { playbookRunId, playbookStepsQuery } from '../../src/contract/playbooks.ts';
import { startApi } from '../../src/starter/api/server.ts';
import { eventually } from '../support/eventually.ts';
import { APP, configMapOf, replicaSetsOf } from '../support/kube-fixtures.ts';
import {
  IMAGE_V2,
  activityCalls,
  IMAGE_V3,
  adminKubeConfig,
  deploymentFacts,
  incidentOf,
  incidentWhen,
  playbookDone,
  prepareCase,
  startWorld,
  stepIds,
  terminateCase,
  timelineSteps,
} from '../support/playbook-world.ts';
import type { ActivityCall, Case, World } from '../support/playbook-world.ts';
import { SlackStandIn } from '../support/slack-server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCALE_STEP = 2;

let world: World;
let c: Case;
let slack: SlackStandIn;
let api: { app: FastifyInstance; address: string };
let env: NodeJS.ProcessEnv;
const workers: ManagedProcess[] = [];

/** `node src/worker.ts` with the case's environment; resolves once it polls its task queue. */
async function startWorker(name: string): Promise<ManagedProcess> {
  const lines: string[] = [];
  const proc = startProcess(process.execPath, [path.join(ROOT, 'src/worker.ts')], {
    cwd: ROOT,
    env,
    stopGraceMs: 10_000,
    tailLines: 80,
    onLine: (line) => {
      lines.push(line);
      if (process.env['TEST_WORKER_LOG']) process.stderr.write(`[${name}] ${line}\n`);
    },
  });
  workers.push(proc);
  await eventually(
    `${name} polling its task queue`,
    () => {
      if (proc.hasExited) throw new Error(`${name} exited:\n${proc.tail().join('\n')}`);
      return lines.some((l) => l.startsWith('worker polling task queue')) ? true : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  // The worker says what the playbooks act on: live, on the test cluster, with Prometheus.
  expect(lines.find((l) => l.startsWith('playbooks:'))).toMatch(/^playbooks: live; cluster kubeconfig /);
  return proc;
}

beforeAll(async () => {
  world = await startWorld();
  c = await prepareCase(world, {
    name: 'crash',
    replicas: 3,
    rollouts: [IMAGE_V2, IMAGE_V3],
    podUsage: { cpuMillicores: 50, memoryMi: 100 },
  });
  const slackToken = `xoxb-${randomUUID()}`;
  slack = new SlackStandIn({ token: slackToken });
  const webhookToken = `am-${randomUUID()}`;
  env = {
    ...loopbackEnv(),
    TEMPORAL_ADDRESS: world.temporal.address,
    TEMPORAL_TASK_QUEUE: `e2e-playbook-crash-${randomUUID()}`,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: slackToken,
    ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
    HOST: '127.0.0.1',
    PORT: '0',
    ...c.env,
  };
  api = await startApi(loadSettings(env), env);
  await world.route(c.receiver, `${api.address}/webhooks/alertmanager`, webhookToken);
}, 600_000);

afterAll(async () => {
  await world?.quiet().catch(() => undefined);
  if (world && c) await terminateCase(world, [c.workflowId('HighErrorRate')]);
  for (const w of workers) await w.stop();
  await api?.app.close();
  await slack?.stop();
  await world?.stop();
});

describe('the worker dies between the scale-up and the rollback', () => {
  it('a new worker rolls back exactly once, keeps the replica count computed before the crash, and recovers', async () => {
    const first = await startWorker('worker-1');
    const before = await deploymentFacts(world, c.namespace);
    expect(before).toMatchObject({ replicas: 3, revision: 3, images: [IMAGE_V3] });
    const revisionsBefore = (await replicaSetsOf(world.cluster, c.namespace)).map((r) => r.revision);
    const target = before.replicas + SCALE_STEP;

    // Watch the Deployment; the moment spec.replicas reaches the emergency target, SIGKILL the worker.
    let seenAtKill: k8s.V1Deployment | undefined;
    let resolveKilled: () => void = () => undefined;
    const killed = new Promise<void>((resolve) => {
      resolveKilled = resolve;
    });
    const watch = await new k8s.Watch(adminKubeConfig(world)).watch(
      `/apis/apps/v1/namespaces/${c.namespace}/deployments`,
      { fieldSelector: `metadata.name=${APP}` },
      (type, obj: k8s.V1Deployment) => {
        if (seenAtKill || type !== 'MODIFIED' || (obj.spec?.replicas ?? 0) < target) return;
        seenAtKill = obj;
        void first.kill().then(() => resolveKilled());
      },
      () => undefined,
    );
    try {
      world.exporter.setRates({ '200': 92, '500': 8 });
      const workflowId = c.workflowId('HighErrorRate');
      const opened = await incidentOf(world, workflowId);
      expect(opened).toMatchObject({ severity: 'P1', playbook: { name: 'highErrorRate' } });
      await Promise.race([
        killed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('the scale-up never reached the cluster')), 120_000),
        ),
      ]);
    } finally {
      watch.abort();
    }
    expect(first.hasExited).toBe(true);

    // Precondition: killed after the scale and before the rollback.
    expect(seenAtKill?.spec?.replicas).toBe(target);
    const atKill = await deploymentFacts(world, c.namespace);
    if (atKill.images[0] !== IMAGE_V3 || atKill.revision !== before.revision) {
      throw new Error(
        `precondition failed: the rollback already happened when the worker was killed ` +
          `(revision ${before.revision} → ${atKill.revision}, images ${atKill.images.join(',')}); ` +
          'the kill came too late to test a crash between the scale-up and the rollback',
      );
    }
    expect(atKill.replicas).toBe(target);
    expect(await configMapOf(world.cluster, c.namespace).then((cm) => cm?.data?.['circuit-breaker'])).toBe(
      'closed',
    );

    // A new worker takes over: the rollback (once), the circuit breaker, the monitoring.
    await startWorker('worker-2');
    const workflowId = c.workflowId('HighErrorRate');
    const acted = await incidentWhen(
      world,
      workflowId,
      'the circuit breaker opened by the new worker',
      (s) => s.playbook?.steps.some((st) => st.id === 'circuit_breaker' && st.status === 'done') ?? false,
      180_000,
    );
    const afterRollback = await deploymentFacts(world, c.namespace);
    const why = () =>
      activityCalls(world, playbookRunId(acted.id, 1)).then(
        (calls) =>
          `the cluster after the new worker's rollback; steps ${stepIds(acted).join(' ')}; calls:\n${describeCalls(calls)}`,
      );
    expect(afterRollback, await why()).toMatchObject({
      replicas: target,
      images: [IMAGE_V2],
      revision: before.revision + 1,
    });
    const revisionsAfter = (await replicaSetsOf(world.cluster, c.namespace)).map((r) => r.revision);
    expect(revisionsAfter.filter((r) => !revisionsBefore.includes(r))).toEqual([before.revision + 1]);
    expect((await configMapOf(world.cluster, c.namespace))?.data?.['circuit-breaker']).toBe('open');
    expect(acted.playbook?.steps.find((s) => s.id === 'emergency_scale_up')?.changed).toMatchObject({
      after: `replicas ${target}`,
    });

    world.exporter.setRates({ '200': 100 });
    const state = await incidentWhen(world, workflowId, 'the playbook done', playbookDone, 120_000);
    expect(state.playbook).toMatchObject({ status: 'completed', outcome: 'recovered', dryRun: false });

    // The run's record is complete and says each action once, in order; the incident has all of it.
    const steps = stepIds(state);
    expect(steps.slice(0, 12)).toEqual([
      'start:done',
      'confirm_error_rate:done',
      'decide:done',
      'error_patterns:done',
      'check_pods:done',
      'resource_usage:done',
      'resource_pressure:done',
      'recent_deployments:done',
      'cooldown:done',
      'emergency_scale_up:done',
      'rollback:done',
      'circuit_breaker:done',
    ]);
    expect(steps.slice(12).every((s) => /^monitor_(recovery|wait)(_\d+)?:done$/.test(s))).toBe(true);
    expect(steps.at(-1)).toMatch(/^monitor_recovery(_\d+)?:done$/);
    expect(steps.filter((s) => s.startsWith('rollback'))).toEqual(['rollback:done']);
    expect(timelineSteps(state, 'highErrorRate')).toEqual(steps);
    const runId = playbookRunId(state.id, 1);
    const recorded = await world.client.workflow.getHandle(runId).query(playbookStepsQuery);
    expect(recorded.map((s) => `${s.id}:${s.status}`)).toEqual(steps);
    expect(state.status).toBe('mitigated');
    expect(state.severity).toBe('P1');

    // The run's history: one scale (perhaps run again after the crash, with the same target), one rollback.
    const calls = await activityCalls(world, runId);
    const scales = calls.filter((call) => call.name === 'scaleTo');
    expect(scales, describeCalls(calls)).toHaveLength(1);
    expect(calls.filter((call) => call.name === 'rollbackTo')).toHaveLength(1);
    const [scale] = scales;
    if (scale?.input !== undefined) expect(scale.input).toMatchObject({ replicas: target });
    // Either the scale's outcome reached the server before the kill (the first attempt changed the cluster),
    // or it did not and the new worker's retry found the target already there and changed nothing.
    expect(scale?.result).toMatchObject(
      scale?.attempt === 1 && scale.result && (scale.result as { changed?: boolean }).changed
        ? { changed: true, replicasBefore: before.replicas, replicasAfter: target }
        : { changed: false, replicasBefore: target, replicasAfter: target },
    );

    // Nothing moved since: the replica count is the one computed before the crash, not +2 again.
    expect(await deploymentFacts(world, c.namespace)).toMatchObject({
      replicas: target,
      images: [IMAGE_V2],
      revision: before.revision + 1,
    });
  }, 420_000);
});

/** A run's activity calls, one a line, for failure messages. */
function describeCalls(calls: ActivityCall[]): string {
  return calls
    .map(
      (call) =>
        `${call.local ? 'local ' : ''}${call.name} attempt ${call.attempt}: ${JSON.stringify(call.input ?? null)} → ${JSON.stringify(call.failure ?? call.result ?? null)}`,
    )
    .join('\n');
}
