/**
 * Which Temporal server `npm start` uses, and how far it may change it. A server answering on loopback is not
 * necessarily a laptop's: `kubectl port-forward svc/temporal-frontend 7233` puts production there too. So
 * `npm start` adopts, and prepares (search attributes, 35-day retention), only a dev server it started
 * itself — recorded in a marker file in its data directory and checked against the running process — and
 * uses a server it did not start only when `TEMPORAL_ADDRESS` names it explicitly; then it registers the
 * search attributes the workflows cannot run without and leaves the namespace's retention alone. A server
 * answering at the default address that it did not start is refused, with what to do.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

/** The marker of the dev server `npm start` started, in its data directory. */
export const DEV_SERVER_MARKER = 'temporal-dev-server.json';

/** What the marker records. */
export interface DevServerMarker {
  /** Pid of the `temporal server start-dev` process (or of the wrapper that runs it). */
  pid: number;
  /** `127.0.0.1:<port>`. */
  address: string;
  /** Its SQLite file. */
  dbFile: string;
  startedAt: string;
}

/** How `npm start` goes on with the Temporal server at its address. */
export type TemporalPlan<C> =
  /** Not loopback: a cluster the worker and API reach with their own settings; npm start neither starts nor prepares it. */
  | { kind: 'remote' }
  /** Nothing answers: start the dev server (and write the marker). */
  | { kind: 'start' }
  /** The dev server npm start started (the marker's, still running): prepare it fully. */
  | { kind: 'own'; connection: C; marker: DevServerMarker }
  /** A server npm start did not start, named by TEMPORAL_ADDRESS: search attributes only, retention untouched. */
  | { kind: 'named'; connection: C }
  /** A server npm start did not start, at the default address: not used (close the connection, say why). */
  | { kind: 'foreign'; connection: C; reason: string };

export interface PlanOptions<C> {
  /** host:port. */
  address: string;
  /** Whether TEMPORAL_ADDRESS was set (the address is the user's choice, not the default). */
  explicit: boolean;
  /** npm start's data directory, where the marker is. */
  dataDir: string;
  /** A connection to the server at `address` if one answers (soon), else undefined. */
  probe: () => Promise<C | undefined>;
  /** A process's command line; default from /proc, else `ps`. */
  commandLine?: (pid: number) => Promise<string[] | undefined>;
}

/** Whether `host` is this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return ['localhost', '::1', '[::1]'].includes(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `host:port` split, or an error naming TEMPORAL_ADDRESS. */
export function parseAddress(address: string): { host: string; port: number } {
  const separator = address.lastIndexOf(':');
  const port = Number(address.slice(separator + 1));
  if (separator <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`TEMPORAL_ADDRESS must be host:port, got ${address}`);
  return { host: address.slice(0, separator), port };
}

/** Decides which server to use and how (see the module's comment). */
export async function planTemporal<C>(opts: PlanOptions<C>): Promise<TemporalPlan<C>> {
  const { host, port } = parseAddress(opts.address);
  if (!isLoopback(host)) return { kind: 'remote' };
  const connection = await opts.probe();
  if (connection === undefined) return { kind: 'start' };
  const marker = await ownDevServer(opts.dataDir, port, opts.commandLine ?? commandLineOf);
  if (marker) return { kind: 'own', connection, marker };
  if (opts.explicit) return { kind: 'named', connection };
  return {
    kind: 'foreign',
    connection,
    reason:
      `a Temporal server that npm start did not start answers at ${opts.address} (a kubectl port-forward ` +
      `answers on loopback too), so npm start neither uses nor changes it. Stop it, or set ` +
      `TEMPORAL_ADDRESS=${opts.address} to use it as it is (npm start then only registers missing search ` +
      `attributes and leaves its retention alone), or set TEMPORAL_ADDRESS to a free port for a dev server of its own`,
  };
}

/** Records the dev server npm start just started. */
export async function writeDevServerMarker(dataDir: string, marker: DevServerMarker): Promise<void> {
  await writeFile(path.join(dataDir, DEV_SERVER_MARKER), `${JSON.stringify(marker)}\n`, { mode: 0o600 });
}

/** Removes the marker once npm start has stopped its server (only if it still names that process). */
export async function removeDevServerMarker(dataDir: string, pid: number): Promise<void> {
  const marker = await readMarker(dataDir);
  if (marker?.pid === pid) await rm(path.join(dataDir, DEV_SERVER_MARKER), { force: true });
}

/**
 * The marker, if it names a dev server on `port` that still runs: the process with its pid must be
 * `… server start-dev … --port <port> … --db-filename <its file>` — a reused pid, or another server on
 * the port, is not ours.
 */
async function ownDevServer(
  dataDir: string,
  port: number,
  commandLine: (pid: number) => Promise<string[] | undefined>,
): Promise<DevServerMarker | undefined> {
  const marker = await readMarker(dataDir);
  if (!marker || parseAddress(marker.address).port !== port) return undefined;
  const args = await commandLine(marker.pid);
  if (!args) return undefined;
  const follows = (flag: string, value: string) => args.some((a, i) => a === flag && args[i + 1] === value);
  const ours =
    args.includes('start-dev') && follows('--port', String(port)) && follows('--db-filename', marker.dbFile);
  return ours ? marker : undefined;
}

async function readMarker(dataDir: string): Promise<DevServerMarker | undefined> {
  try {
    const value = JSON.parse(
      await readFile(path.join(dataDir, DEV_SERVER_MARKER), 'utf8'),
    ) as Partial<DevServerMarker>;
    if (
      typeof value.pid !== 'number' ||
      typeof value.address !== 'string' ||
      typeof value.dbFile !== 'string'
    )
      return undefined;
    return value as DevServerMarker;
  } catch {
    return undefined; // none, or unreadable: no server of ours
  }
}

/** A running process's arguments (Linux /proc; elsewhere `ps`), or undefined if there is no such process. */
export async function commandLineOf(pid: number): Promise<string[] | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a) => a !== '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux') return undefined;
  }
  try {
    // No /proc (macOS): `ps` joins the arguments with spaces, enough for the flags we look for.
    const { stdout } = await promisify(execFile)('ps', ['-o', 'args=', '-p', String(pid)]);
    const line = stdout.trim();
    return line === '' ? undefined : line.split(/\s+/);
  } catch {
    return undefined;
  }
}
