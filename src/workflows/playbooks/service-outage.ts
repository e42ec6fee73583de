import type { PlaybookInput, PlaybookResult } from '../../domain/playbook.ts';
import { describeHistory, describeProbe, describeSnapshot } from '../../domain/playbook-describe.ts';
import { PlaybookStop, runPlaybook, seconds } from './runner.ts';

/**
 * The procedures' Service Outage Playbook: verify the outage with the health URL (healthy: a false alarm,
 * nothing touched); check pods, Service and Ingress; read the rollout history; delete the pods whose phase
 * is not Running; wait until the selector's pods are Ready (bounded); settle; check health again:
 * recovered, or escalate P0 "Service restart failed".
 */
export async function serviceOutagePlaybook(input: PlaybookInput): Promise<PlaybookResult> {
  return runPlaybook(input, async (run) => {
    const { target: t, activities: a } = run;
    const p = run.settings.serviceOutage;
    const url = t.healthUrl;
    if (url === '')
      throw new PlaybookStop('failed', 'service.healthUrl is not set: the outage cannot be verified');

    const health = await run.read(
      'verify_outage',
      'http',
      () => a.probe({ url }),
      (r) => describeProbe('verify outage', r),
    );
    if (health?.ok) {
      return {
        outcome: 'false_alarm',
        reason: `False alarm - service is responding (${url} answered ${health.status})`,
      };
    }

    const snapshot = await run.read(
      'check_infrastructure',
      'cluster',
      () => a.inspectWorkload(t),
      describeSnapshot,
    );
    await run.read(
      'recent_deployments',
      'cluster',
      () => a.rolloutHistory({ namespace: t.namespace, deployment: t.deployment }),
      (h) => describeHistory(h, Date.now()),
    );

    // The pods to restart are named now, once: a retry or replay deletes exactly these, never their replacements.
    const unhealthy = snapshot?.pods.filter((pod) => pod.phase !== 'Running' && !pod.terminating);
    if (unhealthy && unhealthy.length === 0) {
      run.record({
        id: 'restart_unhealthy_pods',
        kind: 'delete',
        status: 'skipped',
        summary: `no pod of ${t.selector} outside phase Running: nothing to restart`,
      });
    } else {
      const names = unhealthy?.map((pod) => pod.name) ?? [];
      const which = unhealthy ? names.join(', ') : `the pods of ${t.selector} whose phase is not Running`;
      await run.act(
        'restart_unhealthy_pods',
        {
          kind: 'delete',
          summary: `delete ${which}`,
          object: `pods in ${t.namespace} (${t.selector})`,
          before: unhealthy ? unhealthy.map((pod) => `${pod.name} ${pod.phase}`).join(', ') : 'not read',
          after: 'deleted; their ReplicaSet recreates them',
        },
        () => a.deletePods({ namespace: t.namespace, names }),
        (r) => ({
          kind: 'delete',
          summary: `deleted ${r.deleted.length} pod(s)${r.alreadyGone.length > 0 ? `, ${r.alreadyGone.length} already gone` : ''}: ${[...r.deleted, ...r.alreadyGone].join(', ')}`,
          object: `pods in ${t.namespace} (${t.selector})`,
          before: names.join(', '),
          after: 'deleted',
        }),
      );
    }
    run.endDryRunIfPlanned('serviceOutage');

    const ready = await run.waitUntil(
      'wait_for_ready',
      p.readyTimeout,
      () => a.podReadiness({ namespace: t.namespace, selector: t.selector }),
      (r) => r.total > 0 && r.ready === r.total,
    );
    run.record({
      id: 'wait_for_ready',
      kind: 'wait',
      status: ready.finished ? 'done' : 'failed',
      summary: ready.finished
        ? `all ${ready.value.total} pod(s) Ready after ${seconds(ready.waitedMs)}`
        : `not all pods Ready within ${seconds(p.readyTimeout)}: ${ready.value.ready}/${ready.value.total}${ready.value.notReady.length > 0 ? ` (not Ready: ${ready.value.notReady.join(', ')})` : ''}`,
      read: {
        source: 'kubernetes',
        query: `pods ${t.selector} condition Ready`,
        value: `${ready.value.ready}/${ready.value.total}`,
        threshold: `all within ${seconds(p.readyTimeout)}`,
      },
    });
    await run.wait('settle', p.settle, 'let the restarted pods settle before verifying');

    const after = await run.read(
      'verify_recovery',
      'http',
      () => a.probe({ url }),
      (r) => describeProbe('verify recovery', r),
    );
    if (after?.ok) return { outcome: 'recovered', reason: 'Service recovered - outage resolved' };
    return { outcome: 'escalated', reason: 'Service restart failed' };
  });
}
