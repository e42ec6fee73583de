/**
 * The `incidentPolicy` local activity: a new incident's first step (its page waits for it). It looks up the
 * incident before it in Temporal's visibility store on the way, best effort and bounded: a store that fails or
 * is slow means no link, never a late or stuck page.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import type { ObtainedPolicy } from '../../src/contract/messages.ts';
import type { IncidentHistory } from '../../src/activities/incident-history.ts';
import { PolicySnapshots, policyRefOf } from '../../src/policy-snapshots.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const policy = loadDefaultPolicy();
const previousOf = { workflowId: 'alertgroup-x', runId: 'run-2' };

/** The activity over `history`, run as the worker runs it (in an activity context: it logs). */
function activities(history: IncidentHistory) {
  // Only the policy and the history are used here; no channel is ever reached.
  const acts = createActivities({
    policies: new PolicySnapshots({ current: policy }),
    channels: undefined as never,
    history,
  });
  return {
    incidentPolicy: (input: Parameters<typeof acts.incidentPolicy>[0]): Promise<ObtainedPolicy> =>
      new MockActivityEnvironment().run((i: typeof input) => acts.incidentPolicy(i), input),
  };
}

describe('incidentPolicy', () => {
  it('answers the policy, and the previous incident when asked and found', async () => {
    const found = await activities({
      previousIncidentId: () => Promise.resolve('INC-0000beef'),
    }).incidentPolicy({
      hash: policyRefOf(policy).hash,
      previousOf,
    });
    expect(found).toMatchObject({ hash: policyRefOf(policy).hash, previousIncidentId: 'INC-0000beef' });
    expect(found.missing).toBeUndefined();
  });

  it('a lookup that fails or hangs costs the link, never the policy, and at most 2 s', async () => {
    const failing = await activities({
      previousIncidentId: () => Promise.reject(new Error('visibility unavailable')),
    }).incidentPolicy({ hash: policyRefOf(policy).hash, previousOf });
    expect(failing.previousIncidentId).toBeUndefined();
    expect(failing.policy).toBeDefined();

    const started = Date.now();
    const hanging = await activities({
      previousIncidentId: () => new Promise<never>(() => undefined),
    }).incidentPolicy({ hash: policyRefOf(policy).hash, previousOf });
    expect(hanging.previousIncidentId).toBeUndefined();
    // PREVIOUS_LOOKUP_MS (2 s), with room for a loaded machine, but none for a bound twice as long.
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('without previousOf, no lookup at all', async () => {
    let asked = 0;
    await activities({
      previousIncidentId: () => {
        asked += 1;
        return Promise.resolve(undefined);
      },
    }).incidentPolicy({ hash: policyRefOf(policy).hash });
    expect(asked).toBe(0);
  });
});
