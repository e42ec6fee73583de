import type { FiringAlert, PodUsage, ProbeResult, Revision, WorkloadSnapshot } from './cluster.ts';
import type { PlaybookStep } from './playbook.ts';

/** How the playbooks word what they read, for the steps' one-line summaries and `read` records. */
type Described = Pick<PlaybookStep, 'summary' | 'read'>;

export function describeProbe(what: string, r: ProbeResult): Described {
  const answer =
    r.status !== undefined
      ? `answered ${r.status} in ${Math.round(r.ms)} ms`
      : `failed: ${r.error ?? 'no answer'}`;
  return {
    summary: `${what}: GET ${r.url} ${answer}${r.ok ? '' : ' (not healthy)'}`,
    read: { source: 'http', query: `GET ${r.url}`, value: r.status ?? r.error ?? null, threshold: '2xx' },
  };
}

export function describeSnapshot(s: WorkloadSnapshot): Described {
  const running = s.pods.filter((p) => p.phase === 'Running').length;
  const ready = s.pods.filter((p) => p.ready).length;
  const notRunning = s.pods.filter((p) => p.phase !== 'Running').map((p) => `${p.name} (${p.phase})`);
  const parts = [
    `pods: ${s.pods.length} (${running} Running, ${ready} Ready)${notRunning.length > 0 ? `; not Running: ${notRunning.join(', ')}` : ''}`,
    s.deployment
      ? `deployment/${s.deployment.deployment}: ${s.deployment.ready}/${s.deployment.desired} ready, revision ${s.deployment.revision}`
      : 'deployment: not found',
    s.service
      ? `service/${s.service.name} ${s.service.type} ${s.service.ports.join(',')}`
      : 'service: not found',
    s.ingress ? `ingress/${s.ingress.name} ${s.ingress.hosts.join(',')}` : 'ingress: not found',
    s.hpa
      ? `hpa/${s.hpa.name} ${s.hpa.minReplicas}-${s.hpa.maxReplicas}, current ${s.hpa.currentReplicas}`
      : '',
  ];
  return {
    summary: parts.filter((p) => p !== '').join('; '),
    read: {
      source: 'kubernetes',
      query: 'pods, deployment, service, ingress, hpa',
      value: `${ready}/${s.pods.length} pods Ready`,
    },
  };
}

export function describeHistory(revisions: Revision[], now: number): Described {
  const recent = revisions.slice(-3).reverse();
  const age = (r: Revision) => `${Math.round((now - Date.parse(r.createdAt)) / 60_000)} min ago`;
  return {
    summary:
      recent.length === 0
        ? 'rollout history: no revision'
        : `rollout history: ${recent.map((r) => `rev ${r.revision} ${r.images.join(',')} (${age(r)}${r.changeCause ? `, ${r.changeCause}` : ''})`).join('; ')}`,
    read: {
      source: 'kubernetes',
      query: 'rollout history',
      value: recent[0] ? `rev ${recent[0].revision}` : null,
    },
  };
}

export function describeUsage(usage: PodUsage[]): Described {
  return {
    summary:
      usage.length === 0
        ? 'pod usage: no data'
        : `pod usage: ${usage.map((u) => `${u.pod} ${Math.round(u.cpuMillicores)}m ${Math.round(u.memoryMi)}Mi`).join('; ')}`,
    read: {
      source: 'prometheus',
      query: 'container_cpu_usage_seconds_total, container_memory_working_set_bytes',
      value: usage.length,
    },
  };
}

export function describeAlerts(alerts: FiringAlert[]): string {
  return alerts.length === 0
    ? 'no related alert firing'
    : alerts.map((a) => `${a.alertname} (${a.severity}${a.summary ? `: ${a.summary}` : ''})`).join('; ');
}
