import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { eventually } from '../support/eventually.ts';
import { ALICE_ALSO_LEADS, policyFileWith } from '../support/policy.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);
const TOKENS = {
  alice: `alice-${randomUUID()}`,
  carol: `carol-${randomUUID()}`,
  dave: `dave-${randomUUID()}`,
  grace: `grace-${randomUUID()}`,
};

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;

beforeAll(async () => {
  server = await startTestDevServer();
  stack = await startStack({
    address: server.address,
    name: 'e2e-ops',
    workflowBundle: await workflowBundle(),
    env: {
      INCIDENT_TOKEN_ALICE: TOKENS.alice,
      INCIDENT_TOKEN_CAROL: TOKENS.carol,
      INCIDENT_TOKEN_DAVE: TOKENS.dave,
      INCIDENT_TOKEN_GRACE: TOKENS.grace,
      // Alice assigns a commander and resolves a P1 here: she is also the engineering lead.
      INCIDENT_CONFIG: policyFileWith(ALICE_ALSO_LEADS),
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
});

async function call(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${stack.api.address}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return {
    status: res.status,
    body: (await res.json()) as IncidentState & { error?: { code: string; message: string } },
  };
}

async function cli(...args: string[]) {
  const { stdout } = await run('bin/incident', [...args, '--json'], { env: stack.env, encoding: 'utf8' });
  return JSON.parse(stdout) as IncidentState;
}

describe('engineers run a whole incident', () => {
  it('through the HTTP API, with the actor taken from the bearer token', async () => {
    const declared = await call('POST', '/api/incidents', TOKENS.alice, {
      title: 'Checkout down',
      severity: 'P0',
      securityRelated: true,
    });
    expect(declared.status).toBe(201);
    const id = declared.body.id;
    expect(declared.body).toMatchObject({ severity: 'P0', status: 'triggered', securityRelated: true });

    expect((await call('POST', `/api/incidents/${id}/ack`, undefined, {})).status).toBe(401);
    expect((await call('POST', `/api/incidents/${id}/ack`, 'wrong', {})).status).toBe(401);
    expect((await call('POST', `/api/incidents/${id}/update`, TOKENS.alice, { message: '' })).status).toBe(
      400,
    );
    expect((await call('POST', `/api/incidents/INC-00000000/ack`, TOKENS.alice, {})).status).toBe(404);

    const acked = await call('POST', `/api/incidents/${id}/ack`, TOKENS.alice, { by: 'mallory' });
    expect(acked.status).toBe(400); // the actor is never a body field
    const ack = await call('POST', `/api/incidents/${id}/ack`, TOKENS.alice, {});
    expect(ack.body).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'alice' });
    const again = await call('POST', `/api/incidents/${id}/ack`, TOKENS.carol, {});
    expect(again.status).toBe(409);
    expect(again.body.error?.message).toContain('already acknowledged');

    await call('POST', `/api/incidents/${id}/update`, TOKENS.alice, {
      message: 'found the bad deploy',
      actions: ['rolled back'],
      public: true,
    });
    // The public status page (no token) never shows a security-related incident, not even its public update.
    const status = (await (await fetch(`${stack.api.address}/status.json`)).json()) as {
      incidents: { id: string }[];
    };
    expect(status.incidents.some((i) => i.id === id)).toBe(false);
    const page = await (await fetch(`${stack.api.address}/status`)).text();
    expect(page).not.toContain('found the bad deploy');
    expect(page).not.toContain('alice');
    const early = await call('POST', `/api/incidents/${id}/resolve`, TOKENS.alice, {
      rootCause: 'bad deploy',
    });
    expect(early.status).toBe(409);
    // Grace (development team) may do neither: 403, naming who may.
    const notHers = await call('POST', `/api/incidents/${id}/commander`, TOKENS.grace, {
      commander: 'grace',
    });
    expect(notHers.status).toBe(403);
    expect(notHers.body.error).toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringContaining(
        'only engineering-lead or incident-commander or vp-engineering or cto may',
      ),
    });
    expect(
      (await call('POST', `/api/incidents/${id}/resolve`, TOKENS.grace, { rootCause: 'x' })).status,
    ).toBe(403);
    await call('POST', `/api/incidents/${id}/commander`, TOKENS.alice, { commander: 'carol' });
    await call('POST', `/api/incidents/${id}/security`, TOKENS.dave, {
      finding: 'no data exposed',
      related: false,
    });
    const resolved = await call('POST', `/api/incidents/${id}/resolve`, TOKENS.carol, {
      rootCause: 'bad deploy',
      prevention: 'canary',
    });
    expect(resolved.body).toMatchObject({ status: 'resolved', resolvedBy: 'carol', commander: 'carol' });
    const actors = resolved.body.timeline
      .filter((t) => t.actor !== 'system' && t.kind !== 'notified')
      .map((t) => [t.kind, t.actor]);
    expect(actors).toEqual(
      expect.arrayContaining([
        ['acknowledged', 'alice'],
        ['update', 'alice'],
        ['commander', 'alice'],
        ['security_evaluation', 'dave'],
        ['resolved', 'carol'],
      ]),
    );
    // Closed incidents stay readable.
    expect((await call('GET', `/api/incidents/${id}`, TOKENS.alice)).body.status).toBe('resolved');
  });

  it('through the CLI', async () => {
    const declared = await cli('declare', '--severity', 'P2', '--title', 'Slow reports', '--by', 'alice');
    const id = declared.id;
    expect(await cli('ack', id, '--by', 'alice')).toMatchObject({ status: 'acknowledged' });
    const updated = await cli(
      'update',
      id,
      '--by',
      'alice',
      '--message',
      'scaling up',
      '--action',
      'scaled to 5',
      '--eta',
      '30m',
    );
    expect(updated.actionsTaken).toEqual(['scaled to 5']);
    expect(await cli('severity', id, 'P1', '--by', 'alice')).toMatchObject({
      severity: 'P1',
      escalationLevel: 1,
    });
    const lowered = await run('bin/incident', ['severity', id, 'P3', '--by', 'grace', '--json'], {
      env: stack.env,
    }).catch((e: { code: number; stdout: string }) => e);
    expect((lowered as { code: number }).code).toBe(1);
    expect(JSON.parse((lowered as { stdout: string }).stdout)).toMatchObject({
      error: { code: 'FORBIDDEN', message: expect.stringContaining('lower the severity of a P1 incident') },
    });
    expect(await cli('escalate', id, '--by', 'alice', '--reason', 'need the lead')).toMatchObject({
      escalationLevel: 2,
    });
    expect(await cli('mitigate', id, '--by', 'alice')).toMatchObject({ status: 'mitigated' });
    expect(await cli('resolve', id, '--by', 'alice', '--root-cause', 'cold cache')).toMatchObject({
      status: 'resolved',
    });

    const refused = await run('bin/incident', ['ack', id, '--by', 'alice', '--json'], {
      env: stack.env,
    }).catch((e: { code: number; stdout: string }) => e);
    expect((refused as { code: number }).code).toBe(1);
    const unknown = await run('bin/incident', ['ack', id, '--by', 'mallory'], { env: stack.env }).catch(
      (e: { code: number }) => e,
    );
    expect((unknown as { code: number }).code).toBe(1);

    const listed = JSON.parse(
      (await run('bin/incident', ['list', '--status', 'resolved', '--json'], { env: stack.env })).stdout,
    ) as { id: string }[];
    expect(listed.map((i) => i.id)).toContain(id);
  });

  it('playbooks on a laptop (no cluster): investigation, a dry run through the API and the CLI, refusals', async () => {
    const declared = await call('POST', '/api/incidents', TOKENS.alice, {
      title: 'API errors',
      severity: 'P2',
    });
    const id = declared.body.id;
    // No playbook for a declared incident: the initial investigation runs (and says what it could not read).
    const investigated = await eventually('the investigation', async () => {
      const state = (await call('GET', `/api/incidents/${id}`, TOKENS.alice)).body;
      return state.investigation?.status === 'completed' ? state : undefined;
    });
    expect(investigated.investigation?.summary).toContain('not read');

    expect((await call('DELETE', `/api/incidents/${id}/playbook`, TOKENS.alice)).status).toBe(409);
    const approve = await call('POST', `/api/incidents/${id}/approve`, TOKENS.alice, { stepId: 'rollback' });
    expect(approve.status).toBe(409);
    expect(approve.body.error?.message).toContain('waits for approval');
    expect((await call('POST', `/api/incidents/${id}/playbook`, TOKENS.alice, { name: 'nope' })).status).toBe(
      400,
    );

    const started = await call('POST', `/api/incidents/${id}/playbook`, TOKENS.alice, {
      name: 'serviceOutage',
    });
    expect(started.status).toBe(200);
    expect(started.body.playbook).toMatchObject({
      name: 'serviceOutage',
      status: 'running',
      trigger: 'manual',
    });
    const done = await eventually('the dry run', async () => {
      const state = (await call('GET', `/api/incidents/${id}`, TOKENS.alice)).body;
      return state.playbook?.status === 'completed' ? state : undefined;
    });
    // The stack's health URL refuses connections: the outage is "confirmed", the restart only planned.
    expect(done.playbook).toMatchObject({ outcome: 'escalated', dryRun: true });
    expect(done.playbook?.steps.find((s) => s.id === 'restart_unhealthy_pods')?.status).toBe('planned');
    expect(done.severity).toBe('P2');

    const again = await cli('playbook', 'run', id, 'highErrorRate', '--by', 'alice');
    expect(again.playbook).toMatchObject({ name: 'highErrorRate', status: 'running', runs: 2 });
    const shown = await run('bin/incident', ['show', id], { env: stack.env, encoding: 'utf8' });
    expect(shown.stdout).toContain('playbook highErrorRate');
  });
});
