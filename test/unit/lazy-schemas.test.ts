import { describe, expect, it } from 'vitest';
import { OPERATION_NAMES, operationInputs } from '../../src/domain/operations.ts';
import { playbookDefaults, playbookSettings } from '../../src/domain/playbook-settings.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

/*
 * What the workflow bundle evaluates for every new workflow run is kept cheap: the playbooks' defaults live
 * zod-free in playbook-settings.ts, and the operations' schemas are built on first use. These check that
 * each stays the same as what it stands for.
 */

describe('playbook settings without the policy schema', () => {
  it('the defaults are what the schema gives a policy without playbooks, key for key and in order', () => {
    const parsed = policyWith({ playbooks: undefined }).playbooks;
    expect(JSON.stringify(playbookDefaults())).toBe(JSON.stringify(parsed));
    // And they are the procedures' values, as the shipped policy states them (not only the schema's own).
    expect(playbookDefaults()).toEqual(loadDefaultPolicy().playbooks);
  });

  it('a snapshot without playbooks gets the defaults; one with them keeps its own', () => {
    const policy = policyWith({ playbooks: { maxReplicas: 7 } });
    expect(playbookSettings(policy).maxReplicas).toBe(7);
    const { playbooks: _, ...old } = policy;
    expect(playbookSettings(old as Policy)).toEqual(playbookDefaults());
  });

  it('every call gives a new object', () => {
    const a = playbookSettings({} as Policy);
    const b = playbookSettings({} as Policy);
    expect(a).not.toBe(b);
    expect(a.requireApproval).not.toBe(b.requireApproval);
    expect(a.highErrorRate).not.toBe(b.highErrorRate);
  });
});

describe('operation inputs built on first use', () => {
  it('OPERATION_NAMES lists the schemas’ operations in the table’s order', () => {
    expect([...OPERATION_NAMES]).toEqual(Object.keys(operationInputs()));
  });

  it('builds the schemas once', () => {
    expect(operationInputs()).toBe(operationInputs());
  });
});
