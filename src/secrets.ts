/**
 * `${VAR}` and `${VAR:-default}` references in the policy are resolved here,
 * in the worker, at the moment an activity needs them: the workflow's policy
 * snapshot (and so its history) only ever holds the reference.
 */
const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g;

export class MissingSecretError extends Error {
  readonly variable: string;
  constructor(variable: string, purpose: string) {
    super(`environment variable ${variable} is not set (needed for ${purpose})`);
    this.name = 'MissingSecretError';
    this.variable = variable;
  }
}

export function resolveReferences(
  value: string,
  env: Readonly<Record<string, string | undefined>>,
  purpose: string,
): string {
  return value.replace(REFERENCE, (_m, name: string, fallback: string | undefined) => {
    const found = env[name];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    throw new MissingSecretError(name, purpose);
  });
}

/** Names of the variables a value refers to, e.g. for start-up checks. */
export function referencedVariables(value: string): string[] {
  return [...value.matchAll(REFERENCE)].map((m) => m[1] ?? '');
}
