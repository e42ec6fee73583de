/**
 * Tool provisioning: the external programs this project runs (Temporal CLI dev server, Temporal's Java
 * time-skipping test server, Prometheus + Alertmanager), fetched or built on first use and cached by version.
 *
 * One module serves `npm start`, `npm test`, the tests and CI, so a fresh machine needs nothing but
 * `npm install && npm test`. Builds are published atomically (build into a temporary dir inside the cache
 * dir, then `rename`) under a cross-process lock, so an interrupted build or two concurrent runs never
 * leave a broken tool behind. A second run only checks that the file exists.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Temporal CLI release we build. Later tags cannot be `go install`ed (their go.mod uses `replace`). */
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Maven version of `io.temporal:temporal-test-server`. */
export const TEST_SERVER_VERSION = '1.38.0';
/** Main class of the test server jar (its `Main-Class` manifest entry). */
export const TEST_SERVER_MAIN_CLASS = 'io.temporal.testserver.TestServer';

/** Receives one human-readable progress line. */
export type Log = (line: string) => void;

const stderrLog: Log = (line) => {
  process.stderr.write(`[tools] ${line}\n`);
};

/** Cache directory for built tools: `$INCIDENT_TOOLS_DIR`, default `~/.cache/pno-incident`. */
export function toolsDir(): string {
  const fromEnv = process.env['INCIDENT_TOOLS_DIR'];
  return fromEnv ? path.resolve(fromEnv) : path.join(homedir(), '.cache', 'pno-incident');
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Children of this process still running: killed if the process exits without stopping them. */
const liveChildren = new Set<ChildProcess>();
let killOnExitInstalled = false;

/**
 * Kills `child` with SIGKILL if this process exits first (a test run that is
 * interrupted must not leave servers behind). 'exit' handlers are synchronous,
 * so a plain SIGKILL is all that can be done there.
 */
export function killOnExit(child: ChildProcess): void {
  if (!killOnExitInstalled) {
    killOnExitInstalled = true;
    process.on('exit', () => {
      for (const c of liveChildren) c.kill('SIGKILL');
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/**
 * Turns a child process's output chunks into whole lines: each non-empty line
 * goes to `onLine` and into `tail`, which keeps the last `keep` lines for
 * error messages.
 */
export function collectLines(
  tail: string[],
  keep: number,
  onLine: (line: string) => void,
): (chunk: Buffer) => void {
  let partial = '';
  return (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > keep) tail.shift();
      onLine(line);
    }
  };
}

/** Looks `name` up on `searchPath` (default `$PATH`) like a shell would; undefined when absent. */
export function which(name: string, searchPath = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Whether process `pid` exists and is not a zombie (a killed child its parent has not reaped yet). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return errCode(err) === 'EPERM';
  }
  try {
    // Linux only: `/proc/<pid>/stat` is "pid (comm) S …"; comm may contain spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Asks the OS for a free TCP port on 127.0.0.1 (bind to port 0, read it back, close). */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}

/** Whether nothing listens on 127.0.0.1:`port` (binding it succeeds). */
export async function isPortFree(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Options of {@link run}. */
interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with every output line (stdout and stderr) as it arrives. */
  onLine?: (line: string) => void;
}

/**
 * Runs a command to completion. Output is kept (last 60 lines) so a failure can say what went wrong
 * instead of just "exit code 1".
 */
async function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<void> {
  const tail: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = collectLines(tail, 60, (line) => opts.onLine?.(line));
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      const why = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
      const output = tail.length ? `\n--- last output ---\n${tail.join('\n')}` : '';
      reject(new Error(`\`${[command, ...args].join(' ')}\` ${why}${output}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Cross-process lock + atomic build
// ---------------------------------------------------------------------------------------------------------

/** Options of {@link withLock}. */
export interface LockOptions {
  /** What the lock protects, for the "waiting for …" message. */
  label?: string;
  /** Where progress lines go; default stderr with a `[tools]` prefix. */
  log?: Log;
  /** How often to re-check a held lock. Default 500 ms. */
  pollMs?: number;
  /**
   * A holder refreshes its lock's mtime every few seconds; a lock not refreshed for this long is treated
   * as abandoned even if its pid looks alive (the pid may have been reused). Default 2 min.
   */
  staleMs?: number;
}

const HEARTBEAT_MS = 5_000;
/** Grace period for a holder between `mkdir` of the lock and writing its pid into it. */
const PIDLESS_GRACE_MS = 10_000;

/** Reads who holds `lockDir`: its pid and how long since its last heartbeat; undefined if it is gone. */
async function readLockHolder(lockDir: string): Promise<{ pid?: number; ageMs: number } | undefined> {
  try {
    const pidFile = path.join(lockDir, 'pid');
    const stat = await fsp.stat(pidFile).catch((err: unknown) => {
      if (errCode(err) !== 'ENOENT') throw err;
      return undefined;
    });
    if (!stat) {
      const dirStat = await fsp.stat(lockDir);
      return { ageMs: Date.now() - dirStat.mtimeMs };
    }
    const pid = Number.parseInt(await fsp.readFile(pidFile, 'utf8'), 10);
    return { pid: Number.isFinite(pid) ? pid : undefined, ageMs: Date.now() - stat.mtimeMs };
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Holds the lock directory `lockDir` while `fn` runs. The lock is an atomic `mkdir` of a directory holding
 * the holder's pid. A lock whose pid is dead (or which has not been refreshed for `staleMs`) is stolen;
 * one held by a live process is waited for, with a message.
 *
 * Stealing has an inherent tiny race (two waiters can both decide the same dead lock is stale); callers
 * that publish results must therefore do so atomically anyway, as {@link buildOnce} does.
 */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const log = opts.log ?? stderrLog;
  const pollMs = opts.pollMs ?? 500;
  const staleMs = opts.staleMs ?? 120_000;
  const label = opts.label ?? path.basename(lockDir);
  const pidFile = path.join(lockDir, 'pid');
  let announcedPid: number | undefined | null = null;

  for (;;) {
    try {
      await fsp.mkdir(lockDir);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
      const holder = await readLockHolder(lockDir);
      if (!holder) continue; // released between our mkdir and our read: try again right away
      const gone = holder.pid === undefined ? holder.ageMs > PIDLESS_GRACE_MS : !isProcessAlive(holder.pid);
      const silent = holder.pid !== undefined && holder.ageMs > staleMs;
      if (gone || silent) {
        const why = gone ? 'is gone' : `has not refreshed it for ${Math.round(holder.ageMs / 1000)} s`;
        log(`removing abandoned lock ${lockDir} (process ${holder.pid ?? 'unknown'} ${why})`);
        // Rename first so that a concurrent stealer cannot delete a lock someone re-created meanwhile
        // (it would find nothing to rename); then delete at leisure.
        const grave = `${lockDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
        await fsp.rename(lockDir, grave).catch(() => undefined);
        await fsp.rm(grave, { recursive: true, force: true });
        continue;
      }
      if (announcedPid !== holder.pid) {
        log(`waiting for process ${holder.pid ?? '?'}, which is busy with ${label} (lock ${lockDir})…`);
        announcedPid = holder.pid;
      }
      await sleep(pollMs);
      continue;
    }
    break;
  }

  await fsp.writeFile(pidFile, `${process.pid}\n`);
  const heartbeat = setInterval(() => {
    const now = new Date();
    fsp.utimes(pidFile, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    // Only remove the lock if it is still ours (it may have been stolen after a long stall).
    const holder = await readLockHolder(lockDir).catch(() => undefined);
    if (holder?.pid === process.pid) await fsp.rm(lockDir, { recursive: true, force: true });
  }
}

/** Options of {@link buildOnce}. */
export interface BuildOnceOptions extends LockOptions {
  /** Printed when a build actually starts, e.g. "building X with go install (first time only, ~2.5 min)…". */
  announce?: string;
  /** Interval of the "still building (Ns)" lines. Default 15 s. */
  progressEveryMs?: number;
}

/** Removes temporary build dirs of `name` left behind by builds whose process died. */
async function removeAbandonedBuilds(parent: string, name: string, log: Log): Promise<void> {
  const prefixes = [`${name}.tmp-`, `${name}.lock.stale-`];
  for (const entry of await fsp.readdir(parent)) {
    const prefix = prefixes.find((p) => entry.startsWith(p));
    if (!prefix) continue;
    const pid = Number.parseInt(entry.slice(prefix.length), 10);
    if (Number.isFinite(pid) && pid !== process.pid && isProcessAlive(pid)) continue;
    log(`removing leftovers of an interrupted build: ${path.join(parent, entry)}`);
    await fsp.rm(path.join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * Makes sure directory `dir` exists, building it with `build` if not, such that `dir` never exists in a
 * half-built state: `build` fills a fresh temporary directory next to `dir` (same filesystem), which is then
 * renamed to `dir` in one atomic step. Concurrent callers (in this or other processes) are serialised by a
 * lock `<dir>.lock` and all get the one result; a build that failed or was interrupted leaves no `dir`
 * (its temporary directory is removed now or by the next build).
 *
 * @returns `dir`
 */
export async function buildOnce(
  dir: string,
  build: (tmpDir: string) => Promise<void>,
  opts: BuildOnceOptions = {},
): Promise<string> {
  if (existsSync(dir)) return dir;
  const log = opts.log ?? stderrLog;
  const parent = path.dirname(dir);
  const name = path.basename(dir);
  await fsp.mkdir(parent, { recursive: true });

  return await withLock(
    `${dir}.lock`,
    async () => {
      // Whoever held the lock before us may have built it already.
      if (existsSync(dir)) return dir;
      await removeAbandonedBuilds(parent, name, log);

      const tmpDir = path.join(parent, `${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      await fsp.mkdir(tmpDir);
      const started = Date.now();
      const seconds = () => Math.round((Date.now() - started) / 1000);
      if (opts.announce) log(opts.announce);
      const ticker = setInterval(
        () => log(`  … still ${opts.label ? `building ${opts.label}` : 'building'} (${seconds()} s)`),
        opts.progressEveryMs ?? 15_000,
      );
      ticker.unref();
      try {
        await build(tmpDir);
        await fsp.rename(tmpDir, dir);
      } catch (err) {
        await fsp.rm(tmpDir, { recursive: true, force: true });
        // Lost a (rare) race against a process that stole our lock: its result is as good as ours.
        if ((errCode(err) === 'ENOTEMPTY' || errCode(err) === 'EEXIST') && existsSync(dir)) return dir;
        throw err;
      } finally {
        clearInterval(ticker);
      }
      log(`${opts.label ?? name} done in ${seconds()} s`);
      return dir;
    },
    { ...opts, log, label: `building ${opts.label ?? name}` },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Temporal CLI
// ---------------------------------------------------------------------------------------------------------

function findGo(): string | undefined {
  // Go's own installer puts it in /usr/local/go/bin, which non-login shells often lack on PATH.
  const goroot = process.env['GOROOT'];
  return (
    which('go') ??
    [goroot ? path.join(goroot, 'bin', 'go') : '', '/usr/local/go/bin/go'].find((p) => p && isExecutable(p))
  );
}

/**
 * Path of a `temporal` CLI binary: `$TEMPORAL_CLI` if set (an error if it does not exist), else `temporal`
 * on PATH, else a cached build, else it is built now with
 * `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` (static, `CGO_ENABLED=0`).
 */
export async function ensureTemporalCli(opts: { log?: Log } = {}): Promise<string> {
  const fromEnv = process.env['TEMPORAL_CLI'];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist or is not executable`);
    return fromEnv;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;

  const dir = path.join(toolsDir(), `temporal-cli-${TEMPORAL_CLI_VERSION}`);
  const binary = path.join(dir, 'temporal');
  if (isExecutable(binary)) return binary;

  const go = findGo();
  if (!go) {
    throw new Error(
      `The Temporal CLI ${TEMPORAL_CLI_VERSION} is needed but not found, and there is no Go toolchain to build it.\n` +
        `Either install Go ≥ 1.24 (https://go.dev/doc/install, or Debian: apt-get install golang-go) and re-run,\n` +
        `or put a \`temporal\` binary on PATH, or set TEMPORAL_CLI=/path/to/temporal.`,
    );
  }
  const log = opts.log ?? stderrLog;
  await buildOnce(
    dir,
    async (tmpDir) => {
      const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0', GOBIN: tmpDir };
      // `go install` refuses GOBIN for cross-compiled binaries; we want one for this machine anyway.
      delete env['GOOS'];
      delete env['GOARCH'];
      await run(go, ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], {
        env,
        // With a cold module cache go prints "go: downloading …" lines: useful progress.
        onLine: (line) => line.trim() && log(`  ${line}`),
      });
      // Never publish a binary that does not even start.
      await run(path.join(tmpDir, 'temporal'), ['--version']);
    },
    {
      log,
      label: `Temporal CLI ${TEMPORAL_CLI_VERSION}`,
      announce: `building Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (first time only, ~2.5 min; up to ~8 min on 2 cores with a cold Go build cache)…`,
    },
  );
  return binary;
}

// ---------------------------------------------------------------------------------------------------------
// Temporal time-skipping test server (Java)
// ---------------------------------------------------------------------------------------------------------

const TEST_SERVER_WRAPPER = 'temporal-test-server';
const CDS_ARCHIVE = 'test-server.jsa';
/**
 * JVM flags tuned for start-up time: the TypeScript SDK gives the server only ~5 s to answer, on a 2-core
 * machine that may be busy with other test files. C1-only JIT and the serial GC start fastest.
 */
const TEST_SERVER_JVM_FLAGS = [
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
];

function testServerPom(): string {
  // slf4j-simple (at level warn, see the JVM flags) replaces the default NOP logger, which would print a
  // three-line "Failed to load class StaticLoggerBinder" warning on every start and hide real errors.
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/lib/tools.ts only to resolve the test server's runtime classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pno-incident</groupId>
  <artifactId>temporal-test-server-classpath</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>${TEST_SERVER_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
`;
}

function testServerWrapper(): string {
  const flags = TEST_SERVER_JVM_FLAGS.join(' ');
  return `#!/bin/sh
# Temporal time-skipping test server ${TEST_SERVER_VERSION} (Maven io.temporal:temporal-test-server),
# generated by scripts/lib/tools.ts. The TypeScript SDK runs it as an 'existing-path' executable with
#   <port> [extraArgs...]
# and ${TEST_SERVER_MAIN_CLASS}.main accepts exactly  <port> [--enable-time-skipping]
# (without the flag, time skipping starts locked, which is what the SDK expects).
# 'exec' so the SDK's kill reaches the JVM itself rather than this shell.
# Extra JVM options: TEMPORAL_TEST_SERVER_JAVA_OPTS.
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  # The Java main prints its usage and exits 0 in this case, which the SDK would only notice by timing out.
  echo "usage: $0 <port> [--enable-time-skipping]" >&2
  exit 2
fi
dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
java=java
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then java="$JAVA_HOME/bin/java"; fi
if [ -f "$dir/cds/${CDS_ARCHIVE}" ] && [ -z "$TEMPORAL_TEST_SERVER_NO_CDS" ]; then
  # Class-data-sharing archive made after the first build: halves JVM start-up. A JVM update makes it
  # unusable; the JVM then silently starts without it.
  exec "$java" ${flags} "-XX:SharedArchiveFile=$dir/cds/${CDS_ARCHIVE}" -Xlog:cds=off -Xlog:cds+dynamic=off \\
    $TEMPORAL_TEST_SERVER_JAVA_OPTS -cp "$dir/lib/*" ${TEST_SERVER_MAIN_CLASS} "$@"
fi
exec "$java" ${flags} $TEMPORAL_TEST_SERVER_JAVA_OPTS -cp "$dir/lib/*" ${TEST_SERVER_MAIN_CLASS} "$@"
`;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`, or rejects after `timeoutMs`. */
async function waitForPort(port: number, timeoutMs: number, exited?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited?.()) throw new Error('process exited before it listened');
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/**
 * Records a class-data-sharing archive for the test server's JVM by starting it once and stopping it
 * cleanly (the archive is written at normal JVM exit). Must run on the final directory: the archive
 * remembers the classpath it was made with. Best effort: without it the server just starts slower.
 */
async function ensureTestServerCds(dir: string, java: string, log: Log): Promise<void> {
  const failedMarker = path.join(dir, 'cds.failed');
  if (existsSync(path.join(dir, 'cds', CDS_ARCHIVE)) || existsSync(failedMarker)) return;
  try {
    await buildOnce(
      path.join(dir, 'cds'),
      async (tmpDir) => {
        const port = await freePort();
        const args = [
          ...TEST_SERVER_JVM_FLAGS,
          `-XX:ArchiveClassesAtExit=${path.join(tmpDir, CDS_ARCHIVE)}`,
          '-Xlog:cds=off',
          '-Xlog:cds+dynamic=off',
          '-cp',
          path.join(dir, 'lib', '*'),
          TEST_SERVER_MAIN_CLASS,
          String(port),
        ];
        const child = spawn(java, args, { stdio: 'ignore' });
        let exited = false;
        const exit = new Promise<void>((resolve) =>
          child.once('exit', () => {
            exited = true;
            resolve();
          }),
        );
        try {
          await waitForPort(port, 60_000, () => exited);
          // Let start-up finish (its shutdown hook is registered after the port opens).
          await sleep(1_500);
        } finally {
          child.kill('SIGTERM');
          await exit;
        }
        if (!existsSync(path.join(tmpDir, CDS_ARCHIVE))) throw new Error('the JVM wrote no archive');
      },
      { log, label: 'test server start-up archive' },
    );
  } catch (err) {
    log(
      `note: could not record a start-up archive for the test server (it will start slower): ${String(err)}`,
    );
    // Do not retry on every run (e.g. a JDK older than 13 has no -XX:ArchiveClassesAtExit).
    await fsp.writeFile(failedMarker, `${String(err)}\n`).catch(() => undefined);
  }
}

/**
 * Path of an executable wrapper script for Temporal's Java time-skipping test server
 * (`io.temporal:temporal-test-server:1.38.0` plus its runtime classpath, fetched with Maven into the cache
 * dir). Pass it to the SDK as `{ type: 'existing-path', path }`. `$TEMPORAL_TEST_SERVER` overrides it.
 * Needs `java` (≥ 11) and `mvn`.
 */
export async function ensureTestServer(opts: { log?: Log } = {}): Promise<string> {
  const fromEnv = process.env['TEMPORAL_TEST_SERVER'];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`TEMPORAL_TEST_SERVER=${fromEnv} does not exist or is not executable`);
    }
    return fromEnv;
  }
  const log = opts.log ?? stderrLog;
  const dir = path.join(toolsDir(), `temporal-test-server-${TEST_SERVER_VERSION}`);
  const wrapper = path.join(dir, TEST_SERVER_WRAPPER);
  const javaHome = process.env['JAVA_HOME'];
  const java = (javaHome && [path.join(javaHome, 'bin', 'java')].find(isExecutable)) || which('java');

  if (!isExecutable(wrapper)) {
    const mvn = which('mvn');
    if (!java || !mvn) {
      const missing = [java ? '' : '`java`', mvn ? '' : '`mvn`'].filter(Boolean).join(' and ');
      throw new Error(
        `Temporal's time-skipping test server ${TEST_SERVER_VERSION} is a Java program fetched with Maven, ` +
          `but ${missing} is not on PATH.\n` +
          `Install a JDK ≥ 11 and Maven (Debian: apt-get install -y default-jdk-headless maven), ` +
          `or set TEMPORAL_TEST_SERVER to an executable that takes the same arguments (<port>).`,
      );
    }
    await buildOnce(
      dir,
      async (tmpDir) => {
        const pomDir = path.join(tmpDir, '.resolve');
        await fsp.mkdir(pomDir);
        await fsp.writeFile(path.join(pomDir, 'pom.xml'), testServerPom());
        await run(
          mvn,
          [
            '-q',
            '-B',
            '-f',
            path.join(pomDir, 'pom.xml'),
            'dependency:copy-dependencies',
            '-DincludeScope=runtime',
            `-DoutputDirectory=${path.join(tmpDir, 'lib')}`,
          ],
          { cwd: pomDir },
        );
        await fsp.rm(pomDir, { recursive: true, force: true });
        const jar = path.join(tmpDir, 'lib', `temporal-test-server-${TEST_SERVER_VERSION}.jar`);
        if (!existsSync(jar)) throw new Error(`maven finished but ${jar} is missing`);
        await fsp.writeFile(path.join(tmpDir, TEST_SERVER_WRAPPER), testServerWrapper(), { mode: 0o755 });
      },
      {
        log,
        label: `Temporal test server ${TEST_SERVER_VERSION}`,
        announce: `fetching Temporal test server ${TEST_SERVER_VERSION} and its classpath with Maven (first time only, ~30 s)…`,
      },
    );
  }
  // The wrapper is derived from this file, not from the download: keep it current when this file changes
  // (an atomic replace, so a concurrently starting test server sees the old or the new one).
  const script = testServerWrapper();
  if (readFileSync(wrapper, 'utf8') !== script) {
    const tmp = `${wrapper}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await fsp.writeFile(tmp, script, { mode: 0o755 });
    await fsp.rename(tmp, wrapper);
  }
  if (java) await ensureTestServerCds(dir, java, log);
  return wrapper;
}

// ---------------------------------------------------------------------------------------------------------
// Prometheus + Alertmanager (Debian packages)
// ---------------------------------------------------------------------------------------------------------

/** Paths of the Prometheus tools. */
export interface PrometheusTools {
  prometheus: string;
  promtool: string;
  alertmanager: string;
}

const PROMETHEUS_PACKAGES = ['prometheus', 'prometheus-alertmanager'];
/** Debian names the Alertmanager binary `prometheus-alertmanager`; upstream tarballs call it `alertmanager`. */
const ALERTMANAGER_NAMES = ['prometheus-alertmanager', 'alertmanager'];

function locatePrometheus(searchPath: string): PrometheusTools | undefined {
  const prometheus = which('prometheus', searchPath);
  const promtool = which('promtool', searchPath);
  const alertmanager = ALERTMANAGER_NAMES.map((n) => which(n, searchPath)).find(Boolean);
  return prometheus && promtool && alertmanager ? { prometheus, promtool, alertmanager } : undefined;
}

/**
 * The Debian packages start (or enable) system services listening on 9090/9093. Nothing of ours may depend
 * on those, and they would collide with test instances, so stop and disable them. Containers often have no
 * init system (no systemd, a policy-rc.d that denies starts): every step is best effort.
 */
async function stopPackagedServices(log: Log): Promise<void> {
  const attempt = async (cmd: string, args: string[]) => {
    const bin = which(cmd) ?? which(cmd, '/usr/sbin:/sbin:/usr/bin:/bin');
    if (!bin) return;
    await run(bin, args).catch(() => undefined);
  };
  const systemdRunning = existsSync('/run/systemd/system');
  for (const service of PROMETHEUS_PACKAGES) {
    if (systemdRunning) {
      await attempt('systemctl', ['disable', '--now', `${service}.service`]);
    } else {
      // Offline `systemctl disable` just removes the wants/ symlinks, so a later boot with systemd
      // does not start them either.
      await attempt('systemctl', ['disable', `${service}.service`]);
      if (existsSync(`/etc/init.d/${service}`)) {
        await attempt('service', [service, 'stop']);
        await attempt('update-rc.d', [service, 'disable']);
      }
    }
  }
  log('stopped and disabled the packaged prometheus/alertmanager services (we run our own instances)');
}

/**
 * Paths of `prometheus`, `promtool` and the Alertmanager binary. When absent and this process may install
 * Debian packages (root + apt-get), installs `prometheus` and `prometheus-alertmanager` with apt-get and
 * stops the services the packages start; otherwise throws an error saying how to install them.
 *
 * @param opts.path where to look (default `$PATH` plus /usr/bin); `opts.allowInstall` false forbids apt-get.
 */
export async function ensurePrometheus(
  opts: { log?: Log; path?: string; allowInstall?: boolean } = {},
): Promise<PrometheusTools> {
  const searchPath = opts.path ?? [process.env['PATH'] ?? '', '/usr/bin'].join(path.delimiter);
  const found = locatePrometheus(searchPath);
  if (found) return found;

  const log = opts.log ?? stderrLog;
  const aptGet = which('apt-get', `${process.env['PATH'] ?? ''}:/usr/bin:/usr/sbin`);
  const isRoot = process.getuid?.() === 0;
  const allowInstall = opts.allowInstall ?? (isRoot && aptGet !== undefined);
  if (!allowInstall || !aptGet) {
    throw new Error(
      `prometheus, promtool and alertmanager are needed but not all found on PATH.\n` +
        `Install them (Debian/Ubuntu, as root: apt-get update && apt-get install -y --no-install-recommends ` +
        `${PROMETHEUS_PACKAGES.join(' ')}), or put the binaries ` +
        `(prometheus, promtool, alertmanager or prometheus-alertmanager) on PATH.`,
    );
  }

  // apt-get has its own lock but fails instead of waiting on it; serialise our own concurrent runs.
  await withLock(
    path.join(toolsDir(), 'apt.lock'),
    async () => {
      if (locatePrometheus(searchPath)) return;
      const started = Date.now();
      log(`installing Debian packages ${PROMETHEUS_PACKAGES.join(', ')} with apt-get (first time only)…`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const show = (line: string) => line.trim() && log(`  apt: ${line}`);
      await run(aptGet, ['update'], { env, onLine: show });
      await run(aptGet, ['install', '-y', '--no-install-recommends', ...PROMETHEUS_PACKAGES], {
        env,
        onLine: show,
      });
      await stopPackagedServices(log);
      log(`prometheus packages installed in ${Math.round((Date.now() - started) / 1000)} s`);
    },
    { log, label: 'installing prometheus packages', staleMs: 30 * 60_000 },
  );
  const installed = locatePrometheus(searchPath);
  if (!installed)
    throw new Error(`apt-get installed ${PROMETHEUS_PACKAGES.join(' ')} but the binaries are not on PATH`);
  return installed;
}

// ---------------------------------------------------------------------------------------------------------

/** Everything {@link ensureAll} provides. */
export interface AllTools {
  temporalCli: string;
  testServer: string;
  prometheus: PrometheusTools;
}

/**
 * Ensures every tool, in parallel (the Go build is CPU-bound, Maven and apt mostly wait on the network).
 * Fails after all attempts finished, with every failure's message.
 */
export async function ensureAll(opts: { log?: Log } = {}): Promise<AllTools> {
  const [cli, testServer, prometheus] = await Promise.allSettled([
    ensureTemporalCli(opts),
    ensureTestServer(opts),
    ensurePrometheus(opts),
  ]);
  const failures = [cli, testServer, prometheus].flatMap((r) =>
    r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : [],
  );
  if (cli.status === 'rejected' || testServer.status === 'rejected' || prometheus.status === 'rejected') {
    throw new Error(`could not provide every tool:\n- ${failures.join('\n- ')}`);
  }
  return { temporalCli: cli.value, testServer: testServer.value, prometheus: prometheus.value };
}
