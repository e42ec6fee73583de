import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import { appendDeadLetter, deadLetterPath, readDeadLetters } from '../../src/deadletter-file.ts';
import type { DeadLetterView } from '../../src/deadletter-file.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { EXIT, runCli } from '../../src/starter/cli/index.ts';
import type { CliIo } from '../../src/starter/cli/index.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

/*
 * Issue 11, item 5: a valid delivery that fails inside the API is kept as a dead letter (202 `deadlettered`);
 * `incident deadletter list` shows it and `incident deadletter replay <id>|--all` submits it again through the
 * same ingestion path, marking it replayed.
 */

const TOKEN = 'test-webhook-token';
const policy = loadDefaultPolicy();

async function cli(args: string[], env: NodeJS.ProcessEnv, inject: Partial<CliIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let connects = 0;
  const code = await runCli(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1', ...env },
    connect: () => {
      connects += 1;
      return Promise.reject(new Error('Failed to connect: connection refused'));
    },
    ...inject,
  });
  return { code, out: out.join('\n'), err: err.join('\n'), connects };
}

/** Posts `payload` to the webhook of an API whose gateway fails as `error` does: the letter's id. */
async function deadLetterThroughApi(file: string, payload: unknown, url = '/webhooks/alertmanager') {
  const gateway = new FakeGateway();
  gateway.failWith = Object.assign(new Error('3 INVALID_ARGUMENT: Blob data size exceeds limit.'), {
    code: 3,
  });
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: TOKEN,
    engineerTokens: new Map(),
    deadLetterFile: file,
  });
  const res = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    payload: JSON.stringify(payload),
  });
  expect(res.statusCode).toBe(202);
  return res.json<{ incidents: { deadLetter: string }[] }>().incidents[0]?.deadLetter as string;
}

describe('incident deadletter', () => {
  let dir: string;
  let file: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'deadletter-cli-'));
    file = path.join(dir, 'deadletter.jsonl');
    env = { INCIDENT_DEADLETTER: file };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the file is INCIDENT_DEADLETTER, else deadletter.jsonl in INCIDENT_DATA_DIR (default .data)', () => {
    expect(deadLetterPath({ INCIDENT_DEADLETTER: '/var/lib/x.jsonl' })).toBe('/var/lib/x.jsonl');
    expect(deadLetterPath({ INCIDENT_DATA_DIR: '/data' })).toBe(path.join('/data', 'deadletter.jsonl'));
    expect(deadLetterPath({})).toBe(path.join('.data', 'deadletter.jsonl'));
  });

  it('list: what the API kept, newest first, without Temporal', async () => {
    const empty = await cli(['deadletter', 'list'], env);
    expect(empty).toMatchObject({ code: EXIT.ok, out: `no dead letters (${file})`, connects: 0 });
    const first = await deadLetterThroughApi(file, alertmanagerPayload({ groupKey: 'one' }));
    const second = await deadLetterThroughApi(file, alertmanagerPayload({ groupKey: 'two' }));
    const human = await cli(['deadletter', 'list'], env);
    expect(human.code).toBe(EXIT.ok);
    expect(human.out.indexOf(second)).toBeLessThan(human.out.indexOf(first));
    expect(human.out).toContain('alertmanager');
    expect(human.out).toContain('pending');
    expect(human.out).toContain('Blob data size exceeds limit');
    const json = await cli(['deadletter', 'list', '--json'], env);
    const letters = JSON.parse(json.out) as DeadLetterView[];
    expect(letters.map((l) => l.id)).toEqual([second, first]);
    expect(letters[1]).toMatchObject({
      status: 'pending',
      groupKey: 'one',
      workflowId: alertGroupWorkflowId('incident-response', 'one'),
      body: alertmanagerPayload({ groupKey: 'one' }),
    });
    const limited = await cli(['deadletter', 'list', '--limit', '1', '--json'], env);
    expect((JSON.parse(limited.out) as DeadLetterView[]).map((l) => l.id)).toEqual([second]);
  });

  it('replay <id> submits the body again through the same ingestion and marks it replayed', async () => {
    const payload = alertmanagerPayload({ groupKey: 'replay-me' });
    const id = await deadLetterThroughApi(file, payload);
    const gateway = new FakeGateway();
    const replayed = await cli(['deadletter', 'replay', id, '--json'], env, { gateway: () => gateway });
    expect(replayed.code).toBe(EXIT.ok);
    expect(JSON.parse(replayed.out)).toMatchObject([
      { id, status: 'replayed', result: { action: 'started', id: expect.stringMatching(/^INC-/) } },
    ]);
    expect(gateway.batches).toHaveLength(1);
    expect(gateway.batches[0]).toMatchObject({ receiver: 'incident-response', groupKey: 'replay-me' });
    expect(gateway.batches[0]?.alerts[0]).toMatchObject({ severity: 'P1', fingerprint: 'f00d000000000000' });
    expect(await readDeadLetters(file)).toMatchObject([
      {
        id,
        status: 'replayed',
        result: { action: 'started', workflowId: alertGroupWorkflowId('incident-response', 'replay-me') },
      },
    ]);
    const list = await cli(['deadletter', 'list', '--status', 'pending', '--json'], env);
    expect(JSON.parse(list.out)).toEqual([]);

    const again = await cli(['deadletter', 'replay', id, '--json'], env, { gateway: () => gateway });
    expect(again.code).toBe(EXIT.refused);
    expect(JSON.parse(again.out)).toMatchObject({ error: { code: 'REFUSED' } });
    expect(gateway.batches).toHaveLength(1);
  });

  it('replay --all replays every pending letter, Grafana and generic ones through their own mapping', async () => {
    const am = await deadLetterThroughApi(file, alertmanagerPayload({ groupKey: 'am' }));
    const generic = await deadLetterThroughApi(
      file,
      { title: 'Checkout down', severity: 'P1', dedup_key: 'chk-1' },
      '/webhooks/generic',
    );
    const letters = await readDeadLetters(file);
    const gateway = new FakeGateway();
    const first = await cli(['deadletter', 'replay', am], env, { gateway: () => gateway });
    expect(first.code).toBe(EXIT.ok);
    const all = await cli(['deadletter', 'replay', '--all'], env, { gateway: () => gateway });
    expect(all.code).toBe(EXIT.ok);
    expect(all.out).toContain(`${generic}  replayed: started`);
    expect(all.out).not.toContain(am);
    expect(gateway.batches.map((b) => b.receiver)).toEqual(['incident-response', 'generic']);
    // A generic alert keeps the time it came in, not the replay's.
    expect(gateway.batches[1]?.alerts[0]?.startsAt).toBe(letters.find((l) => l.id === generic)?.at);
    const none = await cli(['deadletter', 'replay', '--all'], env, { gateway: () => gateway });
    expect(none).toMatchObject({ code: EXIT.ok, out: 'no pending dead letters' });
  });

  it('replay never opens an incident for a Watchdog alert (the webhook’s rule)', async () => {
    const WATCHDOG = { labels: { alertname: 'Watchdog', severity: 'none' } };
    const mixed = await deadLetterThroughApi(
      file,
      alertmanagerPayload({
        groupKey: 'mixed',
        alerts: [WATCHDOG, { labels: { alertname: 'ServiceDown', severity: 'page' } }],
      }),
    );
    await appendDeadLetter(file, {
      id: 'dl-wd-00000000',
      at: '2026-11-26T10:00:00.000Z',
      source: 'alertmanager',
      stage: 'ingest',
      error: 'x',
      body: alertmanagerPayload({ groupKey: 'watchdog', alerts: [WATCHDOG] }),
    });
    const gateway = new FakeGateway();
    const res = await cli(['deadletter', 'replay', '--all', '--json'], env, { gateway: () => gateway });
    expect(res.code).toBe(EXIT.ok);
    expect(gateway.batches.map((b) => b.alerts.map((a) => a.labels['alertname']))).toEqual([['ServiceDown']]);
    expect(JSON.parse(res.out)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: mixed,
          status: 'replayed',
          result: expect.objectContaining({ action: 'started' }),
        }),
        expect.objectContaining({
          id: 'dl-wd-00000000',
          status: 'replayed',
          result: expect.objectContaining({ action: 'ignored', id: null }),
        }),
      ]),
    );
  });

  it('a replay that fails again is recorded, leaves the letter pending and exits 1', async () => {
    const id = await deadLetterThroughApi(file, alertmanagerPayload());
    const gateway = new FakeGateway();
    gateway.failWith = new Error('still broken');
    const res = await cli(['deadletter', 'replay', id], env, { gateway: () => gateway });
    expect(res.code).toBe(EXIT.refused);
    expect(res.out).toBe(`${id}  failed again: Error: still broken`);
    expect(await readDeadLetters(file)).toMatchObject([
      { id, status: 'pending', failedReplays: 1, lastError: 'Error: still broken' },
    ]);
  });

  it('an unreachable Temporal stops the replay (exit 3) and marks nothing', async () => {
    const id = await deadLetterThroughApi(file, alertmanagerPayload());
    const before = await readFile(file, 'utf8');
    const res = await cli(['deadletter', 'replay', id, '--json'], env);
    expect(res.code).toBe(EXIT.unreachable);
    expect(JSON.parse(res.out)).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });
    const gateway = new FakeGateway();
    gateway.failWith = Object.assign(new Error('14 UNAVAILABLE'), { code: 14 });
    expect((await cli(['deadletter', 'replay', '--all'], env, { gateway: () => gateway })).code).toBe(
      EXIT.unreachable,
    );
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('an unknown letter is not found (exit 1)', async () => {
    await appendDeadLetter(file, {
      id: 'dl-abc-00000000',
      at: '2026-11-26T10:00:00.000Z',
      source: 'alertmanager',
      stage: 'mapping',
      error: 'x',
      body: {},
    });
    const res = await cli(['deadletter', 'replay', 'dl-abc-11111111', '--json'], env, {
      gateway: () => new FakeGateway(),
    });
    expect(res.code).toBe(EXIT.refused);
    expect(JSON.parse(res.out)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it.each([
    ['no id and no --all', ['deadletter', 'replay']],
    ['an id and --all', ['deadletter', 'replay', 'dl-abc-00000000', '--all']],
    ['a malformed id', ['deadletter', 'replay', 'INC-00000000']],
    ['an unknown status', ['deadletter', 'list', '--status', 'lost']],
    ['an unknown subcommand', ['deadletter', 'purge']],
  ])('%s is a usage error (exit 2) before connecting', async (_what, args) => {
    const res = await cli([...args, '--json'], env);
    expect(res.code).toBe(EXIT.usage);
    expect(JSON.parse(res.out)).toMatchObject({ error: { code: 'USAGE' } });
    expect(res.connects).toBe(0);
  });

  it.each([[['deadletter']], [['deadletter', 'list']], [['deadletter', 'replay']]])(
    '%s --help exits 0',
    async (command) => {
      const res = await cli([...command, '--help'], env);
      expect(res.code).toBe(EXIT.ok);
      expect(res.out).toContain(`Usage: incident ${command.join(' ')}`);
    },
  );
});
