import type { IncidentState } from '../../domain/incident.ts';
import type { SimulationStep } from '../../domain/simulation.ts';
import type { IncidentSummary } from '../client/incidents.ts';

/**
 * What the CLI prints for people; `--json` prints the values themselves (the shapes DESIGN.md fixes),
 * so nothing here is a contract.
 */

/** One incident's state and timeline (`show`, `declare` and every operation). */
export function describeIncident(s: IncidentState): string {
  const lines = [
    `${s.id}  ${s.severity}  ${s.status}  ${s.title}`,
    `service ${s.service} · impact ${s.impact}${s.securityRelated ? ' · security-related' : ''} · escalation level ${s.escalationLevel}`,
    `opened ${s.createdAt}${s.acknowledgedBy ? ` · acknowledged by ${s.acknowledgedBy} at ${s.acknowledgedAt}` : ''}${s.commander ? ` · commander ${s.commander}` : ''}`,
  ];
  if (s.resolvedAt) lines.push(`resolved ${s.resolvedAt} by ${s.resolvedBy}: ${s.rootCause}`);
  if (s.nextUpdateDue && !s.resolvedAt) lines.push(`next update due ${s.nextUpdateDue}`);
  lines.push('', 'timeline:');
  for (const t of s.timeline)
    lines.push(`  ${t.at}  ${t.kind.padEnd(20)} ${t.actor.padEnd(12)} ${t.message}`);
  return lines.join('\n');
}

/** `list`: one line per incident, newest first (the gateway's order). */
export function incidentTable(incidents: readonly IncidentSummary[]): string {
  if (incidents.length === 0) return 'no incidents';
  return incidents
    .map((i) => `${i.id}  ${i.severity}  ${i.status.padEnd(12)} ${i.createdAt}  ${i.title}`)
    .join('\n');
}

/** `simulate`: who would be notified when, relative to the opening. */
export function simulationTable(steps: readonly SimulationStep[]): string {
  return steps
    .map((s) => {
      const who = s.person ? `${s.person} (${s.role}) via ${s.channels.join(', ')}` : '(nobody new)';
      return `+${String(s.afterSeconds).padStart(6)}s  L${s.level}  ${s.reason.padEnd(17)} ${who}`;
    })
    .join('\n');
}

/** The JSON the CLI prints: indented, one document per invocation. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
