/**
 * The one way the tooling runs child processes (dev server, worker, API, Prometheus, builds, benchmarks).
 *
 * A {@link startProcess} handle owns its child for its whole life: it collects the output into lines (and
 * keeps the last ones for error messages), exposes one exit promise, stops the child with SIGTERM and then
 * SIGKILL after a grace period, and kills it if this process exits first. `stop()` resolves only once the
 * child is gone, which is what lets a caller promise that its ports are free again.
 *
 * A `detached` child runs in a process group of its own: a Ctrl-C in the terminal then reaches only this
 * process (which can stop things in order), and every signal the handle sends goes to the child's whole
 * group, so nothing the child started itself is left behind.
 */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** How a child process ended. */
export interface ExitStatus {
  /** Exit code; null when it was killed by a signal or could not be started. */
  code: number | null;
  /** The signal that killed it, if one did. */
  signal: NodeJS.Signals | null;
  /** Why it could not be started (e.g. ENOENT), if it could not. */
  error?: Error;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run in a process group of its own; signals then go to the whole group. Default false. */
  detached?: boolean;
  /**
   * `pipe` (default): output is split into lines for `onLine` and the tail; `inherit`: it goes straight to
   * this process's stdout/stderr; `ignore`: dropped.
   */
  output?: 'pipe' | 'inherit' | 'ignore';
  /** Receives every non-empty output line as it arrives, and which stream it came from (`output: 'pipe'`). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many of the last lines {@link ManagedProcess.tail} keeps. Default 40. */
  tailLines?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 10 s. */
  stopGraceMs?: number;
  /** SIGKILL the child if this process exits while it still runs. Default true. */
  killOnExit?: boolean;
}

/** A running (or finished) child process started by {@link startProcess}. */
export interface ManagedProcess {
  /** The OS pid; undefined if the process could not be started. */
  readonly pid: number | undefined;
  /** The underlying Node handle, for its output streams. */
  readonly child: ChildProcess;
  /**
   * Resolves once the process itself has exited and its output has been read to the end (waiting at most
   * 1 s more for that); see `stop()` for waiting on its whole group.
   */
  readonly exited: Promise<ExitStatus>;
  /** Whether it has exited (or failed to start). */
  readonly hasExited: boolean;
  /** The last output lines, oldest first, plus the start error if any. */
  tail(): string[];
  /** Sends `signal` to the process (its whole group when detached); a no-op once it has exited. */
  signal(signal: NodeJS.Signals): void;
  /**
   * SIGTERM, then SIGKILL if it is still running after `graceMs` (default: the `stopGraceMs` option).
   * Resolves once the process is gone — a detached one with every process left in its group. Safe to call
   * more than once, also concurrently.
   */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** SIGKILL right away (its whole group when detached), like a crash; resolves once it is gone. */
  kill(): Promise<ExitStatus>;
}

/** How long to wait for processes to vanish after SIGKILL (it cannot be ignored; zombies may linger). */
const KILL_WAIT_MS = 5_000;

/**
 * How long after a process exits to keep reading its output: the last lines usually explain the exit, but a
 * grandchild that inherited the pipes (a wrapper script's server) can keep them open much longer.
 */
const OUTPUT_DRAIN_MS = 1_000;

/** Live children that must not outlive this process. */
const liveChildren = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers are synchronous: a SIGKILL is all that can be done there. An orderly shutdown has
  // stopped (and awaited) its children before it gets here; this is the last resort for an interrupted one.
  process.on('exit', () => {
    for (const p of liveChildren) p.signal('SIGKILL');
  });
}

/**
 * Turns output chunks into whole lines: each non-empty line goes to `onLine` and into `tail`, which keeps
 * the last `keep` lines for error messages. Call the returned function with `undefined` at the end of the
 * stream to flush a last line without a newline.
 */
export function collectLines(
  tail: string[],
  keep: number,
  onLine: (line: string) => void,
): (chunk: Buffer | undefined) => void {
  let partial = '';
  const take = (line: string) => {
    if (!line.trim()) return;
    tail.push(line);
    if (tail.length > keep) tail.shift();
    onLine(line);
  };
  return (chunk) => {
    if (chunk === undefined) {
      take(partial);
      partial = '';
      return;
    }
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) take(line);
  };
}

/** "exited with code 1", "was killed by SIGTERM", "could not be started: spawn x ENOENT". */
export function describeExit(status: ExitStatus): string {
  if (status.error) return `could not be started: ${status.error.message}`;
  return status.signal ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
}

/** Starts `command args` and returns a handle that owns it; see the module comment. */
export function startProcess(
  command: string,
  args: readonly string[],
  opts: StartProcessOptions = {},
): ManagedProcess {
  const output = opts.output ?? 'pipe';
  const detached = opts.detached ?? false;
  const stdio: StdioOptions =
    output === 'pipe'
      ? ['ignore', 'pipe', 'pipe']
      : output === 'inherit'
        ? ['ignore', 'inherit', 'inherit']
        : 'ignore';
  const child: ChildProcess = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio,
    detached,
  });

  const tail: string[] = [];
  const streamsEnded: Promise<void>[] = [];
  if (output === 'pipe') {
    const onLine = opts.onLine ?? (() => undefined);
    for (const [name, stream] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const) {
      if (!stream) continue;
      const collect = collectLines(tail, opts.tailLines ?? 40, (line) => onLine(line, name));
      stream.on('data', collect);
      streamsEnded.push(
        new Promise<void>((resolve) => {
          stream.once('close', () => {
            collect(undefined);
            resolve();
          });
        }),
      );
    }
  }

  let hasExited = false;
  let leaderExited!: () => void;
  const leaderExit = new Promise<void>((resolve) => (leaderExited = resolve));
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      leaderExited();
      if (!groupAlive()) liveChildren.delete(handle);
      // The pipes may still hold the last lines; a grandchild that inherited them must not delay us long.
      void Promise.race([Promise.all(streamsEnded), sleep(OUTPUT_DRAIN_MS)]).then(() =>
        resolve({ code, signal }),
      );
    });
    child.once('error', (error) => {
      // Also emitted when a kill fails, for a process that did start: only a failed spawn ends it here.
      if (child.pid !== undefined && !hasExited) return;
      hasExited = true;
      leaderExited();
      liveChildren.delete(handle);
      tail.push(String(error));
      resolve({ code: null, signal: null, error });
    });
  });

  // A detached child leads its own process group, which may outlive it: a wrapper script that got SIGTERM
  // exits at once while the server it ran is still shutting down (and still holds its ports).
  let groupGone = !detached;
  const groupAlive = () => {
    if (groupGone || child.pid === undefined) return false;
    try {
      process.kill(-child.pid, 0);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
      groupGone = true;
      return false;
    }
  };
  const isGone = () => hasExited && !groupAlive();
  /** Waits until the process (and its group) is gone or `deadline` passes; says which. */
  const goneBy = async (deadline: number) => {
    while (!isGone()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([hasExited ? sleep(Math.min(50, left)) : leaderExit, sleep(Math.min(50, left))]);
    }
    liveChildren.delete(handle);
    return true;
  };

  const signal = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    if (!groupGone) {
      try {
        process.kill(-child.pid, sig);
        return;
      } catch {
        groupGone = true; // ESRCH: nobody left in the group
      }
    }
    if (!hasExited) child.kill(sig);
  };

  let stopping: Promise<ExitStatus> | undefined;
  const stop = (graceMs = opts.stopGraceMs ?? 10_000) => {
    stopping ??= (async () => {
      if (!isGone()) {
        signal('SIGTERM');
        if (!(await goneBy(Date.now() + graceMs))) {
          signal('SIGKILL');
          await goneBy(Date.now() + KILL_WAIT_MS);
        }
      }
      return await exited;
    })();
    return stopping;
  };

  const handle: ManagedProcess = {
    pid: child.pid,
    child,
    exited,
    get hasExited() {
      return hasExited;
    },
    tail: () => [...tail],
    signal,
    stop,
    kill: async () => {
      signal('SIGKILL');
      await goneBy(Date.now() + KILL_WAIT_MS);
      return await exited;
    },
  };
  if (opts.killOnExit ?? true) {
    installExitHook();
    if (child.pid !== undefined) liveChildren.add(handle);
  }
  return handle;
}

/** Options of {@link runProcess}. */
export interface RunProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with every output line (stdout and stderr) as it arrives. */
  onLine?: (line: string) => void;
}

/**
 * Runs a command to completion; rejects unless it exits with code 0. Output is kept (last 60 lines) so a
 * failure says what went wrong instead of just "exit code 1".
 */
export async function runProcess(
  command: string,
  args: readonly string[],
  opts: RunProcessOptions = {},
): Promise<void> {
  const proc = startProcess(command, args, { ...opts, tailLines: 60 });
  const status = await proc.exited;
  if (status.code === 0) return;
  const tail = proc.tail();
  const output = tail.length ? `\n--- last output ---\n${tail.join('\n')}` : '';
  throw new Error(`\`${[command, ...args].join(' ')}\` ${describeExit(status)}${output}`);
}

/** Whether process `pid` exists and is not a zombie (a killed child its parent has not reaped yet). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Linux only: `/proc/<pid>/stat` is "pid (comm) S …"; comm may contain spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
