import type { Revision, WorkloadSnapshot } from '../../domain/cluster.ts';
import { errorRateVerdict, percent, percentBeside, rollbackWorthy } from '../../domain/playbook.ts';
import type { PlaybookInput, PlaybookResult } from '../../domain/playbook.ts';
import {
  describeHistory,
  describeProbe,
  describeSnapshot,
  describeUsage,
} from '../../domain/playbook-describe.ts';
import { PlaybookStop, runPlaybook, seconds } from './runner.ts';
import type { PlaybookRun } from './runner.ts';
import { scaleUp } from './scaling.ts';

/**
 * The procedures' High Error Rate Playbook: measure the error rate (< 1 %: false alarm); error patterns by
 * status; common causes (CPU or memory above 90 % of the pods' requests: scale up; recent rollouts;
 * external dependencies); above 5 %: emergency mitigation (scale up, roll back a rollout younger than
 * 2 h, open the circuit breaker), else scale up gradually, wait 5 min and, still above 2 %, the emergency
 * mitigation; then watch every minute for up to 30 min until below 0.1 % (recovered), else escalate P1.
 */
export async function highErrorRatePlaybook(input: PlaybookInput): Promise<PlaybookResult> {
  return runPlaybook(input, async (run) => {
    const { target: t, activities: a } = run;
    const p = run.settings.highErrorRate;

    const rate = await errorRate(run, 'confirm_error_rate');
    const verdict = errorRateVerdict(rate, p);
    run.record({
      id: 'decide',
      kind: 'decision',
      status: 'done',
      summary:
        verdict === 'false_alarm'
          ? `error rate ${percent(rate)} below ${percent(p.falseAlarmBelow)}: false alarm`
          : verdict === 'emergency'
            ? `error rate ${percent(rate)} above ${percent(p.emergencyAbove)}: emergency mitigation`
            : `error rate ${percent(rate)} between ${percent(p.falseAlarmBelow)} and ${percent(p.emergencyAbove)}: standard mitigation`,
    });
    if (verdict === 'false_alarm') {
      return {
        outcome: 'false_alarm',
        reason: `False alarm - error rate ${percent(rate)} within normal bounds (below ${percent(p.falseAlarmBelow)})`,
      };
    }

    await run.read(
      'error_patterns',
      'prometheus',
      () => a.queryPrometheus({ query: p.errorPatternsQuery }),
      (samples) => ({
        summary: `error patterns: ${samples.length === 0 ? 'none' : samples.map((s) => `HTTP_${s.labels['status'] ?? '?'} ${s.value.toFixed(3)}/s`).join(', ')}`,
        read: { source: 'prometheus', query: p.errorPatternsQuery, value: samples.length },
      }),
    );

    // Common causes: resource pressure, recent rollouts, external dependencies.
    const snapshot = await run.read('check_pods', 'cluster', () => a.inspectWorkload(t), describeSnapshot);
    const state = { replicas: snapshot?.deployment?.desired, snapshot };
    const pressure = await resourcePressure(run, snapshot);
    if (pressure) await scaleUp(run, state, 'scale_for_pressure', p.scaleStep, pressure);
    const history = await run.read(
      'recent_deployments',
      'cluster',
      () => a.rolloutHistory({ namespace: t.namespace, deployment: t.deployment }),
      (h) => describeHistory(h, Date.now()),
    );
    for (const [i, url] of t.dependencies.entries()) {
      await run.read(
        `dependency_${i + 1}`,
        'http',
        () => a.probe({ url }),
        (r) => describeProbe('external dependency', r),
      );
    }

    if (verdict === 'emergency') {
      await emergency(run, state, history);
    } else {
      await scaleUp(run, state, 'gradual_scale_up', p.gradualStep, 'standard mitigation: gradual scale-up');
      run.endDryRunIfPlanned('highErrorRate');
      await run.wait('standard_wait', p.standardWait, 'give the gradual scale-up time to help');
      const again = await errorRate(run, 'remeasure_error_rate');
      if (again > p.stillHighAbove) {
        run.record({
          id: 'decide_emergency',
          kind: 'decision',
          status: 'done',
          summary: `error rate ${percent(again)} still above ${percent(p.stillHighAbove)}: not improving, emergency mitigation`,
        });
        await emergency(run, state, history);
      }
    }
    run.endDryRunIfPlanned('highErrorRate');

    // Monitor recovery: every minute, for up to 30 minutes.
    const until = Date.now() + p.monitorFor;
    for (let check = 1; ; check++) {
      const current = await errorRate(run, 'monitor_recovery', true);
      if (current < p.recoveredBelow) {
        return {
          outcome: 'recovered',
          reason: `System recovered - error rate ${percentBeside(current, p.recoveredBelow)} back below ${percent(p.recoveredBelow)}`,
        };
      }
      if (Date.now() + p.monitorEvery > until) break;
      await run.wait(
        `monitor_wait`,
        p.monitorEvery,
        `error rate ${percent(current)}, check ${check}: look again`,
      );
    }
    return { outcome: 'escalated', reason: 'Failed to recover from high error rate' };
  });
}

/** The error rate from the procedures' query; no data (no traffic, no Prometheus) cannot decide anything. */
async function errorRate(run: PlaybookRun, id: string, noDataIsHigh = false): Promise<number> {
  const p = run.settings.highErrorRate;
  const samples = await run.read(
    id,
    'prometheus',
    () => run.activities.queryPrometheus({ query: p.errorRateQuery }),
    (s) => ({
      summary: s[0] ? `error rate ${percent(s[0].value)}` : 'error rate: the query returned no data',
      read: {
        source: 'prometheus',
        query: p.errorRateQuery,
        value: s[0]?.value ?? null,
        threshold: `false alarm < ${percent(p.falseAlarmBelow)}, emergency > ${percent(p.emergencyAbove)}, recovered < ${percent(p.recoveredBelow)}`,
      },
    }),
  );
  if (samples === undefined)
    throw new PlaybookStop(
      'failed',
      'cannot measure the error rate: Prometheus is not configured (PROMETHEUS_URL)',
    );
  const value = samples[0]?.value;
  if (value !== undefined) return value;
  if (noDataIsHigh) return Number.POSITIVE_INFINITY;
  throw new PlaybookStop('failed', `the error-rate query returned no data: ${p.errorRateQuery}`);
}

/** CPU or memory above `pressureAbove` of the pods' requests (the procedures' 90 %), as a reason to scale. */
async function resourcePressure(
  run: PlaybookRun,
  snapshot: WorkloadSnapshot | undefined,
): Promise<string | undefined> {
  const p = run.settings.highErrorRate;
  const pods = (snapshot?.pods ?? []).filter((pod) => pod.phase === 'Running');
  if (!snapshot || pods.length === 0) return undefined;
  const usage = await run.read(
    'resource_usage',
    'prometheus',
    () =>
      run.activities.podUsage({
        namespace: run.target.namespace,
        pods: pods.map((pod) => pod.name),
        window: p.usageWindow,
      }),
    describeUsage,
  );
  if (!usage || usage.length === 0) return undefined;
  const share = (used: (pod: string) => number, requested: (name: string) => number | undefined) => {
    let u = 0;
    let r = 0;
    for (const pod of pods) {
      const req = requested(pod.name);
      if (req === undefined || req <= 0) continue;
      u += used(pod.name);
      r += req;
    }
    return r > 0 ? u / r : undefined;
  };
  const byPod = new Map(usage.map((u) => [u.pod, u]));
  const cpu = share(
    (pod) => byPod.get(pod)?.cpuMillicores ?? 0,
    (name) => pods.find((x) => x.name === name)?.cpuRequestMillicores,
  );
  const memory = share(
    (pod) => byPod.get(pod)?.memoryMi ?? 0,
    (name) => pods.find((x) => x.name === name)?.memoryRequestMi,
  );
  const high = [
    memory !== undefined && memory > p.pressureAbove
      ? `memory pressure (${Math.round(memory * 100)}% of requests)`
      : '',
    cpu !== undefined && cpu > p.pressureAbove ? `cpu pressure (${Math.round(cpu * 100)}% of requests)` : '',
  ].filter((x) => x !== '');
  run.record({
    id: 'resource_pressure',
    kind: 'decision',
    status: 'done',
    summary: `memory usage ${memory === undefined ? 'n/a (no requests)' : `${(memory * 100).toFixed(1)}%`}, CPU usage ${cpu === undefined ? 'n/a (no requests)' : `${(cpu * 100).toFixed(1)}%`} of requests${high.length > 0 ? `: ${high.join(', ')}` : ''}`,
    read: {
      source: 'prometheus',
      value: `cpu ${cpu ?? 'n/a'}, memory ${memory ?? 'n/a'}`,
      threshold: `> ${Math.round(p.pressureAbove * 100)}%`,
    },
  });
  return high.length > 0 ? high.join(' and ') : undefined;
}

/** Emergency mitigation: scale up now, roll back a recent rollout, open the circuit breaker. */
async function emergency(
  run: PlaybookRun,
  state: { replicas: number | undefined },
  history: Revision[] | undefined,
): Promise<void> {
  const { target: t, activities: a } = run;
  const p = run.settings.highErrorRate;
  await scaleUp(run, state, 'emergency_scale_up', p.scaleStep, 'emergency response');

  const newest = history?.at(-1);
  const previous = history?.at(-2);
  const now = Date.now();
  if (!history) {
    await run.act(
      'rollback',
      {
        kind: 'rollback',
        summary: `roll back deployment/${t.deployment} if its last rollout is younger than ${seconds(p.rollbackIfYoungerThan)}`,
        object: `deployment/${t.deployment}`,
        before: 'not read',
        after: 'previous revision',
      },
      // Only a dry run has no history (no cluster): the action is planned, never called.
      () => Promise.reject(new PlaybookStop('failed', 'the rollout history was not read')),
      (r) => r,
    );
  } else if (newest && previous && rollbackWorthy(newest.createdAt, now, p.rollbackIfYoungerThan)) {
    // The revision to return to is chosen now and recorded: a retry after the undo compares templates, not numbers.
    const to = previous;
    await run.act(
      'rollback',
      {
        kind: 'rollback',
        summary: `roll back deployment/${t.deployment} from revision ${newest.revision} (${newest.images.join(',')}, deployed ${Math.round((now - Date.parse(newest.createdAt)) / 60_000)} min ago) to revision ${to.revision} (${to.images.join(',')})`,
        object: `deployment/${t.deployment}`,
        before: `revision ${newest.revision} ${newest.images.join(',')}`,
        after: `revision ${to.revision} ${to.images.join(',')}`,
      },
      () => a.rollbackTo({ namespace: t.namespace, deployment: t.deployment, revision: to.revision }),
      (r) => ({
        kind: 'rollback',
        summary: r.changed
          ? `rolled back deployment/${t.deployment} to revision ${r.toRevision}: ${r.imagesBefore.join(',')} → ${r.imagesAfter.join(',')}`
          : `deployment/${t.deployment} already runs revision ${r.toRevision}'s template: nothing to roll back`,
        object: r.object,
        before: r.before,
        after: r.after,
      }),
    );
  } else {
    run.record({
      id: 'rollback',
      kind: 'rollback',
      status: 'skipped',
      summary: newest
        ? previous
          ? `no rollback: the last rollout (revision ${newest.revision}) is older than ${seconds(p.rollbackIfYoungerThan)}`
          : `no rollback: revision ${newest.revision} has no previous revision`
        : 'no rollback: the deployment has no revision',
    });
  }

  const breaker = run.settings.circuitBreaker;
  const where =
    'configMap' in breaker
      ? `configmap/${breaker.configMap} ${breaker.key}`
      : `deployment/${t.deployment} annotation ${breaker.annotation}`;
  await run.act(
    'circuit_breaker',
    {
      kind: 'circuit_breaker',
      summary: `enable the circuit breaker: ${where}=${breaker.value}`,
      object: where,
      before: 'unknown',
      after: breaker.value,
    },
    () => a.setCircuitBreaker({ namespace: t.namespace, deployment: t.deployment, breaker }),
    (r) => ({
      kind: 'circuit_breaker',
      summary: r.changed
        ? `circuit breaker enabled: ${r.object} ${r.before} → ${r.after}`
        : `circuit breaker already enabled: ${r.object}=${r.after}`,
      object: r.object,
      before: r.before,
      after: r.after,
    }),
  );
}
