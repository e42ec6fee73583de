import { ApplicationFailure, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import { refusal, refusalOf } from '../../src/domain/operations.ts';
import { DEFAULT_PERMISSIONS, rolesOf } from '../../src/domain/permissions.ts';
import { PolicyError } from '../../src/domain/policy.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { toApiError } from '../../src/starter/api/http.ts';
import { EXIT, toCliError } from '../../src/starter/cli/errors.ts';
import { IncidentForbiddenError, IncidentRefusedError } from '../../src/starter/client/errors.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const policy = loadDefaultPolicy();

function incident(severity: IncidentState['severity'], extra: Partial<IncidentState> = {}): IncidentState {
  return {
    id: 'INC-0000beef',
    severity,
    status: 'acknowledged',
    securityRelated: false,
    ...extra,
  } as IncidentState;
}
const P0 = incident('P0');
/** A P0 whose gates are met: only the actor's roles can stand in the way of its resolution. */
const P0_READY = incident('P0', {
  commander: 'carol',
  securityEvaluation: { by: 'dave', at: '2025-03-03T10:00:00.000Z', finding: 'none', related: false },
});

describe('permissions: one person cannot meet a P0’s gates alone', () => {
  it('the on-call engineer may not lower a P0, appoint a commander, evaluate security or resolve it', () => {
    const alice = (op: Parameters<typeof refusal>[2], input: object, state = P0) =>
      refusal(policy, state, op, { by: 'alice', ...input });
    expect(alice('changeSeverity', { severity: 'P3' })).toBe(
      'alice may not lower the severity of a P0 incident: only incident-commander or engineering-lead may (alice is on-call-engineer; policy permissions.lowerSeverity)',
    );
    expect(alice('assignCommander', { commander: 'alice' })).toMatch(
      /^alice may not assign the commander of a P0 incident: only engineering-lead or incident-commander or vp-engineering or cto may/,
    );
    expect(alice('recordSecurityEvaluation', { finding: 'none' })).toMatch(
      /^alice may not record the security evaluation of a P0 incident: only security-team may/,
    );
    expect(alice('resolve', { rootCause: 'x' }, P0_READY)).toMatch(
      /^alice may not resolve a P0 incident: only incident-commander or engineering-lead may/,
    );
    // What every responder does stays open to her.
    for (const [op, input] of [
      ['postUpdate', { message: 'rolling back' }],
      ['escalate', { reason: 'need help' }],
      ['mitigate', {}],
      ['runPlaybook', { name: 'serviceOutage' }],
    ] as const)
      expect(alice(op, input), op).toBeUndefined();
    expect(
      refusal(policy, incident('P2'), 'changeSeverity', { by: 'alice', severity: 'P0' }),
    ).toBeUndefined();
  });

  it('a permission refusal is told apart from the others (the API answers 403, not 409)', () => {
    expect(refusalOf(policy, P0_READY, 'resolve', { by: 'alice', rootCause: 'x' })?.kind).toBe('forbidden');
    expect(refusalOf(policy, P0, 'resolve', { by: 'carol', rootCause: 'x' })).toEqual({
      kind: 'refused',
      reason: expect.stringContaining('needs an incident commander') as string,
    });
    expect(refusalOf(policy, P0, 'resolve', { by: 'mallory', rootCause: 'x' })?.kind).toBe('refused');
  });

  it('the roles the procedures name meet each gate', () => {
    expect(refusal(policy, P0, 'changeSeverity', { by: 'bob', severity: 'P1' })).toBeUndefined();
    expect(refusal(policy, P0, 'changeSeverity', { by: 'carol', severity: 'P1' })).toBeUndefined();
    for (const by of ['bob', 'carol', 'erin', 'frank'])
      expect(refusal(policy, P0, 'assignCommander', { by, commander: 'carol' }), by).toBeUndefined();
    expect(refusal(policy, P0, 'recordSecurityEvaluation', { by: 'dave', finding: 'none' })).toBeUndefined();
    expect(refusal(policy, P0_READY, 'resolve', { by: 'carol', rootCause: 'x' })).toBeUndefined();
    expect(refusal(policy, P0_READY, 'resolve', { by: 'bob', rootCause: 'x' })).toBeUndefined();
  });

  it('the incident’s own commander acts as incident commander on it, and only on it', () => {
    const commanded = { ...P0_READY, commander: 'alice' };
    expect(rolesOf(policy, 'alice', commanded)).toEqual(['on-call-engineer', 'incident-commander']);
    expect(refusal(policy, commanded, 'resolve', { by: 'alice', rootCause: 'x' })).toBeUndefined();
    expect(refusal(policy, P0_READY, 'resolve', { by: 'alice', rootCause: 'x' })).toMatch(/may not resolve/);
  });

  it('P1 closes by its lead or commander; P2 and P3 by whoever responds; only their responders lower a P2', () => {
    const P1 = incident('P1');
    expect(refusal(policy, P1, 'resolve', { by: 'alice', rootCause: 'x' })).toMatch(/may not resolve a P1/);
    expect(refusal(policy, P1, 'resolve', { by: 'bob', rootCause: 'x' })).toBeUndefined();
    for (const s of ['P2', 'P3'] as const)
      for (const by of ['alice', 'grace'])
        expect(refusal(policy, incident(s), 'resolve', { by, rootCause: 'x' }), `${by} ${s}`).toBeUndefined();
    expect(
      refusal(policy, incident('P2'), 'changeSeverity', { by: 'alice', severity: 'P3' }),
    ).toBeUndefined();
    expect(refusal(policy, incident('P2'), 'changeSeverity', { by: 'grace', severity: 'P3' })).toMatch(
      /grace may not lower the severity of a P2 incident: only on-call-engineer or engineering-lead or incident-commander may \(grace is development-team/,
    );
    // Remediation acts on production: not for those who are only informed (development team, security, VP).
    for (const by of ['grace', 'dave', 'erin'])
      expect(refusal(policy, incident('P2'), 'runPlaybook', { by, name: 'serviceOutage' }), by).toMatch(
        /may not run a playbook on a P2 incident/,
      );
  });

  it('a role comes from the person’s own list or from the policy’s roles: entry', () => {
    const listed = policyWith({
      people: { alice: { roles: [] } },
      roles: { 'engineering-lead': ['bob', 'alice'] },
    });
    expect(rolesOf(listed, 'alice')).toEqual(['on-call-engineer', 'engineering-lead']);
    expect(rolesOf(listed, 'constructor')).toEqual([]);
    expect(refusal(listed, P0_READY, 'resolve', { by: 'alice', rootCause: 'x' })).toBeUndefined();
  });

  it('an integration holds no role: it passes only what anyone may do', () => {
    expect(
      refusal(policy, incident('P0', { status: 'triggered' }), 'acknowledge', { by: 'pagerduty' }),
    ).toBeUndefined();
    const strict = policyWith({ permissions: { acknowledge: ['on-call-engineer'] } });
    expect(refusalOf(strict, P0, 'acknowledge', { by: 'pagerduty' })).toMatchObject({
      kind: 'forbidden',
      reason: expect.stringContaining('pagerduty holds no role') as string,
    });
  });
});

describe('permissions in the policy', () => {
  it('defaults to the procedures’ roles; each rule can be set, per severity too', () => {
    expect(policy.permissions).toEqual(DEFAULT_PERMISSIONS);
    const custom = policyWith({
      permissions: {
        // The file's P1 entry removed: a severity left out is anyone's.
        resolve: { P0: ['incident-commander'], P1: undefined, P2: ['on-call-engineer'] },
        escalate: ['on-call-engineer'],
      },
    });
    expect(custom.permissions.resolve).toEqual({ P0: ['incident-commander'], P2: ['on-call-engineer'] });
    expect(custom.permissions.lowerSeverity).toEqual(DEFAULT_PERMISSIONS.lowerSeverity);
    expect(refusal(custom, P0_READY, 'resolve', { by: 'bob', rootCause: 'x' })).toMatch(
      /only incident-commander may/,
    );
    expect(refusal(custom, incident('P1'), 'resolve', { by: 'grace', rootCause: 'x' })).toBeUndefined();
    expect(refusal(custom, incident('P2'), 'resolve', { by: 'grace', rootCause: 'x' })).toMatch(
      /only on-call-engineer may/,
    );
    expect(refusal(custom, incident('P3'), 'escalate', { by: 'grace', reason: 'x' })).toMatch(
      /may not escalate/,
    );
  });

  it.each([
    [{ resolve: { P0: ['janitor'] } }, 'permissions.resolve'],
    [{ resolve: [] }, 'permissions.resolve'],
    [{ resolve: 'everyone' }, 'permissions.resolve'],
    [{ deleteProduction: 'anyone' }, 'permissions'],
  ])('a bad rule names its key: %j', (permissions, path) => {
    let error: unknown;
    try {
      policyWith({ permissions });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues[0]?.path).toMatch(new RegExp(`^${path.replace('.', '\\.')}`));
  });

  it('a snapshot from before permissions existed gets the defaults', () => {
    const { permissions: _gone, ...old } = policy;
    expect(refusal(old as Policy, P0_READY, 'resolve', { by: 'alice', rootCause: 'x' })).toMatch(
      /only incident-commander or engineering-lead may/,
    );
    expect(refusal(old as Policy, P0_READY, 'resolve', { by: 'carol', rootCause: 'x' })).toBeUndefined();
  });
});

describe('where permissions apply', () => {
  function opened(behaviour: { signalPermissions: boolean }) {
    const run = new IncidentLifecycle(
      { incidentId: 'INC-0000beef', declared: { by: 'alice', title: 'Checkout down', severity: 'P1' } },
      policy,
      { workflowId: 'declared-1', namespace: 'default', behaviour },
    );
    run.openDeclared(Date.parse('2025-03-03T10:00:00Z'));
    return run;
  }

  it('updates always; signals on runs that began with the engineer-permissions patch', () => {
    const resolve = { by: 'alice', rootCause: 'x' };
    const current = opened({ signalPermissions: true });
    expect(current.refusalOf('resolve', resolve, 'update')?.kind).toBe('forbidden');
    expect(current.refusalOf('resolve', resolve, 'signal')?.kind).toBe('forbidden');
    // A run from before: its history may hold a signal that was applied, and must replay as it went.
    const before = opened({ signalPermissions: false });
    expect(before.refusalOf('resolve', resolve, 'update')?.kind).toBe('forbidden');
    expect(before.refusalOf('resolve', resolve, 'signal')).toBeUndefined();
    expect(before.refusalOf('resolve', { by: 'mallory', rootCause: 'x' }, 'signal')?.kind).toBe('refused');
  });
});

describe('a permission refusal on every interface', () => {
  const forbidden = new IncidentForbiddenError(
    'alice may not resolve a P0 incident: only incident-commander or engineering-lead may',
  );

  it('API: 403 FORBIDDEN with the reason; CLI: exit 1, FORBIDDEN', () => {
    expect(toApiError(forbidden)).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
      message: forbidden.message,
    });
    expect(toApiError(new IncidentRefusedError('already acknowledged'))).toMatchObject({ status: 409 });
    const cli = toCliError(forbidden, '127.0.0.1:7233');
    expect(cli.exitCode).toBe(EXIT.refused);
    expect(cli.toJSON()).toEqual({ error: { code: 'FORBIDDEN', message: forbidden.message } });
    // Callers that only say why (Slack, PagerDuty, SMS replies) see a refusal.
    expect(forbidden).toBeInstanceOf(IncidentRefusedError);
  });

  it('the gateway tells the validator’s Forbidden from Refused', async () => {
    const gatewayFailingWith = (type: string) => {
      const client = {
        withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
        workflow: {
          async *list() {
            yield await Promise.resolve({
              workflowId: 'w',
              runId: 'r',
              status: { name: 'RUNNING' },
              startTime: new Date(),
            });
          },
          getHandle: () => ({
            executeUpdate: () =>
              Promise.reject(
                new WorkflowUpdateFailedError(
                  'Workflow Update failed',
                  ApplicationFailure.create({ type, message: `${type} reason`, nonRetryable: true }),
                ),
              ),
          }),
        },
      } as unknown as Client;
      return new TemporalIncidents(client, 'q', policy, {
        maintenance: { activeFor: () => Promise.resolve(undefined) },
      });
    };
    const args = { by: 'alice', rootCause: 'x' };
    const forbiddenErr = await gatewayFailingWith('Forbidden')
      .operate('INC-0000beef', 'resolve', args)
      .catch((e: unknown) => e);
    expect(forbiddenErr).toBeInstanceOf(IncidentForbiddenError);
    expect((forbiddenErr as Error).message).toBe('Forbidden reason');
    const refusedErr = await gatewayFailingWith('Refused')
      .operate('INC-0000beef', 'resolve', args)
      .catch((e: unknown) => e);
    expect(refusedErr).toBeInstanceOf(IncidentRefusedError);
    expect(refusedErr).not.toBeInstanceOf(IncidentForbiddenError);
  });
});
