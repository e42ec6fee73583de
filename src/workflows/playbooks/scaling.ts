import { scaleUpTarget } from '../../domain/playbook.ts';
import type { PlaybookRun } from './runner.ts';

/**
 * Scales the Deployment up by `step` replicas, to an absolute target computed here once (never above
 * `playbooks.maxReplicas`) and recorded before the call, so a retry or a replay scales to the same number
 * and never twice. With an HPA the activity raises its minReplicas instead of fighting it. `state.replicas`
 * follows what was applied; unknown (no cluster) plans `+step`.
 */
export async function scaleUp(
  run: PlaybookRun,
  state: { replicas: number | undefined },
  id: string,
  step: number,
  why: string,
): Promise<void> {
  const t = run.target;
  const ceiling = run.settings.maxReplicas;
  const current = state.replicas;
  const object = `deployment/${t.deployment}`;
  if (current === undefined) {
    await run.act(
      id,
      {
        kind: 'scale_up',
        summary: `scale ${object} up by ${step} (${why})`,
        object,
        before: 'not read',
        after: `+${step}, at most ${ceiling}`,
      },
      () => Promise.reject(new Error('the replica count was not read')),
      (r) => r,
    );
    return;
  }
  const target = scaleUpTarget(current, step, ceiling);
  if (target === undefined) {
    run.record({
      id,
      kind: 'scale_up',
      status: 'skipped',
      summary: `not scaling ${object} (${why}): ${current} replicas is the ceiling (playbooks.maxReplicas ${ceiling})`,
    });
    return;
  }
  await scaleToTarget(run, state, id, target, why);
}

/** Scales to an absolute replica count (already computed and bounded by the caller). */
export async function scaleToTarget(
  run: PlaybookRun,
  state: { replicas: number | undefined },
  id: string,
  target: number,
  why: string,
): Promise<void> {
  const { target: t, activities: a } = run;
  const object = `deployment/${t.deployment}`;
  const before = state.replicas;
  const result = await run.act(
    id,
    {
      kind: before !== undefined && target < before ? 'scale_down' : 'scale_up',
      summary: `scale ${object} from ${before ?? '?'} to ${target} replicas (${why})`,
      object,
      before: `replicas ${before ?? '?'}`,
      after: `replicas ${target}`,
    },
    () =>
      a.scaleTo({
        namespace: t.namespace,
        deployment: t.deployment,
        replicas: target,
        ...(t.hpa ? { hpa: t.hpa } : {}),
      }),
    (r) => ({
      kind: r.replicasAfter < r.replicasBefore ? 'scale_down' : 'scale_up',
      summary: r.changed
        ? `scaled ${r.object}: ${r.before} → ${r.after}${r.via === 'hpa' ? ' (the HPA keeps it there)' : ''} (${why})`
        : `${r.object} already at ${r.after} (${why})`,
      object: r.object,
      before: r.before,
      after: r.after,
    }),
  );
  if (result) state.replicas = Math.max(result.replicasAfter, target);
  else if (run.dryRun) state.replicas = target;
}
