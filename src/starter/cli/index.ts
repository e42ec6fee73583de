import { fileURLToPath } from 'node:url';
import { IncidentRecordFile, incidentRecordDir } from '../../incident-record-file.ts';
import type { Client } from '@temporalio/client';
import { CommanderError } from 'commander';
import { loadSettings } from '../../config.ts';
import type { Settings } from '../../config.ts';
import type { IncidentState } from '../../domain/incident.ts';
import { simulate, simulationSteps } from '../../domain/simulation.ts';
import { readOutbox } from '../../outbox-file.ts';
import { appendDeadLetterEvent, deadLetterPath, readDeadLetters } from '../../deadletter-file.ts';
import { policySnapshotDir } from '../../policy-snapshots.ts';
import { alertSources } from '../api/routes/alert-ingest.ts';
import { isTemporalUnavailable } from '../client/errors.ts';
import type { IncidentGateway, IngestResult } from '../client/incidents.ts';
import { splitWatchdogAlerts } from '../../domain/watchdog.ts';
import { watchdogWorkflowId } from '../../contract/workflow-ids.ts';
import type { MaintenanceStore } from '../client/maintenance.ts';
import { ApiIncidents, apiModeSettings } from './api-gateway.ts';
import type { ApiModeSettings, CliIncidents } from './api-gateway.ts';
import { CliError, EXIT, toCliError } from './errors.ts';
import {
  deadLetterTable,
  describeIncident,
  describeWindow,
  incidentTable,
  maintenanceTable,
  outboxTable,
  replayTable,
  simulationTable,
  toJson,
} from './output.ts';
import type { ReplayOutcome } from './output.ts';
import { buildProgram } from './program.ts';
import type { CliRequest, GlobalOptions } from './program.ts';

/**
 * `incident <command>`, the engineer's CLI (DESIGN.md "CLI"): `program.ts` parses and validates,
 * this file loads the settings, talks to Temporal through the gateway and prints. It talks to
 * Temporal directly, like the `temporal` CLI — or, in API mode (`INCIDENT_API_URL` and `INCIDENT_TOKEN`
 * set), to the engineer API as the token's person, never to Temporal (`api-gateway.ts`).
 */

export { EXIT };

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Injected by tests; otherwise a real client from the settings. */
  connect?: (settings: Settings) => Promise<Client>;
  /** Injected by tests instead of Temporal altogether: the gateway the commands call. */
  gateway?: (settings: Settings) => IncidentGateway;
  /** Injected by tests instead of Temporal: the maintenance windows `maintenance …` works on. */
  maintenance?: (settings: Settings) => MaintenanceStore;
  /** API mode: how long one request may take (default `API_TIMEOUT_MS`). */
  apiTimeoutMs?: number;
}

/** What a command printed: its JSON value and, lazily, its human rendering; and its exit code (default 0). */
interface Outcome {
  value: unknown;
  human: () => string;
  exitCode?: number;
}

/** Runs one CLI invocation; returns the exit code. Never exits the process. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const parsed: { request?: CliRequest } = {};
  const program = buildProgram(io, (request) => {
    parsed.request = request;
  });
  let settings: Settings | undefined;
  try {
    try {
      program.parse(argv, { from: 'user' });
    } catch (err) {
      // `--help` and `help [command]`: the help went to stdout.
      if (err instanceof CommanderError && err.exitCode === 0) return EXIT.ok;
      // No command: commander printed the usage on stderr.
      if (err instanceof CommanderError && err.code === 'commander.help')
        throw new CliError('USAGE', 'missing command');
      throw err;
    }
    if (!parsed.request) throw new CliError('USAGE', 'missing command');
    const api = apiModeSettings(io.env);
    if (api && parsed.request.command !== 'simulate') {
      const claimedBy = program.opts<GlobalOptions>().by?.trim();
      const outcome = await executeThroughApi(parsed.request, api, io, claimedBy);
      io.out(json(program) ? toJson(outcome.value) : outcome.human());
      return EXIT.ok;
    }
    if (parsed.request.command === 'outbox' || parsed.request.command === 'deadletter-list') {
      // A local file: no policy, no Temporal.
      const outcome =
        parsed.request.command === 'outbox'
          ? await listOutbox(parsed.request.filter, io.env)
          : await listDeadLetters(parsed.request.filter, io.env);
      io.out(json(program) ? toJson(outcome.value) : outcome.human());
      return EXIT.ok;
    }
    try {
      settings = loadSettings(io.env);
    } catch (err) {
      throw new CliError('CONFIG', err instanceof Error ? err.message : String(err));
    }
    const outcome = await execute(parsed.request, settings, io);
    io.out(json(program) ? toJson(outcome.value) : outcome.human());
    return outcome.exitCode ?? EXIT.ok;
  } catch (err) {
    const error = toCliError(err, settings?.temporal.address);
    io.err(`incident: ${error.message}`);
    if (json(program)) io.out(JSON.stringify(error));
    return error.exitCode;
  }
}

function json(program: { opts: () => GlobalOptions }): boolean {
  return program.opts().json === true;
}

/** Every command but `outbox` and `deadletter list`, which read a local file before any settings are loaded. */
async function execute(
  request: Exclude<CliRequest, { command: 'outbox' | 'deadletter-list' }>,
  settings: Settings,
  io: CliIo,
): Promise<Outcome> {
  if (request.command === 'simulate') {
    const { options } = request;
    const steps = simulationSteps(simulate(settings.policy, options), options.at);
    return { value: { severity: options.severity, steps }, human: () => simulationTable(steps) };
  }
  if (
    request.command === 'maintenance-add' ||
    request.command === 'maintenance-list' ||
    request.command === 'maintenance-end'
  ) {
    const maintenanceRequest = request;
    return withMaintenance(settings, io, async (maintenance): Promise<Outcome> => {
      const request = maintenanceRequest;
      switch (request.command) {
        case 'maintenance-add': {
          const window = await maintenance.add(request.input);
          return { value: window, human: () => `added ${describeWindow(window)}` };
        }
        case 'maintenance-list': {
          const windows = await maintenance.list();
          return { value: windows, human: () => maintenanceTable(windows) };
        }
        case 'maintenance-end': {
          const window = await maintenance.end(request.id, request.by);
          return { value: window, human: () => `ended ${describeWindow(window)}` };
        }
      }
    });
  }
  return withGateway(settings, io, async (incidents) =>
    request.command === 'deadletter-replay'
      ? replayDeadLetters(request.ids, settings, incidents, io.env)
      : incidentCommand(request, incidents),
  );
}

/** The incident commands, the same in both modes: through Temporal or through the API. */
async function incidentCommand(
  request: Extract<CliRequest, { command: 'list' | 'show' | 'declare' | 'operate' }>,
  incidents: CliIncidents,
): Promise<Outcome> {
  const incident = (state: IncidentState): Outcome => ({
    value: state,
    human: () => describeIncident(state),
  });
  switch (request.command) {
    case 'list': {
      const list = await incidents.listIncidents(request.filter);
      return { value: list, human: () => incidentTable(list) };
    }
    case 'show':
      return incident(await incidents.getIncident(request.id, request.full ? { full: true } : {}));
    case 'declare':
      return incident(await incidents.declare(request.input));
    case 'operate':
      return incident(await incidents.operate(request.id, request.operation, request.argument));
  }
}

/**
 * API mode: every command but `simulate` (local) through the API as the person of INCIDENT_TOKEN. An explicit
 * `--by` must name that person (the API records the token's person whatever the request says, so a `--by` that
 * differed would be silently wrong); INCIDENT_USER is ignored. Commands with no API route are refused (exit 2).
 */
async function executeThroughApi(
  request: Exclude<CliRequest, { command: 'simulate' }>,
  settings: ApiModeSettings,
  io: CliIo,
  claimedBy: string | undefined,
): Promise<Outcome> {
  const api = new ApiIncidents(settings, io.apiTimeoutMs === undefined ? {} : { timeoutMs: io.apiTimeoutMs });
  switch (request.command) {
    case 'maintenance-add':
    case 'maintenance-list':
    case 'maintenance-end':
      throw new CliError(
        'NOT_IN_API_MODE',
        'maintenance is not available in API mode (INCIDENT_API_URL): the API has no route for maintenance windows; someone with access to Temporal runs it',
      );
    case 'deadletter-list':
    case 'deadletter-replay':
      throw new CliError(
        'NOT_IN_API_MODE',
        "deadletter is not available in API mode (INCIDENT_API_URL): the dead-letter file is on the API's host; run it there",
      );
    case 'outbox': {
      const { channel, incidentId, limit } = request.filter;
      const messages = (await api.outbox(channel))
        .filter((m) => incidentId === undefined || m.incidentId === incidentId)
        .slice(0, limit);
      return { value: messages, human: () => outboxTable(messages, `${api.origin}/outbox`) };
    }
    default: {
      if (claimedBy) {
        const handle = await api.whoami();
        if (handle !== claimedBy)
          throw new CliError(
            'USAGE',
            `--by ${claimedBy}: in API mode you act as ${handle}, the person of INCIDENT_TOKEN (drop --by, or use ${claimedBy}'s own token)`,
          );
      }
      return incidentCommand(request, api);
    }
  }
}

/** `incident deadletter list`: the dead-letter file the API writes, newest first. */
async function listDeadLetters(
  filter: { status?: 'pending' | 'replayed'; limit: number },
  env: NodeJS.ProcessEnv,
): Promise<Outcome> {
  const file = deadLetterPath(env);
  const letters = (await readDeadLetters(file, filter)).reverse();
  return { value: letters, human: () => deadLetterTable(letters, file) };
}

/**
 * `incident deadletter replay <id>|--all`: each letter's body through its webhook's mapping and the same
 * ingestion (signal-with-start on its group's workflow) as when it came in, then marked `replayed` with what
 * it did, or `replay_failed` with why (it stays pending; exit 1). An unreachable Temporal stops the replay
 * (exit 3) and marks nothing. Replaying twice is harmless (the group's workflow knows its alerts), but a
 * letter already replayed is refused by id.
 */
async function replayDeadLetters(
  ids: string[] | 'all',
  settings: Settings,
  incidents: IncidentGateway,
  env: NodeJS.ProcessEnv,
): Promise<Outcome> {
  const file = deadLetterPath(env);
  const letters = await readDeadLetters(file);
  const chosen =
    ids === 'all'
      ? letters.filter((l) => l.status === 'pending')
      : ids.map((id) => {
          const letter = letters.find((l) => l.id === id);
          if (!letter) throw new CliError('NOT_FOUND', `no dead letter ${id} in ${file}`);
          if (letter.status === 'replayed')
            throw new CliError(
              'REFUSED',
              `${id} was replayed at ${letter.replayedAt ?? '?'} (${letter.result?.action ?? '?'} ${letter.result?.id ?? ''})`.trim(),
            );
          return letter;
        });
  const sources = alertSources(settings.policy);
  const outcomes: ReplayOutcome[] = [];
  for (const letter of chosen) {
    try {
      const mapped = sources[letter.source](letter.body, letter.at);
      if (!('alerts' in mapped)) throw new Error(`not a valid payload: ${mapped.message}`);
      // As the webhook: Watchdog alerts never open an incident (and a replayed heartbeat is long stale).
      const split = splitWatchdogAlerts(settings.policy, mapped);
      const batch = split ? split.rest : mapped;
      const result: IngestResult = batch
        ? await incidents.ingestAlerts(batch)
        : { id: null, workflowId: watchdogWorkflowId(mapped.receiver), action: 'ignored' };
      await appendDeadLetterEvent(file, {
        event: 'replayed',
        id: letter.id,
        at: new Date().toISOString(),
        result,
      });
      outcomes.push({ id: letter.id, status: 'replayed', result });
    } catch (err) {
      if (isTemporalUnavailable(err)) throw err;
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      await appendDeadLetterEvent(file, {
        event: 'replay_failed',
        id: letter.id,
        at: new Date().toISOString(),
        error,
      });
      outcomes.push({ id: letter.id, status: 'failed', error });
    }
  }
  return {
    value: outcomes,
    human: () => replayTable(outcomes),
    exitCode: outcomes.some((o) => o.status === 'failed') ? EXIT.refused : EXIT.ok,
  };
}

/** `incident outbox`: the local outbox file the worker writes when a channel has no provider. */
async function listOutbox(
  filter: { channel?: string; incidentId?: string; limit: number },
  env: NodeJS.ProcessEnv,
): Promise<Outcome> {
  const file = env['INCIDENT_OUTBOX'];
  if (!file) throw new CliError('OUTBOX_OFF', 'the outbox is off (set INCIDENT_OUTBOX, as npm start does)');
  const messages = await readOutbox(file, filter);
  return { value: messages, human: () => outboxTable(messages, file) };
}

/** Runs `use` with the injected maintenance store, or with one on a fresh connection closed afterwards. */
async function withMaintenance<T>(
  settings: Settings,
  io: CliIo,
  use: (maintenance: MaintenanceStore) => Promise<T>,
): Promise<T> {
  if (io.maintenance) return use(io.maintenance(settings));
  const [{ connectClient }, { TemporalMaintenance }] = await Promise.all([
    import('../client/connection.ts'),
    import('../client/maintenance.ts'),
  ]);
  const client = await (io.connect ?? ((s: Settings) => connectClient(s.temporal)))(settings);
  try {
    return await use(new TemporalMaintenance(client, settings.temporal.taskQueue, settings.policy));
  } finally {
    await client.connection.close();
  }
}

/** Runs `use` with the injected gateway, or with one on a fresh connection that is closed afterwards. */
async function withGateway<T>(
  settings: Settings,
  io: CliIo,
  use: (incidents: IncidentGateway) => Promise<T>,
): Promise<T> {
  if (io.gateway) return use(io.gateway(settings));
  // Loaded on demand: the Temporal client takes over a second to import, which `--help`, usage errors
  // and `simulate` need not wait for.
  const [{ connectClient }, { TemporalIncidents }] = await Promise.all([
    import('../client/connection.ts'),
    import('../client/incidents.ts'),
  ]);
  const client = await (io.connect ?? ((s: Settings) => connectClient(s.temporal)))(settings);
  try {
    // `declare` names the policy by hash, its snapshot written where the workers look (src/policy-snapshots.ts).
    return await use(
      new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy, {
        policySnapshotDir: policySnapshotDir(io.env),
        records: new IncidentRecordFile(incidentRecordDir(io.env)),
      }),
    );
  } finally {
    await client.connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runCli(process.argv.slice(2), {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    env: process.env,
  }).then(
    (code) => exitWhenFlushed(code),
    (err: unknown) => {
      console.error(`incident: ${err instanceof Error ? err.message : String(err)}`);
      exitWhenFlushed(EXIT.refused);
    },
  );
}

/**
 * Exits once stdout and stderr have taken everything written: writes to a pipe are asynchronous, and
 * `process.exit` right after a large `show --full --json` would cut it short.
 */
function exitWhenFlushed(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
