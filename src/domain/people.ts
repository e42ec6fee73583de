import type { Policy } from './policy.ts';
import type { Impact, Role } from './severity.ts';

/*
 * Reading people and roles out of a parsed policy. Apart from policy.ts so
 * that workflow code does not pull the schema library into its bundle.
 */

/** People who fill a role, in the policy's order. */
export function peopleInRole(policy: Policy, r: Role): string[] {
  const listed = policy.roles[r] ?? [];
  if (listed.length > 0) return listed;
  return Object.entries(policy.people)
    .filter(([, p]) => p.roles.includes(r))
    .map(([h]) => h);
}

export function impactOrDefault(impact: Impact | undefined): Impact {
  return impact ?? 'medium';
}
