import { CancellationScope, getExternalWorkflowHandle, isCancellation, log } from '@temporalio/workflow';
import { investigationFinishedSignal } from '../../contract/playbooks.ts';
import type { InvestigationInput, InvestigationResult } from '../../domain/playbook.ts';
import { describeAlerts, describeHistory, describeProbe, describeSnapshot } from './describe.ts';
import { PlaybookRun, PlaybookStop } from './runner.ts';

/**
 * The procedures' "Initial Investigation" for an incident with no playbook, gathered automatically and
 * posted in the incident's thread: recent deployments, related firing alerts (Prometheus), pod health and
 * external dependencies. Read-only: it never changes anything, whatever the kill switch says.
 */
export async function initialInvestigation(input: InvestigationInput): Promise<InvestigationResult> {
  const run = new PlaybookRun({ ...input, name: 'initialInvestigation' });
  const t = input.target;
  const a = run.activities;
  const lines: string[] = [];
  try {
    await run.start({ readOnly: true });
    const history = await run.read(
      'recent_deployments',
      'cluster',
      () => a.rolloutHistory({ namespace: t.namespace, deployment: t.deployment }),
      (h) => describeHistory(h, Date.now()),
    );
    lines.push(
      history
        ? describeHistory(history, Date.now()).summary
        : 'rollout history: not read (no cluster configured)',
    );
    const alerts = await run.read(
      'related_alerts',
      'prometheus',
      () => a.firingAlerts({}),
      (all) => {
        const related = all.filter((alert) => isRelated(alert.labels, input));
        return {
          summary: `related firing alerts: ${describeAlerts(related)}`,
          read: { source: 'prometheus', query: '/api/v1/alerts', value: related.length },
        };
      },
    );
    lines.push(
      alerts
        ? `related firing alerts: ${describeAlerts(alerts.filter((alert) => isRelated(alert.labels, input)))}`
        : 'related alerts: not read (PROMETHEUS_URL not set)',
    );
    const snapshot = await run.read('pod_health', 'cluster', () => a.inspectWorkload(t), describeSnapshot);
    lines.push(snapshot ? describeSnapshot(snapshot).summary : 'pods: not read (no cluster configured)');
    for (const [i, url] of t.dependencies.entries()) {
      const probe = await run.read(
        `dependency_${i + 1}`,
        'http',
        () => a.probe({ url }),
        (r) => describeProbe('external dependency', r),
      );
      if (probe) lines.push(describeProbe('external dependency', probe).summary);
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    if (!(err instanceof PlaybookStop)) throw err;
    lines.push(`investigation incomplete: ${err.reason}`);
  }
  const result: InvestigationResult = {
    runId: run.runId,
    summary: lines.join('\n'),
    steps: run.steps.length,
  };
  await CancellationScope.nonCancellable(async () => {
    // Ordered step reports are sent one by one: the last ones must go out before the run ends.
    await run.reported();
    await getExternalWorkflowHandle(input.incidentWorkflowId)
      .signal(investigationFinishedSignal, result)
      .catch((err: unknown) =>
        log.warn('the incident did not take the investigation', { error: String(err) }),
      );
  });
  return result;
}

/** An alert is related when one of its labels names the service, its job, namespace-and-deployment. */
function isRelated(labels: Record<string, string>, input: InvestigationInput): boolean {
  const t = input.target;
  const names = new Set([t.serviceId, t.prometheusJob, t.deployment].filter((n) => n !== ''));
  return Object.values(labels).some((v) => names.has(v));
}
