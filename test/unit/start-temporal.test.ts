/**
 * Which Temporal server `npm start` adopts (scripts/lib/temporal-target.ts) and what it changes there
 * (scripts/lib/namespace.ts): a server answering on loopback may be production behind a `kubectl
 * port-forward`, so only a dev server npm start started (its marker, checked against the running process) is
 * adopted and prepared; another is used only when TEMPORAL_ADDRESS names it, and its retention is left alone.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { incidentSearchAttributes } from '../../src/contract/search-attributes.ts';
import { prepareNamespace } from '../../scripts/lib/namespace.ts';
import {
  DEV_SERVER_MARKER,
  commandLineOf,
  planTemporal,
  removeDevServerMarker,
  writeDevServerMarker,
} from '../../scripts/lib/temporal-target.ts';

/** Stands for an open connection; records whether it was closed. */
class FakeConnection {
  closed = false;
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

let dataDir: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'pno-start-temporal-'));
});
afterEach(async () => {
  for (const name of await readdir(dataDir)) await rm(path.join(dataDir, name), { force: true });
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

/** A live process whose command line looks like `temporal server start-dev --port <port> --db-filename <file>`. */
async function fakeDevServer(port: number, dbFile: string): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      'setInterval(() => {}, 1000)',
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--db-filename',
      dbFile,
    ],
    { stdio: 'ignore' },
  );
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  return child.pid ?? -1;
}

function plan(address: string, explicit: boolean, connection: FakeConnection | undefined) {
  let probes = 0;
  const result = planTemporal({
    address,
    explicit,
    dataDir,
    probe: () => {
      probes += 1;
      return Promise.resolve(connection);
    },
  });
  return { result, probes: () => probes };
}

describe('npm start: which Temporal server it adopts', () => {
  it('a server it did not start, answering at the default address (a port-forward?), is refused', async () => {
    const connection = new FakeConnection();
    const outcome = await plan('127.0.0.1:7233', false, connection).result;
    expect(outcome.kind).toBe('foreign');
    expect(outcome.kind === 'foreign' && outcome.reason).toMatch(
      /^a Temporal server that npm start did not start answers at 127\.0\.0\.1:7233 \(a kubectl port-forward answers on loopback too\).*set TEMPORAL_ADDRESS=127\.0\.0\.1:7233 to use it as it is/,
    );
  });

  it('a stale marker (its process gone, or another process under its pid) does not make a server ours', async () => {
    await writeDevServerMarker(dataDir, {
      pid: 2 ** 22 + 17, // above Linux's pid_max default: no such process
      address: '127.0.0.1:7233',
      dbFile: path.join(dataDir, 'temporal.sqlite'),
      startedAt: new Date().toISOString(),
    });
    expect((await plan('127.0.0.1:7233', false, new FakeConnection()).result).kind).toBe('foreign');
    await writeDevServerMarker(dataDir, {
      pid: process.pid, // alive, but not a dev server
      address: '127.0.0.1:7233',
      dbFile: path.join(dataDir, 'temporal.sqlite'),
      startedAt: new Date().toISOString(),
    });
    expect((await plan('127.0.0.1:7233', false, new FakeConnection()).result).kind).toBe('foreign');
  });

  it('the dev server it started (the marker names a live start-dev on that port and file) is its own', async () => {
    const dbFile = path.join(dataDir, 'temporal.sqlite');
    const pid = await fakeDevServer(7233, dbFile);
    expect(await commandLineOf(pid)).toEqual(expect.arrayContaining(['start-dev', '--port', '7233', dbFile]));
    const marker = { pid, address: '127.0.0.1:7233', dbFile, startedAt: new Date().toISOString() };
    await writeDevServerMarker(dataDir, marker);
    const connection = new FakeConnection();
    expect(await plan('127.0.0.1:7233', false, connection).result).toEqual({
      kind: 'own',
      connection,
      marker,
    });
    // The same marker says nothing about another port, or another data dir's file.
    expect((await plan('127.0.0.1:7234', false, new FakeConnection()).result).kind).toBe('foreign');
    await writeDevServerMarker(dataDir, { ...marker, dbFile: '/elsewhere/temporal.sqlite' });
    expect((await plan('127.0.0.1:7233', false, new FakeConnection()).result).kind).toBe('foreign');

    // Stopping it removes the marker, but only the marker of that process.
    await writeDevServerMarker(dataDir, marker);
    await removeDevServerMarker(dataDir, pid + 1);
    expect(await readdir(dataDir)).toContain(DEV_SERVER_MARKER);
    await removeDevServerMarker(dataDir, pid);
    expect(await readdir(dataDir)).not.toContain(DEV_SERVER_MARKER);
  });

  it('a server named by TEMPORAL_ADDRESS is used; nothing answering means starting one; remote is left alone', async () => {
    const connection = new FakeConnection();
    expect(await plan('127.0.0.1:7233', true, connection).result).toEqual({ kind: 'named', connection });
    expect(await plan('127.0.0.1:7233', false, undefined).result).toEqual({ kind: 'start' });
    expect(await plan('localhost:17233', true, undefined).result).toEqual({ kind: 'start' });
    const remote = plan('temporal-frontend.temporal:7233', true, connection);
    expect(await remote.result).toEqual({ kind: 'remote' });
    expect(remote.probes()).toBe(0);
    await expect(plan('127.0.0.1', false, undefined).result).rejects.toThrow(
      'TEMPORAL_ADDRESS must be host:port',
    );
  });
});

/** The namespace services prepareNamespace calls, recording the changes. */
function fakeNamespaceServices(retentionDays: number, registered: Record<string, number> = {}) {
  const calls = { addSearchAttributes: [] as string[][], updateNamespace: [] as unknown[] };
  const connection = {
    workflowService: {
      describeNamespace: () =>
        Promise.resolve({
          config: { workflowExecutionRetentionTtl: msNumberToTs(retentionDays * 86_400_000) },
        }),
      updateNamespace: (request: unknown) => {
        calls.updateNamespace.push(request);
        return Promise.resolve({});
      },
    },
    operatorService: {
      listSearchAttributes: () => Promise.resolve({ customAttributes: registered }),
      addSearchAttributes: (request: { searchAttributes: Record<string, number> }) => {
        calls.addSearchAttributes.push(Object.keys(request.searchAttributes));
        return Promise.resolve({});
      },
    },
  };
  return { connection: connection as unknown as Parameters<typeof prepareNamespace>[0], calls };
}

describe('npm start: what it changes on the namespace', () => {
  const names = incidentSearchAttributes.map((a) => a.name);

  it('on its own dev server: search attributes and a 35-day retention', async () => {
    const { connection, calls } = fakeNamespaceServices(1);
    const prepared = await prepareNamespace(connection, 'default');
    expect(prepared).toEqual({ addedSearchAttributes: names, retentionDays: 35, raisedRetentionFromDays: 1 });
    expect(calls.addSearchAttributes).toEqual([names]);
    expect(calls.updateNamespace).toHaveLength(1);
  });

  it('on a server it did not start (retentionDays: null): the missing search attributes, never the retention', async () => {
    const { connection, calls } = fakeNamespaceServices(1);
    const prepared = await prepareNamespace(connection, 'default', { retentionDays: null });
    expect(prepared).toEqual({ addedSearchAttributes: names, retentionDays: 1 });
    expect(calls.addSearchAttributes).toEqual([names]);
    expect(calls.updateNamespace).toEqual([]);
  });
});
