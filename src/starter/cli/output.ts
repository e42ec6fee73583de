import type { IncidentState } from '../../domain/incident.ts';
import type { PlaybookStep } from '../../domain/playbook.ts';
import type { SimulationStep } from '../../domain/simulation.ts';
import type { IncidentSummary } from '../client/incidents.ts';
import type { MaintenanceWindow } from '../../domain/maintenance.ts';
import type { OutboxEntry } from '../../outbox-file.ts';
import type { DeadLetterView } from '../../deadletter-file.ts';
import type { MaintenanceWindowView } from '../client/maintenance.ts';

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
  const p = s.playbook;
  if (p) {
    const outcome = p.outcome ? ` · outcome ${p.outcome}${p.reason ? `: ${p.reason}` : ''}` : '';
    lines.push(
      '',
      `playbook ${p.name}: ${p.status}${p.dryRun ? ' (dry run)' : ''}${outcome}${p.notStarted ? ` (not started: ${p.notStarted})` : ''}`,
    );
    if (p.pendingApproval) {
      lines.push(
        `  WAITING FOR APPROVAL until ${p.pendingApproval.until}: ${p.pendingApproval.summary}`,
        `  incident approve ${s.id} ${p.pendingApproval.stepId} [--reject]`,
      );
    }
    for (const step of p.steps) lines.push(`  ${stepLine(step)}`);
  }
  if (s.investigation) {
    lines.push('', `initial investigation: ${s.investigation.status}`);
    for (const step of s.investigation.steps) lines.push(`  ${stepLine(step)}`);
  }
  lines.push('', 'timeline:');
  for (const t of s.timeline)
    lines.push(`  ${t.at}  ${t.kind.padEnd(20)} ${t.actor.padEnd(12)} ${t.message}`);
  return lines.join('\n');
}

/** One playbook step: when, which, how it went, what it read and changed. */
function stepLine(step: PlaybookStep): string {
  const read = step.read
    ? ` [read ${step.read.query ?? step.read.source} = ${String(step.read.value)}${step.read.threshold ? `; threshold ${step.read.threshold}` : ''}]`
    : '';
  const changed = step.changed
    ? ` [${step.changed.object}: ${step.changed.before} → ${step.changed.after}]`
    : '';
  return `${step.at}  ${step.id.padEnd(24)} ${step.status.padEnd(17)} ${step.summary}${read}${changed}`;
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

/** One maintenance window on one line: id, service, times, reason, who. */
export function describeWindow(w: MaintenanceWindow): string {
  const end = w.endedAt ? `${w.endedAt} (ended early${w.endedBy ? ` by ${w.endedBy}` : ''})` : w.to;
  return `${w.id}  ${w.service}  ${w.from} → ${end}  ${w.reason}${w.createdBy ? `  (by ${w.createdBy})` : ''}`;
}

/** `maintenance list`: the policy's windows, then the operators', each with its state now. */
export function maintenanceTable(windows: readonly MaintenanceWindowView[]): string {
  if (windows.length === 0) return 'no maintenance windows';
  return windows.map((w) => `${w.state.padEnd(8)} ${w.source.padEnd(8)} ${describeWindow(w)}`).join('\n');
}

/** `outbox`: one line per message, newest first: time, channel, target, the text's first line. */
export function outboxTable(messages: readonly OutboxEntry[], file: string): string {
  if (messages.length === 0) return `the outbox (${file}) is empty`;
  return messages
    .map((m) => {
      const first = (m.subject ?? m.text).split('\n').find((line) => line.trim() !== '') ?? '';
      return `${m.at}  ${m.channel.padEnd(7)} ${m.target}  ${m.incidentId}  ${first.trim()}`;
    })
    .join('\n');
}

/** `deadletter list`: one line per letter, newest first: id, time, status, source, group, error. */
export function deadLetterTable(letters: readonly DeadLetterView[], file: string): string {
  if (letters.length === 0) return `no dead letters (${file})`;
  return letters
    .map((l) => {
      const group =
        l.groupKey !== undefined ? `  ${l.receiver ?? ''} ${l.groupKey} (${l.alerts ?? 0} alerts)` : '';
      const status =
        l.status === 'replayed'
          ? `replayed ${l.replayedAt ?? ''}: ${l.result?.action ?? ''} ${l.result?.id ?? ''}`.trim()
          : `pending${l.failedReplays > 0 ? ` (${l.failedReplays} failed replays: ${l.lastError ?? ''})` : ''}`;
      const error = l.error.split('\n')[0] ?? '';
      return `${l.id}  ${l.at}  ${l.source.padEnd(12)} ${l.stage.padEnd(7)} ${status}${group}\n    ${error}`;
    })
    .join('\n');
}

/** What `deadletter replay` did with each letter. */
export interface ReplayOutcome {
  id: string;
  status: 'replayed' | 'failed';
  result?: { id: string | null; workflowId: string; action: string };
  error?: string;
}

/** `deadletter replay`: one line per letter. */
export function replayTable(outcomes: readonly ReplayOutcome[]): string {
  if (outcomes.length === 0) return 'no pending dead letters';
  return outcomes
    .map((o) =>
      o.status === 'replayed'
        ? `${o.id}  replayed: ${o.result?.action ?? ''} ${o.result?.id ?? ''} (${o.result?.workflowId ?? ''})`
        : `${o.id}  failed again: ${o.error ?? ''}`,
    )
    .join('\n');
}

/** The JSON the CLI prints: indented, one document per invocation. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
