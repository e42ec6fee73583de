import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentInput } from '../../src/contract/messages.ts';
import type { MaintenanceWindow } from '../../src/domain/maintenance.ts';
import type { MaintenanceWindowView } from '../../src/starter/client/maintenance.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;

beforeAll(async () => {
  server = await startTestDevServer();
  stack = await startStack({
    address: server.address,
    name: 'e2e-maintenance',
    workflowBundle: await workflowBundle(),
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
});

/** `incident … --json`: exit code and parsed stdout, whatever the exit code. */
async function cli<T>(...args: string[]): Promise<{ code: number; body: T; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bin/incident', [...args, '--json'], {
      env: stack.env,
      encoding: 'utf8',
    });
    return { code: 0, body: JSON.parse(stdout) as T, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, body: JSON.parse(e.stdout) as T, stderr: e.stderr };
  }
}

/** The input the incident's first run started with, read back from its history. */
async function startInput(workflowId: string): Promise<IncidentInput> {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`no start input for ${workflowId}`);
  return defaultPayloadConverter.fromPayload<IncidentInput>(payload);
}

async function postGroup() {
  const res = await stack.postAlerts(alertmanagerPayload({ groupKey: `{}:{run="${randomUUID()}"}` }));
  expect(res.status).toBe(202);
  const body = (await res.json()) as { incidents: { id: string; workflowId: string; action: string }[] };
  const [incident] = body.incidents;
  expect(incident?.action).toBe('started');
  return incident as { id: string; workflowId: string };
}

describe('maintenance windows, on a real Temporal dev server', () => {
  it('maintenance add, then an alert for that service opens an incident that carries the window', async () => {
    // Before any window: the maintenance workflow does not exist yet, and the list is empty.
    expect(await cli<MaintenanceWindowView[]>('maintenance', 'list')).toMatchObject({ code: 0, body: [] });

    const to = new Date(Date.now() + 3_600_000).toISOString();
    const added = await cli<MaintenanceWindow>(
      'maintenance',
      'add',
      '--service',
      'pno-physics-bench',
      '--to',
      to,
      '--reason',
      'database migration',
      '--by',
      'alice',
    );
    expect(added.code).toBe(0);
    expect(added.body).toMatchObject({
      service: 'pno-physics-bench',
      to,
      reason: 'database migration',
      createdBy: 'alice',
    });
    const listed = await cli<MaintenanceWindowView[]>('maintenance', 'list');
    expect(listed.body).toEqual([
      expect.objectContaining({ id: added.body.id, state: 'active', source: 'operator' }),
    ]);

    const incident = await postGroup();
    const input = await startInput(incident.workflowId);
    expect(input.maintenance).toEqual({ id: added.body.id, reason: 'database migration', until: to });

    // A declared incident of the same service carries it too; one of another service does not.
    const declared = await cli<{ id: string; workflowId: string }>(
      'declare',
      '--severity',
      'P1',
      '--title',
      'Slow writes',
      '--service',
      'pno-physics-bench',
      '--by',
      'alice',
    );
    expect(declared.code).toBe(0);
    expect((await startInput(declared.body.workflowId)).maintenance?.id).toBe(added.body.id);
    const elsewhere = await cli<{ workflowId: string }>(
      'declare',
      '--severity',
      'P1',
      '--title',
      'Checkout slow',
      '--service',
      'checkout',
      '--by',
      'alice',
    );
    expect((await startInput(elsewhere.body.workflowId)).maintenance).toBeUndefined();

    // Ended: once the API's short cache has expired, new incidents page again.
    const ended = await cli<MaintenanceWindow>('maintenance', 'end', added.body.id, '--by', 'bob');
    expect(ended).toMatchObject({ code: 0, body: { id: added.body.id, endedBy: 'bob' } });
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    const after = await postGroup();
    expect((await startInput(after.workflowId)).maintenance).toBeUndefined();
  });

  it('refusals exit 1 with the reason; a malformed window is a usage error', async () => {
    const past = await cli<{ error: { code: string; message: string } }>(
      'maintenance',
      'add',
      '--service',
      'x',
      '--from',
      '2020-01-01T00:00:00Z',
      '--to',
      '2020-01-01T01:00:00Z',
      '--reason',
      'long ago',
    );
    expect(past.code).toBe(1);
    expect(past.body.error).toMatchObject({
      code: 'REFUSED',
      message: expect.stringMatching(/ends in the past/),
    });
    const unknown = await cli<{ error: { code: string } }>('maintenance', 'end', 'mw-00000000');
    expect(unknown).toMatchObject({ code: 1, body: { error: { code: 'NOT_FOUND' } } });
    const backwards = await cli<{ error: { code: string } }>(
      'maintenance',
      'add',
      '--service',
      'x',
      '--from',
      '2030-01-01T01:00:00Z',
      '--to',
      '2030-01-01T00:00:00Z',
      '--reason',
      'r',
    );
    expect(backwards).toMatchObject({ code: 2, body: { error: { code: 'USAGE' } } });
  });
});
