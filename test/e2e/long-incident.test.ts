/**
 * Issue 11 on the real stack (dev server, worker, API, CLI): an alert group with pod churn reaches 5,000
 * distinct alerts through the real webhook; the incident keeps running with a bounded state, `show` stays
 * fast and small, and `show --full` (API `?full=true`, CLI `--full`) gives the whole record from the
 * incident record store the worker appends to.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { CARRY_BUDGET_BYTES } from '../../src/domain/incident-record.ts';
import { IncidentRecordFile } from '../../src/incident-record-file.ts';
import { RecordIncompleteError } from '../../src/starter/client/errors.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { alertmanagerPayload, podAlert } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);
const ALICE = `alice-${randomUUID()}`;
let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;

beforeAll(async () => {
  server = await startTestDevServer();
  stack = await startStack({
    address: server.address,
    name: 'e2e-long',
    workflowBundle: await workflowBundle(),
    env: { INCIDENT_TOKEN_ALICE: ALICE },
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
});

async function show(id: string, query = ''): Promise<{ ms: number; bytes: number; state: IncidentState }> {
  const t0 = performance.now();
  const res = await fetch(`${stack.api.address}/api/incidents/${id}${query}`, {
    headers: { authorization: `Bearer ${ALICE}` },
  });
  const text = await res.text();
  expect(res.status).toBe(200);
  return { ms: performance.now() - t0, bytes: text.length, state: JSON.parse(text) as IncidentState };
}

describe('a long incident', () => {
  it('5,000 distinct alerts in one group: running, bounded, show fast, the whole record with --full', async () => {
    const groupKey = `{}:{namespace="pno-prod-${randomUUID()}"}`;
    let id: string | undefined;
    // Alertmanager sends the whole group each time: 10 notifications, 500 more pods each (the latest 1,000 at most).
    for (let n = 1; n <= 10; n++) {
      const alerts = Array.from({ length: 500 }, (_, j) => podAlert((n - 1) * 500 + j));
      const res = await stack.postAlerts(alertmanagerPayload({ groupKey, alerts }));
      const body = (await res.json()) as { incidents: { id: string | null; action: string }[] };
      expect([res.status, body.incidents[0]?.action]).toEqual([202, n === 1 ? 'started' : 'signalled']);
      id ??= body.incidents[0]?.id ?? undefined;
    }
    if (!id) throw new Error('no incident');
    const incidentId = id;
    const bounded = await eventually(
      'the 5,000 alerts counted',
      async () => {
        const s = await show(incidentId);
        return s.state.record?.counts.alerts === 5_000 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(bounded.state.status).toBe('triggered');
    expect(bounded.bytes).toBeLessThan(CARRY_BUDGET_BYTES);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await show(incidentId)).ms);
    const full = await eventually(
      'the record store to hold every alert',
      async () => {
        const s = await show(incidentId, '?full=true');
        return s.state.alerts.length === 5_000 ? s : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(new Set(full.state.alerts.map((a) => a.fingerprint)).size).toBe(5_000);
    expect(full.state.timeline).toHaveLength(full.state.record?.counts.timeline ?? -1);
    console.log(
      `show: ${Math.round(bounded.bytes / 1024)} KiB in ${Math.max(...times).toFixed(0)} ms (max of 5); ` +
        `show --full: ${Math.round(full.bytes / 1024)} KiB in ${full.ms.toFixed(0)} ms`,
    );

    // The CLI reads the same record (direct mode: the record store's directory from the environment).
    const { stdout } = await run('bin/incident', ['show', incidentId, '--full', '--json'], {
      env: stack.env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect((JSON.parse(stdout) as IncidentState).alerts).toHaveLength(5_000);
    // A reader whose record store is not the worker's refuses, naming what it lacks, never a part as the whole.
    const elsewhere = new TemporalIncidents(
      stack.client,
      stack.settings.temporal.taskQueue,
      stack.settings.policy,
      {
        records: new IncidentRecordFile(await mkdtemp(path.join(tmpdir(), 'pno-other-records-'))),
      },
    );
    const refused = await elsewhere.getIncident(incidentId, { full: true }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RecordIncompleteError);
    expect((refused as Error).message).toMatch(/lacks entries .*\balerts: \d+/);
    // A wrong query value is a clear 400.
    const bad = await fetch(`${stack.api.address}/api/incidents/${incidentId}?full=yes`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    expect(bad.status).toBe(400);
  }, 180_000);
});
