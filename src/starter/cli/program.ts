import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { isIncidentId } from '../../contract/incident-id.ts';
import { OPERATION_LIST, operationInputs } from '../../contract/operations.ts';
import type { CliField, OperationArgs, OperationName, OperationSpec } from '../../contract/operations.ts';
import type { IncidentStatus } from '../../domain/incident.ts';
import { IMPACTS, SEVERITIES } from '../../domain/severity.ts';
import type { Impact, Severity } from '../../domain/severity.ts';
import type { MaintenanceWindowInput } from '../../domain/maintenance.ts';
import type { SimulateOptions } from '../../domain/simulation.ts';
import type { DeclareInput } from '../client/incidents.ts';
import { TOKEN_ACTOR } from './api-gateway.ts';
import { EXIT } from './errors.ts';

/**
 * The `incident` command line, parsed and validated, without I/O: commander turns argv into one
 * {@link CliRequest} that `runCli` then carries out. Every check that needs no server happens here
 * (severities, impacts, dates, incident ids, each operation's input schema), so a typo is a usage
 * error (exit 2) before any connection to Temporal. The engineer operations are generated from
 * `OPERATION_LIST`: a new operation in the contract is a new command, with its help, and no edit here.
 */

/** What one invocation asks for. */
export type CliRequest =
  | { command: 'list'; filter: { status?: IncidentStatus; severity?: Severity } }
  | { command: 'show'; id: string; full?: boolean }
  | { command: 'declare'; input: DeclareInput }
  | { command: 'simulate'; options: SimulateOptions }
  | { command: 'maintenance-add'; input: MaintenanceWindowInput }
  | { command: 'maintenance-list' }
  | { command: 'maintenance-end'; id: string; by?: string }
  | { command: 'outbox'; filter: { channel?: string; incidentId?: string; limit: number } }
  | { command: 'deadletter-list'; filter: { status?: 'pending' | 'replayed'; limit: number } }
  | { command: 'deadletter-replay'; ids: string[] | 'all' }
  | { command: 'operate'; id: string; operation: OperationName; argument: OperationArgs<OperationName> };

/** Options every command takes. */
export interface GlobalOptions {
  json?: boolean;
  by?: string;
}

export interface ProgramIo {
  /** One chunk of standard output or error, without its final newline. */
  out: (text: string) => void;
  err: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

const STATUSES: readonly IncidentStatus[] = ['triggered', 'acknowledged', 'mitigated', 'resolved'];

/** A parser that accepts one of `choices`, in any case (`p1` is P1), and returns it as spelled there. */
function choice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    const match = choices.find((c) => c.toLowerCase() === value.toLowerCase());
    if (match === undefined) throw new InvalidArgumentError(`It must be one of ${choices.join(', ')}.`);
    return match;
  };
}

function nonBlank(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('It must not be blank.');
  return value;
}

function incidentId(value: string): string {
  if (!isIncidentId(value))
    throw new InvalidArgumentError('An incident id is INC- and 8 hex digits (INC-1a2b3c4d).');
  return value;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `--at`: an ISO 8601 date-time, as epoch milliseconds. */
function isoDateTime(value: string): number {
  const at = Date.parse(value);
  if (!ISO_DATE_TIME.test(value) || Number.isNaN(at))
    throw new InvalidArgumentError('It must be an ISO date-time such as 2026-11-27T16:00:00Z.');
  return at;
}

const severity = choice(SEVERITIES);

/** `--from`/`--to`: an ISO 8601 date-time, normalized to UTC (`2026-03-07T22:00:00.000Z`). */
function isoInstant(value: string): string {
  return new Date(isoDateTime(value)).toISOString();
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('It must be a whole number of at least 1.');
  return n;
}

function deadLetterId(value: string): string {
  if (!/^dl-[0-9a-z]+-[0-9a-f]+$/.test(value))
    throw new InvalidArgumentError('A dead letter id such as dl-mfx3k2a1-1a2b3c4d (see deadletter list).');
  return value;
}

function maintenanceId(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(value))
    throw new InvalidArgumentError('A maintenance window id such as mw-1a2b3c4d (see maintenance list).');
  return value;
}

/** `--severity <P>` of `declare` and `simulate`. */
function severityOption(): Option {
  return new Option('--severity <P>', 'P0, P1, P2 or P3 (required)')
    .argParser(severity)
    .makeOptionMandatory();
}

function impactOption(): Option {
  return new Option('--impact <impact>', `business impact (${IMPACTS.join(', ')})`).argParser(
    choice(IMPACTS),
  );
}

function incidentIdArgument(): Argument {
  return new Argument('<id>', 'the incident (INC-xxxxxxxx)').argParser(incidentId);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The choices of an enum field of an operation's input schema (`severity`), or undefined. */
function enumChoices(schema: z.ZodObject, field: string): readonly string[] | undefined {
  let type = (schema.shape as Record<string, z.ZodType | undefined>)[field];
  while (type instanceof z.ZodOptional || type instanceof z.ZodDefault) type = type.unwrap() as z.ZodType;
  return type instanceof z.ZodEnum ? type.options.map(String) : undefined;
}

function fieldOption(field: CliField & { option: string }, schema: z.ZodObject): Option {
  const option = new Option(
    field.option,
    field.required ? `${field.description} (required)` : field.description,
  );
  const choices = enumChoices(schema, field.field);
  if (field.repeatable) option.argParser(collect);
  else if (choices) option.argParser(choice(choices));
  if (field.required) option.makeOptionMandatory();
  return option;
}

function fieldArgument(field: CliField & { argument: string }, schema: z.ZodObject): Argument {
  const argument = new Argument(field.argument, field.description);
  const choices = enumChoices(schema, field.field);
  if (choices) argument.argParser(choice(choices));
  if (field.required) argument.argRequired();
  else argument.argOptional();
  return argument;
}

/** How a field of an operation's input is spelled on the command line, for error messages. */
function fieldLabel(op: OperationSpec<OperationName>, field: PropertyKey | undefined): string {
  if (field === 'by') return '--by';
  const cli = op.cli.find((f) => f.field === field);
  if (cli?.option) return cli.option.split(' ')[0] ?? cli.option;
  if (cli?.argument) return cli.argument;
  return String(field ?? 'the argument');
}

/**
 * The `incident` program. Nothing in it exits the process or writes to the console: usage errors and
 * `--help` end the parse with a thrown `CommanderError` (`exitOverride`), and all output goes to `io`.
 * `submit` receives the request of a command that parsed and validated.
 */
export function buildProgram(io: ProgramIo, submit: (request: CliRequest) => void): Command {
  const program = new Command('incident');
  // Settings that subcommands inherit must come before the first `.command()`.
  program
    .description('Durable incident response on Temporal: declare, inspect and act on incidents.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, '')),
      writeErr: (text) => io.err(text.replace(/\n$/, '')),
      // runCli prints errors itself: one line on stderr, and JSON with --json.
      outputError: () => {},
    })
    .configureHelp({ showGlobalOptions: true })
    .option('--json', 'print JSON: the incident state, or {"error":{"code","message"}}')
    .option(
      '--by <handle>',
      "the acting engineer, a person of the policy (default: $INCIDENT_USER; in API mode the token's person, whom --by must name if given)",
    );

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  // API mode (INCIDENT_API_URL): the actor is the person of INCIDENT_TOKEN, and the API takes none from the
  // request; an explicit --by is checked against that person before anything is sent (runCli).
  const apiMode = Boolean(io.env['INCIDENT_API_URL']?.trim());
  const actor = (command: Command): string => {
    if (apiMode) return globals().by?.trim() || TOKEN_ACTOR;
    const by = (globals().by ?? io.env['INCIDENT_USER'])?.trim();
    if (!by) command.error('missing --by <handle> (or set INCIDENT_USER)', { exitCode: EXIT.usage });
    return by;
  };

  program
    .command('list')
    .description('incidents, newest first')
    .addOption(
      new Option('--status <status>', `only incidents in this status (${STATUSES.join(', ')})`).argParser(
        choice(STATUSES),
      ),
    )
    .addOption(new Option('--severity <P>', 'only incidents of this severity (P0..P3)').argParser(severity))
    .action((options: { status?: IncidentStatus; severity?: Severity }) => {
      submit({
        command: 'list',
        filter: {
          ...(options.status ? { status: options.status } : {}),
          ...(options.severity ? { severity: options.severity } : {}),
        },
      });
    });

  program
    .command('show')
    .description("one incident's state and timeline")
    .addArgument(incidentIdArgument())
    .option(
      '--full',
      'the whole record: every alert and timeline entry, also those a long incident keeps in its record store (INCIDENT_RECORDS_DIR)',
    )
    .action((id: string, options: { full?: boolean }) =>
      submit({ command: 'show', id, ...(options.full ? { full: true } : {}) }),
    );

  const declare = program
    .command('declare')
    .description('declare an incident by hand')
    .addOption(severityOption())
    .addOption(
      new Option('--title <title>', 'what is wrong, in a few words (required)')
        .argParser(nonBlank)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--service <service>', "the affected service (default: the policy's service)").argParser(
        nonBlank,
      ),
    )
    .addOption(impactOption())
    .option('--security', 'the incident is security-related');
  declare.action(
    (options: {
      severity: Severity;
      title: string;
      service?: string;
      impact?: Impact;
      security?: boolean;
    }) => {
      submit({
        command: 'declare',
        input: {
          by: actor(declare),
          severity: options.severity,
          title: options.title,
          ...(options.service ? { service: options.service } : {}),
          ...(options.impact ? { impact: options.impact } : {}),
          ...(options.security ? { securityRelated: true } : {}),
        },
      });
    },
  );

  for (const op of OPERATION_LIST) addOperation(program, op, actor, submit);

  program
    .command('simulate')
    .description('who an incident would notify, and when, if nobody acted (no server needed)')
    .addOption(severityOption())
    .option('--no-ack', 'nobody acknowledges (default: acknowledged at once)')
    .addOption(impactOption())
    .option('--security', 'the incident is security-related')
    .addOption(new Option('--at <iso>', 'when the incident opens (default: now)').argParser(isoDateTime))
    .action(
      (options: { severity: Severity; ack: boolean; impact?: Impact; security?: boolean; at?: number }) => {
        submit({
          command: 'simulate',
          options: {
            severity: options.severity,
            at: options.at ?? Date.now(),
            securityRelated: options.security === true,
            ...(options.impact ? { impact: options.impact } : {}),
            ...(options.ack ? { acknowledgeAfterMs: 0 } : {}),
          },
        });
      },
    );

  addMaintenance(program, globals, io, submit);

  program
    .command('outbox')
    .description('messages the local outbox holds instead of sending them (INCIDENT_OUTBOX), newest first')
    .option('--channel <channel>', 'only this channel (slack, email, pager, sms, phone, webhook)')
    .addOption(new Option('--incident <id>', 'only this incident (INC-xxxxxxxx)').argParser(incidentId))
    .addOption(new Option('--limit <n>', 'at most this many messages').argParser(positiveInteger).default(50))
    .action((options: { channel?: string; incident?: string; limit: number }) => {
      submit({
        command: 'outbox',
        filter: {
          limit: options.limit,
          ...(options.channel ? { channel: options.channel } : {}),
          ...(options.incident ? { incidentId: options.incident } : {}),
        },
      });
    });

  addDeadLetter(program, submit);

  return program;
}

/**
 * `deadletter list|replay`: alert deliveries the webhook accepted (202 `deadlettered`) but could not ingest,
 * kept in the dead-letter file (INCIDENT_DEADLETTER, else <INCIDENT_DATA_DIR>/deadletter.jsonl).
 */
function addDeadLetter(program: Command, submit: (request: CliRequest) => void): void {
  const deadletter = program
    .command('deadletter')
    .description(
      'alert deliveries the webhook accepted but could not ingest (INCIDENT_DEADLETTER): list and replay them',
    );

  deadletter
    .command('list')
    .description('dead letters, newest first: pending ones and those already replayed')
    .addOption(
      new Option('--status <status>', 'only pending or only replayed ones').argParser(
        choice(['pending', 'replayed'] as const),
      ),
    )
    .addOption(new Option('--limit <n>', 'at most this many').argParser(positiveInteger).default(50))
    .action((options: { status?: 'pending' | 'replayed'; limit: number }) => {
      submit({
        command: 'deadletter-list',
        filter: { limit: options.limit, ...(options.status ? { status: options.status } : {}) },
      });
    });

  const replay = deadletter
    .command('replay')
    .description(
      "submit dead letters again through the webhook's ingestion path, and mark each one replayed (exit 1 if one fails again)",
    )
    .addArgument(new Argument('[id]', 'the dead letter (dl-…)').argParser(deadLetterId))
    .option('--all', 'every pending dead letter, oldest first');
  replay.action((id: string | undefined, options: { all?: boolean }) => {
    if (id !== undefined && options.all)
      replay.error('give a dead letter id or --all, not both', { exitCode: EXIT.usage });
    if (id === undefined && !options.all)
      replay.error('missing dead letter id (or --all)', { exitCode: EXIT.usage });
    submit({ command: 'deadletter-replay', ids: id === undefined ? 'all' : [id] });
  });
}

/**
 * `maintenance add|list|end`: windows during which incidents open and are recorded but page nobody.
 * `--by` (or INCIDENT_USER) is recorded when given, and not required: a window is no incident action.
 */
function addMaintenance(
  program: Command,
  globals: () => GlobalOptions,
  io: ProgramIo,
  submit: (request: CliRequest) => void,
): void {
  const by = (): string | undefined => (globals().by ?? io.env['INCIDENT_USER'])?.trim() || undefined;
  const maintenance = program
    .command('maintenance')
    .description('maintenance windows: matching incidents open and are recorded, but nobody is paged');

  const add = maintenance
    .command('add')
    .description('add a maintenance window')
    .addOption(
      new Option('--service <service>', 'the service id, or * for every service (required)')
        .argParser(nonBlank)
        .makeOptionMandatory(),
    )
    .addOption(new Option('--from <iso>', 'when it starts (default: now)').argParser(isoInstant))
    .addOption(
      new Option('--to <iso>', 'when it ends (required)').argParser(isoInstant).makeOptionMandatory(),
    )
    .addOption(
      new Option('--reason <text>', 'why, e.g. "database migration" (required)')
        .argParser(nonBlank)
        .makeOptionMandatory(),
    );
  add.action((options: { service: string; from?: string; to: string; reason: string }) => {
    const from = options.from ?? new Date().toISOString();
    if (Date.parse(options.to) <= Date.parse(from))
      add.error(`--to: the window must end after it starts (${from})`, { exitCode: EXIT.usage });
    const createdBy = by();
    submit({
      command: 'maintenance-add',
      input: {
        service: options.service.trim(),
        from,
        to: options.to,
        reason: options.reason.trim(),
        ...(createdBy ? { createdBy } : {}),
      },
    });
  });

  maintenance
    .command('list')
    .description("the policy's and the operators' windows: active, upcoming and recently ended")
    .action(() => submit({ command: 'maintenance-list' }));

  maintenance
    .command('end')
    .description('end a maintenance window now')
    .addArgument(new Argument('<id>', 'the window (mw-xxxxxxxx)').argParser(maintenanceId))
    .action((id: string) => {
      const endedBy = by();
      submit({ command: 'maintenance-end', id, ...(endedBy ? { by: endedBy } : {}) });
    });
}

/**
 * One command per engineer operation: `<verb> <id> [positional fields] [options]`, from the
 * operation's `cli` fields; the argument is checked against the operation's input schema (the one the
 * workflow's validator and the API use) before it is submitted.
 */
function addOperation(
  program: Command,
  op: OperationSpec<OperationName>,
  actor: (command: Command) => string,
  submit: (request: CliRequest) => void,
): void {
  const schema: z.ZodObject = operationInputs()[op.name];
  // `playbook run` and `playbook cancel` share their parent command.
  let parent = program;
  for (const word of op.command.slice(0, -1)) {
    parent =
      parent.commands.find((c) => c.name() === word) ?? parent.command(word).description(`${word} commands`);
  }
  const command = parent
    .command(op.command.at(-1) ?? op.verb)
    .description(op.summary)
    .addArgument(incidentIdArgument());
  const positional = op.cli.filter((f): f is CliField & { argument: string } => f.argument !== undefined);
  const options = op.cli.filter((f): f is CliField & { option: string } => f.option !== undefined);
  for (const field of positional) command.addArgument(fieldArgument(field, schema));
  const optionOf = new Map(options.map((field) => [field, fieldOption(field, schema)]));
  for (const option of optionOf.values()) command.addOption(option);

  command.action(() => {
    const [id, ...values] = command.processedArgs as unknown[];
    const given = command.opts<Record<string, unknown>>();
    const argument: Record<string, unknown> = { by: actor(command) };
    positional.forEach((field, i) => {
      if (values[i] !== undefined) argument[field.field] = values[i];
    });
    for (const [field, option] of optionOf) {
      const value = given[option.attributeName()];
      if (value !== undefined) argument[field.field] = field.inverts ? !value : value;
    }
    const parsed = schema.safeParse(argument);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      command.error(`${fieldLabel(op, issue?.path[0])}: ${issue?.message ?? 'invalid'}`, {
        exitCode: EXIT.usage,
      });
    }
    submit({
      command: 'operate',
      id: id as string,
      operation: op.name,
      argument: argument as OperationArgs<OperationName>,
    });
  });
}
