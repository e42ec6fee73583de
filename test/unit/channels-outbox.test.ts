import { mkdtemp, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/activities/channels/outbox.ts';
import { readOutbox } from '../../src/outbox-file.ts';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function setup() {
  dir = await mkdtemp(join(tmpdir(), 'outbox-'));
  const file = join(dir, 'data', 'outbox.jsonl');
  let t = Date.parse('2025-01-01T00:00:00.000Z');
  const outbox = new Outbox({ file, now: () => new Date((t += 1000)) });
  return { file, outbox };
}

describe('outbox', () => {
  it('appends one JSON line per message and reads them back newest first', async () => {
    const { file, outbox } = await setup();
    await outbox.append({ channel: 'slack', target: '#pno-incidents', text: 'first', incidentId: 'INC-1' });
    await outbox.append({
      channel: 'email',
      target: 'oncall@example.com',
      subject: 'P1',
      text: 'second',
      incidentId: 'INC-1',
    });
    await outbox.append({ channel: 'sms', target: '+14155550100', text: 'third', incidentId: 'INC-2' });
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[1] ?? '')).toEqual({
      at: '2025-01-01T00:00:02.000Z',
      channel: 'email',
      target: 'oncall@example.com',
      subject: 'P1',
      text: 'second',
      incidentId: 'INC-1',
    });
    expect((await readOutbox(file)).map((e) => e.text)).toEqual(['third', 'second', 'first']);
    expect((await readOutbox(file, { limit: 2 })).map((e) => e.text)).toEqual(['third', 'second']);
    expect((await readOutbox(file, { channel: 'slack' })).map((e) => e.text)).toEqual(['first']);
    expect((await readOutbox(file, { incidentId: 'INC-1' })).map((e) => e.text)).toEqual(['second', 'first']);
  });

  it('concurrent appends never interleave lines', async () => {
    const { file, outbox } = await setup();
    const big = 'x'.repeat(20_000);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        outbox.append({ channel: 'slack', target: '#c', text: `${i}:${big}`, incidentId: `INC-${i}` }),
      ),
    );
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(200);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(await readOutbox(file)).toHaveLength(200);
  });

  it('a missing file is an empty outbox; a torn line is skipped', async () => {
    const { file, outbox } = await setup();
    expect(await readOutbox(file)).toEqual([]);
    await outbox.append({
      channel: 'pager',
      target: 'INC-1:on-call-engineer',
      text: 'page',
      incidentId: 'INC-1',
    });
    await appendFile(file, '{"at":"2025-01-01T00:00:09.000Z","chan');
    expect((await readOutbox(file)).map((e) => e.text)).toEqual(['page']);
  });
});
