/**
 * Runs the Temporal CLI's dev server (`temporal server start-dev`) as a child process on 127.0.0.1, waits
 * until it answers and prepares its namespace for incident workflows. Used by `npm start`, the e2e tests
 * and the benchmark.
 */
import { TypedSearchAttributes } from '@temporalio/common';
import { incidentSearchAttributes } from '../../src/contract/search-attributes.ts';
import { prepareNamespace, waitForTemporal } from './namespace.ts';
import { freePort, isPortFree } from './ports.ts';
import { startProcess } from './process.ts';
import { ensureTemporalCli } from './tools/index.ts';

export { freePort } from './ports.ts';

/**
 * SQLite settings of a dev server with a db file. WAL lets readers (visibility queries, the UI) run beside
 * the one writer instead of blocking on it, and with WAL `synchronous=normal` syncs at checkpoints rather
 * than on every commit: a crash of the server process loses nothing committed; only a power loss or OS
 * crash can lose the last transactions.
 */
const SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** gRPC port; a free one is picked by the OS if not given. */
  port?: number;
  /** Web UI port; a free one is picked if not given (ignored when headless). */
  uiPort?: number;
  /** SQLite file to persist state in (WAL journal); in-memory (lost on exit) if not given. */
  dbFile?: string;
  /** No web UI. */
  headless?: boolean;
  /** Namespace to create (besides `default`, which always exists) and prepare. Default `default`. */
  namespace?: string;
  /** Receives the server's output lines; default: stderr with a `[temporal]` prefix. */
  log?: (line: string) => void;
  /** `temporal` binary; default {@link ensureTemporalCli}. */
  temporalCli?: string;
  /** How long to wait for the server to answer. Default 60 s. */
  startTimeoutMs?: number;
  /** Retention of closed workflows, see `prepareNamespace`. */
  retentionDays?: number;
  /**
   * Start the server in its own process group, so a Ctrl-C in the terminal reaches only our process and it
   * can stop things in order (`npm start`). Default false: then a Ctrl-C also stops the server directly,
   * which is what a test run wants.
   */
  detached?: boolean;
  /** More `temporal server start-dev` arguments. */
  extraArgs?: string[];
  /**
   * Gives up starting when it aborts: the server is stopped (and gone) before the promise rejects with the
   * abort reason. No effect once started; use `stop()` then.
   */
  signal?: AbortSignal;
}

/** A running dev server. */
export interface DevServer {
  /** `127.0.0.1:<port>`, for `Connection.connect({ address })`. */
  address: string;
  port: number;
  /** Web UI base URL, unless headless. */
  uiUrl?: string;
  uiPort?: number;
  dbFile?: string;
  namespace: string;
  /** Pid of the `temporal` process. */
  pid: number;
  /** Resolves with the exit code (or null if killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL right away, like a crash (the SQLite file keeps what was committed). Await `exited` if needed. */
  kill9(): void;
  /**
   * Stops this server (if still running) and starts a new one with the same options, port, UI port and
   * db file — e.g. after {@link kill9} in a crash test. Resolves with the new handle.
   */
  restart(): Promise<DevServer>;
}

/** Maps SDK search attribute types to the CLI's `--search-attribute Name=Type` spelling (Keyword, Int…). */
function searchAttributeFlags(): string[] {
  return incidentSearchAttributes.flatMap(({ name, type }) => [
    '--search-attribute',
    `${name}=${TypedSearchAttributes.toMetadataType(type)}`,
  ]);
}

/**
 * Starts `temporal server start-dev --ip 127.0.0.1 …` with free ports unless given, waits until it answers,
 * then prepares the namespace (search attributes, 35-day retention). To restart on the same port and db file
 * (crash tests), use the handle's `restart()` or call this again with the same `port` and `dbFile`.
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const temporal = opts.temporalCli ?? (await ensureTemporalCli());
  const port = opts.port ?? (await freePort());
  const uiPort = opts.headless ? undefined : (opts.uiPort ?? (await freePort()));
  const namespace = opts.namespace ?? 'default';
  const log = opts.log ?? ((line: string) => process.stderr.write(`[temporal] ${line}\n`));
  // Otherwise our readiness probe could reach whatever already listens there before the new server
  // gives up with "address already in use".
  for (const [what, p] of [
    ['gRPC', port],
    ['web UI', uiPort],
  ] as const) {
    if (p !== undefined && !(await isPortFree(p))) {
      throw new Error(
        `cannot start the Temporal dev server: 127.0.0.1:${p} (${what} port) is already in use`,
      );
    }
  }

  opts.signal?.throwIfAborted();
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    // Registered at start-up so they exist before any worker or client call (prepareNamespace re-checks).
    ...searchAttributeFlags(),
    ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]),
    ...(opts.dbFile
      ? ['--db-filename', opts.dbFile, ...SQLITE_PRAGMAS.flatMap((p) => ['--sqlite-pragma', p])]
      : []),
    ...(opts.extraArgs ?? []),
  ];
  let stopping = false;
  const proc = startProcess(temporal, args, {
    detached: opts.detached ?? false,
    // A refused flag prints the error first, then the whole usage text: keep enough to show the error.
    tailLines: 300,
    // A stopping server logs a burst of "connection refused" warnings from its own internal clients.
    onLine: (line) => {
      if (!stopping) log(line);
    },
  });
  const exited = proc.exited.then((status) => status.code);
  const failure = (what: string) => `temporal server start-dev ${what}:\n${proc.tail().join('\n')}`;

  const address = `127.0.0.1:${port}`;
  const kill9 = () => {
    stopping = true;
    proc.signal('SIGKILL');
  };
  const stop = async () => {
    stopping = true;
    await proc.stop(10_000);
  };

  try {
    // Fail fast with the server's own words if it exits (port taken, bad flag) instead of timing out.
    const giveUp = new AbortController();
    const exitedEarly = proc.exited.then((status) => {
      giveUp.abort();
      throw new Error(
        failure(status.error ? 'could not be started' : `exited with code ${String(status.code)}`),
      );
    });
    exitedEarly.catch(() => undefined); // a later exit, after start-up, is not an error here
    const abort = opts.signal ? AbortSignal.any([giveUp.signal, opts.signal]) : giveUp.signal;
    const connection = await Promise.race([
      waitForTemporal(address, opts.startTimeoutMs ?? 60_000, { signal: abort }),
      exitedEarly,
    ]);
    try {
      await prepareNamespace(connection, namespace, { retentionDays: opts.retentionDays });
    } finally {
      await connection.close();
    }
    opts.signal?.throwIfAborted();
    if (proc.hasExited) throw new Error(failure('exited during start-up'));
  } catch (err) {
    await stop();
    throw err;
  }

  const server: DevServer = {
    address,
    port,
    uiPort,
    uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
    dbFile: opts.dbFile,
    namespace,
    pid: proc.pid ?? -1,
    exited,
    stop,
    kill9,
    restart: async () => {
      await stop();
      return await startDevServer({ ...opts, temporalCli: temporal, port, uiPort });
    },
  };
  return server;
}
