/**
 * The tool cache: where built or downloaded tools live (`$INCIDENT_TOOLS_DIR`, default
 * `~/.cache/pno-incident`, one directory per tool and version), and how they get there.
 *
 * Builds are published atomically (build into a temporary dir inside the cache dir, then `rename`) under a
 * cross-process lock, so an interrupted build or two concurrent runs never leave a broken tool behind. A
 * second run only checks that the directory exists.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, createReadStream, existsSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from '../process.ts';

/** Receives one human-readable progress line. */
export type Log = (line: string) => void;

/** The default {@link Log}: stderr with a `[tools]` prefix. */
export const stderrLog: Log = (line) => {
  process.stderr.write(`[tools] ${line}\n`);
};

/** Cache directory for built tools: `$INCIDENT_TOOLS_DIR`, default `~/.cache/pno-incident`. */
export function toolsDir(): string {
  const fromEnv = process.env['INCIDENT_TOOLS_DIR'];
  return fromEnv ? path.resolve(fromEnv) : path.join(homedir(), '.cache', 'pno-incident');
}

/** The `code` of a Node system error (`ENOENT`, `EEXIST`…), if it has one. */
export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** Whether `file` is a regular file this process may execute. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
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

/** The hex SHA-256 of a file's contents. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Refuses a downloaded file whose SHA-256 is not the pinned `expected` one (a different build, a tampered
 * mirror, a truncated download): throws an error naming both digests. `what` names the file in it.
 */
export async function verifySha256(
  file: string,
  expected: string,
  what = path.basename(file),
): Promise<void> {
  const actual = await sha256File(file);
  if (actual !== expected.toLowerCase()) {
    throw new Error(
      `refusing ${what}: its sha256 is ${actual}, but ${expected} is pinned (a different or tampered file)`,
    );
  }
}

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
