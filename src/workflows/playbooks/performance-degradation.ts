import { latencyVerdict } from '../../domain/playbook.ts';
import type { PlaybookInput, PlaybookResult } from '../../domain/playbook.ts';
import { describeSnapshot, describeUsage } from '../../domain/playbook-describe.ts';
import { PlaybookStop, runPlaybook, seconds } from './runner.ts';
import type { PlaybookRun } from './runner.ts';
import { scaleToTarget } from './scaling.ts';

/**
 * The procedures' Performance Degradation Playbook: measure p95 latency (Prometheus; a timed probe of the
 * health URL when there is no data); CPU and memory per pod (above 1500m or 3200Mi: scaling
 * recommended); the HPA's status; fewer than 5 replicas: scale to 5 and wait for the rollout; wait 2 min;
 * measure again: under the 500 ms SLA → recovered, improved by more than 20 % → monitoring (measured on
 * the policy's interval), else escalate P1.
 */
export async function performanceDegradationPlaybook(input: PlaybookInput): Promise<PlaybookResult> {
  return runPlaybook(input, async (run) => {
    const { target: t, activities: a } = run;
    const p = run.settings.performanceDegradation;

    const before = await latency(run, 'measure_performance');
    const snapshot = await run.read('check_pods', 'cluster', () => a.inspectWorkload(t), describeSnapshot);
    const running = (snapshot?.pods ?? []).filter((pod) => pod.phase === 'Running').map((pod) => pod.name);
    if (running.length > 0) {
      const usage = await run.read(
        'resource_usage',
        'prometheus',
        () => a.podUsage({ namespace: t.namespace, pods: running, window: p.usageWindow }),
        describeUsage,
      );
      if (usage && usage.length > 0) {
        const cpu = usage.reduce((sum, u) => sum + u.cpuMillicores, 0) / usage.length;
        const memory = usage.reduce((sum, u) => sum + u.memoryMi, 0) / usage.length;
        const advice = [
          cpu > p.cpuMillicores ? 'high CPU usage - recommend scaling up' : '',
          memory > p.memoryMi ? 'high memory usage - recommend scaling up' : '',
        ].filter((x) => x !== '');
        run.record({
          id: 'resource_constraints',
          kind: 'decision',
          status: 'done',
          summary: `average CPU per pod ${Math.round(cpu)}m, memory ${Math.round(memory)}Mi${advice.length > 0 ? `: ${advice.join('; ')}` : ''}`,
          read: {
            source: 'prometheus',
            value: `${Math.round(cpu)}m ${Math.round(memory)}Mi`,
            threshold: `> ${p.cpuMillicores}m or > ${p.memoryMi}Mi`,
          },
        });
      }
    }
    if (snapshot) {
      const hpa = snapshot.hpa;
      run.record({
        id: 'hpa_status',
        kind: 'read',
        status: 'done',
        summary: hpa
          ? `hpa/${hpa.name}: ${hpa.minReplicas}-${hpa.maxReplicas} replicas, current ${hpa.currentReplicas}, desired ${hpa.desiredReplicas}${hpa.conditions.length > 0 ? `; ${hpa.conditions.join(', ')}` : ''}`
          : `no HPA${t.hpa ? ` named ${t.hpa}` : ''}`,
        read: {
          source: 'kubernetes',
          query: `hpa ${t.hpa ?? ''}`.trim(),
          value: hpa ? hpa.currentReplicas : null,
        },
      });
    }

    const state = { replicas: snapshot?.deployment?.desired };
    const wanted = Math.min(p.minReplicas, run.settings.maxReplicas);
    if (state.replicas === undefined || state.replicas < wanted) {
      await scaleToTarget(run, state, 'scale_up', wanted, `fewer than ${p.minReplicas} replicas`);
      run.endDryRunIfPlanned('performanceDegradation');
      const rollout = await run.waitUntil(
        'rollout_status',
        p.rolloutTimeout,
        () => a.rolloutStatus({ namespace: t.namespace, deployment: t.deployment }),
        (r) => r.complete,
      );
      run.record({
        id: 'rollout_status',
        kind: 'wait',
        status: rollout.finished ? 'done' : 'failed',
        summary: rollout.finished
          ? `rollout complete after ${seconds(rollout.waitedMs)}: ${rollout.value.ready}/${rollout.value.desired} ready`
          : `rollout not complete within ${seconds(p.rolloutTimeout)}: ${rollout.value.ready}/${rollout.value.desired} ready`,
        read: {
          source: 'kubernetes',
          query: `rollout status deployment/${t.deployment}`,
          value: `${rollout.value.ready}/${rollout.value.desired}`,
        },
      });
    } else {
      run.record({
        id: 'scale_up',
        kind: 'scale_up',
        status: 'skipped',
        summary: `deployment/${t.deployment} already has ${state.replicas} replicas (at least ${wanted})`,
      });
    }
    run.endDryRunIfPlanned('performanceDegradation');

    await run.wait('let_scaling_work', p.remeasureAfter, 'wait for scaling to take effect');
    const after = await latency(run, 'validate_improvement');
    const { verdict, improvement } = latencyVerdict(before, after, p);
    const change = `${Math.round(before)} ms → ${Math.round(after)} ms (${(improvement * 100).toFixed(1)}% improvement)`;
    run.record({
      id: 'decide',
      kind: 'decision',
      status: 'done',
      summary: `${change}: ${verdict === 'recovered' ? `back within the ${p.slaMs} ms SLA` : verdict === 'monitoring' ? 'improving - continue monitoring' : 'no significant improvement - escalate'}`,
      read: {
        source: 'latency',
        value: after,
        threshold: `< ${p.slaMs} ms, or improved > ${Math.round(p.improvedBy * 100)}%`,
      },
    });
    if (verdict === 'recovered')
      return { outcome: 'recovered', reason: `Performance back within SLA: ${change}` };
    if (verdict === 'escalated')
      return { outcome: 'escalated', reason: 'Performance degradation not resolved' };

    await run.interim('monitoring', `Performance improving - continue monitoring: ${change}`);
    const until = Date.now() + p.monitorFor;
    let last = after;
    while (Date.now() + p.monitorEvery <= until) {
      await run.wait('monitor_wait', p.monitorEvery, `latency ${Math.round(last)} ms: measure again`);
      last = await latency(run, 'monitor_latency');
      if (last < p.slaMs) {
        return {
          outcome: 'recovered',
          reason: `Performance back within SLA: ${Math.round(before)} ms → ${Math.round(last)} ms`,
        };
      }
    }
    return {
      outcome: 'monitoring',
      reason: `still above the ${p.slaMs} ms SLA after ${seconds(p.monitorFor)} of monitoring (${Math.round(last)} ms, was ${Math.round(before)} ms): a person takes it from here`,
    };
  });
}

/** p95 latency in ms from Prometheus, else the time a probe of the health URL takes (the procedures' curl). */
async function latency(run: PlaybookRun, id: string): Promise<number> {
  const p = run.settings.performanceDegradation;
  const url = run.target.healthUrl;
  const samples = await run.read(
    id,
    'prometheus',
    () => run.activities.queryPrometheus({ query: p.latencyQuery }),
    (s) => ({
      summary: s[0] ? `p95 latency ${Math.round(s[0].value)} ms` : 'p95 latency: the query returned no data',
      read: {
        source: 'prometheus',
        query: p.latencyQuery,
        value: s[0]?.value ?? null,
        threshold: `SLA ${p.slaMs} ms`,
      },
    }),
  );
  const value = samples?.[0]?.value;
  if (value !== undefined) return value;
  if (url === '')
    throw new PlaybookStop(
      'failed',
      'cannot measure latency: no Prometheus data and service.healthUrl is not set',
    );
  const probe = await run.read(
    `${id}_probe`,
    'http',
    () => run.activities.probe({ url }),
    (r) => ({
      summary: `response time of GET ${r.url}: ${Math.round(r.ms)} ms (${r.status ?? r.error ?? 'no answer'})`,
      read: {
        source: 'http',
        query: `GET ${r.url}`,
        value: Math.round(r.ms),
        threshold: `SLA ${p.slaMs} ms`,
      },
    }),
  );
  if (!probe?.ok)
    throw new PlaybookStop(
      'failed',
      `cannot measure latency: GET ${url} failed (${probe?.status ?? probe?.error ?? 'no answer'})`,
    );
  return probe.ms;
}
