import type { Person, Policy } from './policy.ts';

/*
 * The policy as a workflow sees it. An incident runs on a snapshot of the policy, which is workflow data
 * (the local activity's marker, every continue-as-new input), so it holds nothing a workflow does not need
 * and no one's contact details: a person is their name, their roles and their Slack user (the incident's
 * channel invites responders by it). E-mail addresses, phone numbers and PagerDuty user ids stay in the
 * worker's and the API's loaded policy: the `deliver` activity looks a person up by handle when it sends,
 * and the API's provider callbacks map a caller back to a handle. Pure: shared by the API, the worker and
 * the tests (the hash itself is computed outside the domain, src/policy-snapshots.ts).
 */

/** What a person keeps in a workflow's policy. */
export type WorkflowPerson = Pick<Person, 'name' | 'roles' | 'slack'>;

/** The policy without people's contact details: what an incident workflow runs on, and what is hashed. */
export function withoutContacts(policy: Policy): Policy {
  const people = Object.fromEntries(
    Object.entries(policy.people).map(([handle, p]): [string, WorkflowPerson] => [
      handle,
      { name: p.name, roles: p.roles, ...(p.slack !== undefined ? { slack: p.slack } : {}) },
    ]),
  );
  return { ...policy, people };
}

/**
 * JSON with every object's keys in sorted order (arrays keep theirs), `undefined` members left out as
 * `JSON.stringify` does: the same policy gives the same text whichever process built it, and so the same
 * content hash.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof value !== 'object' || value === null) return value;
  const object = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(object)
      .sort()
      .filter((key) => object[key] !== undefined)
      .map((key) => [key, sorted(object[key])]),
  );
}
