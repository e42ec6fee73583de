import { describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { INTEGRATION_ACTORS, OPERATION_NAMES, refusal } from '../../src/domain/operations.ts';
import type { OperationName } from '../../src/domain/operations.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const policy = loadDefaultPolicy();
/** Alice with every role an operation may need (the policy's permissions), so only the actor differs. */
const everyRight = policyWith({
  people: { alice: { roles: ['on-call-engineer', 'engineering-lead', 'security-team'] } },
});
const state = {
  id: 'INC-1a2b3c4d',
  severity: 'P2',
  status: 'triggered',
  securityRelated: false,
} as IncidentState;

/** For the playbook operations that need one: a running playbook waiting for approval of `rollback`. */
const withPlaybook = {
  ...state,
  playbook: {
    name: 'highErrorRate',
    status: 'running',
    runId: 'INC-1a2b3c4d-playbook-1',
    pendingApproval: {
      stepId: 'rollback',
      kind: 'rollback',
      summary: 'roll back',
      requestedAt: '2025-03-06T10:00:00.000Z',
      until: '2025-03-06T10:10:00.000Z',
    },
    steps: [],
  },
} as IncidentState;
const stateFor = (op: OperationName) =>
  op === 'cancelPlaybook' || op === 'approveAction' ? withPlaybook : state;

/** A well-formed input of each operation, so only the actor can be the reason for a refusal. */
const INPUTS: Record<OperationName, object> = {
  acknowledge: {},
  postUpdate: { message: 'update' },
  escalate: { reason: 'why' },
  changeSeverity: { severity: 'P1' },
  assignCommander: { commander: 'carol' },
  recordSecurityEvaluation: { finding: 'nothing' },
  mitigate: {},
  resolve: { rootCause: 'cause' },
  runPlaybook: { name: 'serviceOutage' },
  cancelPlaybook: {},
  approveAction: { stepId: 'rollback' },
};

describe('integration actors', () => {
  it('the list is narrow: only pagerduty, only to acknowledge', () => {
    expect(INTEGRATION_ACTORS).toEqual({ acknowledge: ['pagerduty'] });
  });

  it('pagerduty may acknowledge', () => {
    expect(refusal(policy, state, 'acknowledge', { by: 'pagerduty' })).toBeUndefined();
  });

  it.each(OPERATION_NAMES.filter((op) => op !== 'acknowledge'))('pagerduty may not %s', (op) => {
    expect(refusal(everyRight, stateFor(op), op, { by: 'alice', ...INPUTS[op] })).toBeUndefined();
    expect(refusal(everyRight, stateFor(op), op, { by: 'pagerduty', ...INPUTS[op] })).toMatch(
      /unknown engineer "pagerduty"/,
    );
  });

  it('no other name is an integration, and inherited names are nobody', () => {
    for (const by of ['slack', 'twilio', 'grafana', 'constructor', '__proto__', 'toString'])
      expect(refusal(policy, state, 'acknowledge', { by })).toMatch(/unknown engineer/);
  });

  it('the usual state rules still apply to an integration', () => {
    const acked = { ...state, acknowledgedAt: '2025-03-06T10:00:00.000Z', acknowledgedBy: 'alice' };
    expect(refusal(policy, acked, 'acknowledge', { by: 'pagerduty' })).toMatch(/already acknowledged/);
    expect(refusal(policy, { ...state, status: 'resolved' }, 'acknowledge', { by: 'pagerduty' })).toMatch(
      /already resolved/,
    );
  });

  it('a person with the handle pagerduty is a person, with every right', () => {
    const withPerson = policyWith({
      people: { pagerduty: { name: 'Pat Duty', roles: ['on-call-engineer'] } },
    });
    expect(refusal(withPerson, state, 'resolve', { by: 'pagerduty', rootCause: 'x' })).toBeUndefined();
  });
});
