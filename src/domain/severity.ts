/** Severity levels of the procedures' "Incident Classification", most severe first. */
export const SEVERITIES = ['P0', 'P1', 'P2', 'P3'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}

/** True when `a` is more severe than `b` (P0 is the most severe). */
export function moreSevere(a: Severity, b: Severity): boolean {
  return SEVERITIES.indexOf(a) < SEVERITIES.indexOf(b);
}

/** The most severe of the given severities. */
export function mostSevere(first: Severity, ...rest: Severity[]): Severity {
  return rest.reduce((best, s) => (moreSevere(s, best) ? s : best), first);
}

/** Business impact levels of the procedures' "Business Impact Assessment". */
export const IMPACTS = ['critical', 'high', 'medium', 'low'] as const;
export type Impact = (typeof IMPACTS)[number];

/** Roles named by the escalation matrix and the decision script. */
export const ROLES = [
  'on-call-engineer',
  'engineering-lead',
  'incident-commander',
  'security-team',
  'vp-engineering',
  'cto',
  'development-team',
] as const;
export type Role = (typeof ROLES)[number];

/** Channels a person or a post can be reached on. */
export const CHANNELS = ['pager', 'sms', 'phone', 'slack', 'email', 'webhook', 'statuspage'] as const;
export type Channel = (typeof CHANNELS)[number];
