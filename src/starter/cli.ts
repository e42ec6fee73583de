import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { loadSettings } from '../config.ts';
import type { Settings } from '../config.ts';
import { simulate } from '../domain/escalation.ts';
import type { IncidentState } from '../domain/incident.ts';
import { PolicyError } from '../domain/policy.ts';
import { IMPACTS, SEVERITIES, isSeverity } from '../domain/severity.ts';
import type { Impact, Severity } from '../domain/severity.ts';
import { isTemporalUnavailable } from './errors.ts';
import { IncidentNotFoundError, IncidentRefusedError, TemporalIncidents } from './incidents.ts';
import type { OperationName } from './incidents.ts';
import { connectClient } from './temporal.ts';

/** Exit codes: what a script driving the CLI can rely on. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

const USAGE = `usage: incident <command> [options] [--json]

commands:
  list [--status <s>] [--severity <P>]         incidents, newest first
  show <id>                                    one incident's state and timeline
  declare --severity <P> --title <t> [--service <s>] [--impact critical|high|medium|low] [--security]
  ack <id>                                     acknowledge
  update <id> --message <text> [--action <text>]... [--focus <text>] [--eta <text>] [--public]
  escalate <id> --reason <text>
  severity <id> <P0..P3> [--reason <text>]
  commander <id> <person>
  security <id> --finding <text> [--related]
  mitigate <id> [--note <text>]
  resolve <id> --root-cause <text> [--prevention <text>]
  simulate --severity <P> [--no-ack] [--impact <i>] [--security] [--at <iso>]

--by <handle> names the acting engineer (default: $INCIDENT_USER).`;

class UsageError extends Error {}

const OPTIONS = {
  json: { type: 'boolean' },
  by: { type: 'string' },
  status: { type: 'string' },
  severity: { type: 'string' },
  title: { type: 'string' },
  service: { type: 'string' },
  impact: { type: 'string' },
  security: { type: 'boolean' },
  message: { type: 'string' },
  action: { type: 'string', multiple: true },
  focus: { type: 'string' },
  eta: { type: 'string' },
  public: { type: 'boolean' },
  reason: { type: 'string' },
  finding: { type: 'string' },
  related: { type: 'boolean' },
  note: { type: 'string' },
  'root-cause': { type: 'string' },
  prevention: { type: 'string' },
  'no-ack': { type: 'boolean' },
  at: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
}

function severityArg(value: string | undefined, what = '--severity'): Severity {
  const s = need(value, what).toUpperCase();
  if (!isSeverity(s)) throw new UsageError(`${what} must be one of ${SEVERITIES.join(', ')}`);
  return s;
}

function impactArg(value: string | undefined): Impact | undefined {
  if (value === undefined) return undefined;
  if (!(IMPACTS as readonly string[]).includes(value))
    throw new UsageError(`--impact must be one of ${IMPACTS.join(', ')}`);
  return value as Impact;
}

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Injected by tests; otherwise a real client from the settings. */
  connect?: (settings: Settings) => Promise<Client>;
}

/** Runs one CLI invocation; returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json');
  const fail = (code: number, errorCode: string, message: string): number => {
    io.err(`incident: ${message}`);
    if (json) io.out(JSON.stringify({ error: { code: errorCode, message } }));
    return code;
  };
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
    json = values.json === true;
  } catch (err) {
    return fail(EXIT.usage, 'USAGE', `${(err as Error).message}\n${USAGE}`);
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(USAGE);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  let settings: Settings;
  try {
    settings = loadSettings(io.env);
  } catch (err) {
    return fail(EXIT.usage, 'CONFIG', err instanceof PolicyError ? err.message : String(err));
  }
  const print = (value: unknown, human: () => string) =>
    io.out(json ? JSON.stringify(value, null, 2) : human());

  try {
    if (command === 'simulate') {
      const severity = severityArg(values.severity);
      const at = values.at ? Date.parse(values.at) : Date.now();
      if (Number.isNaN(at))
        throw new UsageError('--at must be an ISO date-time such as 2026-11-27T16:00:00Z');
      const options: Parameters<typeof simulate>[1] = {
        severity,
        at,
        securityRelated: values.security === true,
      };
      const impact = impactArg(values.impact);
      if (impact) options.impact = impact;
      if (values['no-ack'] !== true) options.acknowledgeAfterMs = 0;
      const steps = simulate(settings.policy, options).map((n) => ({
        afterSeconds: Math.round((n.at - at) / 1000),
        level: n.level,
        role: n.role,
        person: n.person,
        channels: n.channels,
        reason: n.reason,
      }));
      print({ severity, steps }, () =>
        steps
          .map(
            (s) =>
              `+${String(s.afterSeconds).padStart(6)}s  L${s.level}  ${s.reason.padEnd(17)} ${s.person ? `${s.person} (${s.role}) via ${s.channels.join(', ')}` : '(nobody new)'}`,
          )
          .join('\n'),
      );
      return EXIT.ok;
    }

    const by = values.by ?? io.env['INCIDENT_USER'];
    const id = () => need(rest[0], 'incident id');
    const operations: Record<string, () => [OperationName, object]> = {
      ack: () => ['ack', {}],
      update: () => [
        'update',
        {
          message: need(values.message, '--message'),
          ...(values.action ? { actions: values.action } : {}),
          ...(values.focus ? { focus: values.focus } : {}),
          ...(values.eta ? { eta: values.eta } : {}),
          ...(values.public ? { public: true } : {}),
        },
      ],
      escalate: () => ['escalate', { reason: need(values.reason, '--reason') }],
      severity: () => [
        'severity',
        { severity: severityArg(rest[1], 'severity'), ...(values.reason ? { reason: values.reason } : {}) },
      ],
      commander: () => ['commander', { commander: need(rest[1], 'person') }],
      security: () => [
        'security',
        { finding: need(values.finding, '--finding'), related: values.related === true },
      ],
      mitigate: () => ['mitigate', values.note ? { note: values.note } : {}],
      resolve: () => [
        'resolve',
        {
          rootCause: need(values['root-cause'], '--root-cause'),
          ...(values.prevention ? { prevention: values.prevention } : {}),
        },
      ],
    };
    if (!['list', 'show', 'declare', ...Object.keys(operations)].includes(command)) {
      throw new UsageError(`unknown command "${command}"`);
    }
    // Validate the arguments before touching the network.
    const operation = operations[command]?.();
    const incidentId = command === 'list' || command === 'declare' ? undefined : id();
    if ((operation || command === 'declare') && !by)
      throw new UsageError('missing --by <handle> (or set INCIDENT_USER)');
    const declareInput =
      command === 'declare'
        ? {
            by: by as string,
            severity: severityArg(values.severity),
            title: need(values.title, '--title'),
            ...(values.service ? { service: values.service } : {}),
            ...(impactArg(values.impact) ? { impact: impactArg(values.impact) as Impact } : {}),
            ...(values.security ? { securityRelated: true } : {}),
          }
        : undefined;

    const client = await (io.connect ?? ((s: Settings) => connectClient(s.temporal)))(settings);
    try {
      const incidents = new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy);
      if (command === 'list') {
        const list = await incidents.listIncidents({
          ...(values.status ? { status: values.status } : {}),
          ...(values.severity ? { severity: values.severity } : {}),
        });
        print(list, () =>
          list.length === 0
            ? 'no incidents'
            : list
                .map((i) => `${i.id}  ${i.severity}  ${i.status.padEnd(12)} ${i.createdAt}  ${i.title}`)
                .join('\n'),
        );
        return EXIT.ok;
      }
      let state: IncidentState;
      if (declareInput) state = await incidents.declare(declareInput);
      else if (operation)
        state = await incidents.operate(incidentId as string, operation[0], { ...operation[1], by });
      else state = await incidents.getIncident(incidentId as string);
      print(state, () => describeIncident(state));
      return EXIT.ok;
    } finally {
      await client.connection.close();
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(EXIT.usage, 'USAGE', `${err.message}\n${USAGE}`);
    if (err instanceof IncidentNotFoundError) return fail(EXIT.refused, 'NOT_FOUND', err.message);
    if (err instanceof IncidentRefusedError) return fail(EXIT.refused, 'REFUSED', err.message);
    if (isTemporalUnavailable(err)) {
      return fail(
        EXIT.unreachable,
        'TEMPORAL_UNAVAILABLE',
        `Temporal is unreachable at ${settings.temporal.address}`,
      );
    }
    return fail(EXIT.refused, 'ERROR', err instanceof Error ? err.message : String(err));
  }
}

function describeIncident(s: IncidentState): string {
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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runCli(process.argv.slice(2), {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    env: process.env,
  }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`incident: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
