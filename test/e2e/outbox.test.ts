/**
 * A laptop with no provider configured (`npm start`'s default): every channel is delivered to the local
 * outbox, which `/outbox` and `incident outbox` show; nothing is recorded as sent to a provider.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../src/outbox-file.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);
let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;
let dir: string;

beforeAll(async () => {
  server = await startTestDevServer();
  dir = await mkdtemp(path.join(tmpdir(), 'pno-outbox-'));
  stack = await startStack({
    address: server.address,
    name: 'e2e-outbox',
    workflowBundle: await workflowBundle(),
    env: {
      INCIDENT_OUTBOX: path.join(dir, 'outbox.jsonl'),
      SLACK_BOT_TOKEN: '',
      SMTP_URL: '',
      PAGERDUTY_ROUTING_KEY: '',
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the laptop outbox', () => {
  it('takes every channel of a P1, and /outbox and `incident outbox` show who would have been paged, and how', async () => {
    const res = await stack.postAlerts(alertmanagerPayload({ groupKey: `{}:{run="${randomUUID()}"}` }));
    const id = ((await res.json()) as { incidents: { id: string }[] }).incidents[0]?.id ?? '';
    // A laptop has no cluster: the HighErrorRate playbook runs dry and posts its plan to the thread.
    await eventually('the playbook’s dry run to finish', async () =>
      (await stack.incidents.getIncident(id)).playbook?.status === 'completed' ? true : undefined,
    );
    const entries = await eventually('the outbox to fill', async () => {
      const page = await fetch(`${stack.api.address}/outbox?format=json`);
      const all = (await page.json()) as { messages?: OutboxEntry[] } | OutboxEntry[];
      const list = Array.isArray(all) ? all : (all.messages ?? []);
      const mine = list.filter((m) => m.incidentId === id);
      return mine.length >= 7 ? mine : undefined;
    });
    expect(entries.map((e) => `${e.channel} ${e.target}`).sort()).toEqual(
      [
        `pager ${id}:on-call-engineer`,
        'phone +15550100001',
        'slack #pno-incidents',
        'slack #pno-incidents (thread)',
        'slack #pno-leadership',
        'slack #pno-leadership (thread)',
        'sms +15550100001',
      ].sort(),
    );
    expect(entries.filter((e) => e.text.includes('playbook highErrorRate (dry run)'))).toHaveLength(2);
    const state = await stack.incidents.getIncident(id);
    const delivered = state.timeline.filter((t) => t.kind === 'notified').map((t) => t.message);
    expect(delivered.every((m) => m.includes('(outbox)'))).toBe(true);

    const cli = await run('bin/incident', ['outbox', '--incident', id, '--json'], {
      env: stack.env,
      encoding: 'utf8',
    });
    expect((JSON.parse(cli.stdout) as OutboxEntry[]).map((e) => e.channel).sort()).toEqual([
      'pager',
      'phone',
      'slack',
      'slack',
      'slack',
      'slack',
      'sms',
    ]);
  });
});
