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

/** A phone number as compared: without spaces, dashes, dots or parentheses (`+1 555-0100` is `+15550100`). */
export function normalisePhone(phone: string): string {
  return phone.replace(/[\s().-]/g, '');
}

/**
 * The handle of the person whose contact `field` is `value` (a Slack user id, a
 * PagerDuty user id, a phone number compared normalised), if anyone's is. For the
 * API's provider callbacks, over the policy it loaded: a workflow's snapshot has no
 * phone numbers or PagerDuty ids (src/domain/workflow-policy.ts), and a caller's
 * number never goes further than this lookup (the signal carries the handle).
 */
export function personByContact(
  policy: Policy,
  field: 'slack' | 'pagerduty' | 'phone',
  value: string,
): string | undefined {
  if (value === '') return undefined;
  const wanted = field === 'phone' ? normalisePhone(value) : value;
  for (const [handle, person] of Object.entries(policy.people)) {
    const own = person[field];
    if (own === undefined || own === '') continue;
    if ((field === 'phone' ? normalisePhone(own) : own) === wanted) return handle;
  }
  return undefined;
}
