import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../src/starter/cli/index.ts';
import type { CliIo } from '../../src/starter/cli/index.ts';
import type { MaintenanceWindow, MaintenanceWindowInput } from '../../src/domain/maintenance.ts';
import { addWindowRefusal, newWindow, stateAt } from '../../src/domain/maintenance.ts';
import type { OutboxEntry } from '../../src/outbox-file.ts';
import { MaintenanceNotFoundError, MaintenanceRefusedError } from '../../src/starter/client/errors.ts';
import type { MaintenanceStore, MaintenanceWindowView } from '../../src/starter/client/maintenance.ts';

/** The maintenance workflow's rules, in memory. */
class FakeMaintenance implements MaintenanceStore {
  readonly windows: MaintenanceWindow[] = [];
  readonly calls: unknown[] = [];
  add(input: MaintenanceWindowInput): Promise<MaintenanceWindow> {
    this.calls.push(['add', input]);
    const refusal = addWindowRefusal(input, Date.now());
    if (refusal) return Promise.reject(new MaintenanceRefusedError(refusal));
    const window = newWindow(`mw-${String(this.windows.length).padStart(8, '0')}`, input);
    this.windows.push(window);
    return Promise.resolve(window);
  }
  list(at = Date.now()): Promise<MaintenanceWindowView[]> {
    return Promise.resolve(
      this.windows.map((w) => ({ ...w, source: 'operator' as const, state: stateAt(w, at) })),
    );
  }
  end(id: string, by?: string): Promise<MaintenanceWindow> {
    this.calls.push(['end', id, by]);
    const window = this.windows.find((w) => w.id === id);
    if (!window) return Promise.reject(new MaintenanceNotFoundError(id));
    window.endedAt = new Date().toISOString();
    if (by) window.endedBy = by;
    return Promise.resolve(window);
  }
  activeFor(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, inject: Partial<CliIo> = {}) {
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

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('incident maintenance', () => {
  it('add sends the window, with --by as its author, and prints it', async () => {
    const store = new FakeMaintenance();
    const to = inAnHour();
    const { code, out } = await cli(
      [
        'maintenance',
        'add',
        '--service',
        'pno-physics-bench',
        '--to',
        to,
        '--reason',
        'db migration',
        '--json',
      ],
      { INCIDENT_USER: 'alice' },
      { maintenance: () => store },
    );
    expect(code).toBe(EXIT.ok);
    expect(store.calls).toEqual([
      [
        'add',
        {
          service: 'pno-physics-bench',
          from: expect.any(String),
          to,
          reason: 'db migration',
          createdBy: 'alice',
        },
      ],
    ]);
    expect(JSON.parse(out)).toMatchObject({ id: 'mw-00000000', service: 'pno-physics-bench', to });
    const human = await cli(['maintenance', 'list'], {}, { maintenance: () => store });
    expect(human.out).toMatch(
      /^active\s+operator mw-00000000 {2}pno-physics-bench {2}\S+ → \S+ {2}db migration {2}\(by alice\)$/,
    );
  });

  it('--from and --to take any ISO offset and are sent in UTC', async () => {
    const store = new FakeMaintenance();
    await cli(
      [
        'maintenance',
        'add',
        '--service',
        '*',
        '--from',
        '2030-01-01T01:00+01:00',
        '--to',
        '2030-01-01T03:00:00+01:00',
        '--reason',
        'r',
      ],
      {},
      { maintenance: () => store },
    );
    expect(store.calls[0]).toEqual([
      'add',
      { service: '*', from: '2030-01-01T00:00:00.000Z', to: '2030-01-01T02:00:00.000Z', reason: 'r' },
    ]);
  });

  it('list --json prints the windows; an empty list says so', async () => {
    const store = new FakeMaintenance();
    expect((await cli(['maintenance', 'list'], {}, { maintenance: () => store })).out).toBe(
      'no maintenance windows',
    );
    await store.add({ service: 's', from: new Date().toISOString(), to: inAnHour(), reason: 'r' });
    const { out } = await cli(['maintenance', 'list', '--json'], {}, { maintenance: () => store });
    expect(JSON.parse(out)).toEqual([
      expect.objectContaining({ id: 'mw-00000000', state: 'active', source: 'operator' }),
    ]);
  });

  it('end ends the window; an unknown one exits 1 with NOT_FOUND, a refusal with REFUSED', async () => {
    const store = new FakeMaintenance();
    await store.add({ service: 's', from: new Date().toISOString(), to: inAnHour(), reason: 'r' });
    const ended = await cli(
      ['maintenance', 'end', 'mw-00000000', '--by', 'bob', '--json'],
      {},
      { maintenance: () => store },
    );
    expect(ended.code).toBe(EXIT.ok);
    expect(JSON.parse(ended.out)).toMatchObject({ id: 'mw-00000000', endedBy: 'bob' });
    const unknown = await cli(
      ['maintenance', 'end', 'mw-99999999', '--json'],
      {},
      { maintenance: () => store },
    );
    expect(unknown.code).toBe(EXIT.refused);
    expect(JSON.parse(unknown.out)).toEqual({
      error: { code: 'NOT_FOUND', message: 'no maintenance window mw-99999999' },
    });
    const past = await cli(
      [
        'maintenance',
        'add',
        '--service',
        's',
        '--from',
        '2020-01-01T00:00:00Z',
        '--to',
        '2020-01-02T00:00:00Z',
        '--reason',
        'r',
        '--json',
      ],
      {},
      { maintenance: () => store },
    );
    expect(past.code).toBe(EXIT.refused);
    expect(JSON.parse(past.out)).toMatchObject({ error: { code: 'REFUSED' } });
  });

  it.each([
    ['no --to', ['maintenance', 'add', '--service', 's', '--reason', 'r']],
    ['no --reason', ['maintenance', 'add', '--service', 's', '--to', '2030-01-01T00:00:00Z']],
    ['no --service', ['maintenance', 'add', '--to', '2030-01-01T00:00:00Z', '--reason', 'r']],
    [
      'a blank reason',
      ['maintenance', 'add', '--service', 's', '--to', '2030-01-01T00:00:00Z', '--reason', ' '],
    ],
    ['a --to that is no date', ['maintenance', 'add', '--service', 's', '--to', 'tonight', '--reason', 'r']],
    [
      'an end before the start',
      [
        'maintenance',
        'add',
        '--service',
        's',
        '--from',
        '2030-01-02T00:00:00Z',
        '--to',
        '2030-01-01T00:00:00Z',
        '--reason',
        'r',
      ],
    ],
    ['end without an id', ['maintenance', 'end']],
    ['an unknown subcommand', ['maintenance', 'pause']],
  ])('%s is a usage error before connecting', async (_what, args) => {
    const { code, out, err, connects } = await cli([...args, '--json']);
    expect(code).toBe(EXIT.usage);
    expect(err.split('\n')).toHaveLength(1);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'USAGE' } });
    expect(connects).toBe(0);
  });

  it('exits 3 when Temporal is unreachable', async () => {
    const { code, out } = await cli(['maintenance', 'list', '--json']);
    expect(code).toBe(EXIT.unreachable);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });
  });

  it.each([
    ['maintenance'],
    ['maintenance', 'add'],
    ['maintenance', 'list'],
    ['maintenance', 'end'],
    ['outbox'],
  ])('%s --help exits 0', async (...command) => {
    const { code, out } = await cli([...command, '--help']);
    expect(code).toBe(EXIT.ok);
    expect(out).toContain(`Usage: incident ${command.join(' ')}`);
    expect(out).toContain('--json');
  });
});

describe('incident outbox', () => {
  let dir: string;
  let file: string;
  const entries: OutboxEntry[] = [
    {
      at: '2026-03-07T22:00:00.000Z',
      channel: 'pager',
      target: 'alice',
      text: 'P1 HighErrorRate\nmore',
      incidentId: 'INC-00000001',
    },
    {
      at: '2026-03-07T22:00:01.000Z',
      channel: 'slack',
      target: '#pno-incidents',
      text: '🚨 INCIDENT ALERT - P1\n…',
      incidentId: 'INC-00000001',
    },
    {
      at: '2026-03-07T22:05:00.000Z',
      channel: 'email',
      target: 'bob@example.com',
      subject: '[INC-00000002] P2 Slow',
      text: 'body',
      incidentId: 'INC-00000002',
    },
  ];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outbox-cli-'));
    file = path.join(dir, 'outbox.jsonl');
    await writeFile(file, `${entries.map((e) => JSON.stringify(e)).join('\n')}\nnot json\n`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists one line per message, newest first, without Temporal or a policy', async () => {
    const { code, out, connects } = await cli(['outbox'], {
      INCIDENT_OUTBOX: file,
      INCIDENT_CONFIG: '/nonexistent.yaml',
    });
    expect(code).toBe(EXIT.ok);
    expect(connects).toBe(0);
    expect(out.split('\n')).toEqual([
      '2026-03-07T22:05:00.000Z  email   bob@example.com  INC-00000002  [INC-00000002] P2 Slow',
      '2026-03-07T22:00:01.000Z  slack   #pno-incidents  INC-00000001  🚨 INCIDENT ALERT - P1',
      '2026-03-07T22:00:00.000Z  pager   alice  INC-00000001  P1 HighErrorRate',
    ]);
  });

  it('--json prints the messages; --channel, --incident and --limit filter them', async () => {
    const all = await cli(['outbox', '--json'], { INCIDENT_OUTBOX: file });
    expect(JSON.parse(all.out)).toEqual([entries[2], entries[1], entries[0]]);
    const pager = await cli(['outbox', '--channel', 'pager', '--json'], { INCIDENT_OUTBOX: file });
    expect(JSON.parse(pager.out)).toEqual([entries[0]]);
    const one = await cli(['outbox', '--incident', 'INC-00000001', '--limit', '1', '--json'], {
      INCIDENT_OUTBOX: file,
    });
    expect(JSON.parse(one.out)).toEqual([entries[1]]);
    expect((await cli(['outbox', '--limit', '0'], { INCIDENT_OUTBOX: file })).code).toBe(EXIT.usage);
    expect((await cli(['outbox', '--incident', 'INC-1'], { INCIDENT_OUTBOX: file })).code).toBe(EXIT.usage);
  });

  it('a missing file is an empty outbox', async () => {
    const { code, out } = await cli(['outbox'], { INCIDENT_OUTBOX: path.join(dir, 'none.jsonl') });
    expect(code).toBe(EXIT.ok);
    expect(out).toMatch(/is empty$/);
  });

  it('without INCIDENT_OUTBOX the outbox is off: exit 1', async () => {
    const { code, err, out } = await cli(['outbox', '--json']);
    expect(code).toBe(EXIT.refused);
    expect(err).toBe('incident: the outbox is off (set INCIDENT_OUTBOX, as npm start does)');
    expect(JSON.parse(out)).toEqual({
      error: { code: 'OUTBOX_OFF', message: 'the outbox is off (set INCIDENT_OUTBOX, as npm start does)' },
    });
  });
});
