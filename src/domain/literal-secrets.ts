/**
 * Secrets in the policy are `${VAR}` references that only the worker's activities (and the API, for its
 * own credentials) resolve: the policy is every incident's workflow input, so a secret written literally
 * would sit in workflow history, in every continue-as-new and in every query of the state. These rules
 * find one at load, by the key's path; the value itself is never repeated in the error.
 */

/** `${VAR}` or `${VAR:-fallback}`, as src/secrets.ts resolves them. */
const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g;

/** The keys whose whole value is a credential, with the variable the README names for each. */
export const SECRET_KEYS: readonly { path: readonly string[]; example: string }[] = [
  { path: ['channels', 'slack', 'botToken'], example: 'SLACK_BOT_TOKEN' },
  // An incoming-webhook URL is its own credential (https://hooks.slack.com/services/T…/B…/<secret>).
  { path: ['channels', 'slack', 'webhookUrl'], example: 'SLACK_WEBHOOK_URL' },
  { path: ['channels', 'pagerduty', 'routingKey'], example: 'PAGERDUTY_ROUTING_KEY' },
  { path: ['channels', 'pagerduty', 'routingKeys', '*'], example: 'PAGERDUTY_ROUTING_KEY_SECURITY' },
  { path: ['channels', 'twilio', 'authToken'], example: 'TWILIO_AUTH_TOKEN' },
  { path: ['channels', 'webhook', 'secret'], example: 'WEBHOOK_SECRET' },
  { path: ['webhook', 'token'], example: 'ALERTMANAGER_WEBHOOK_TOKEN' },
  { path: ['webhook', 'basicAuth', 'password'], example: 'ALERTMANAGER_WEBHOOK_PASSWORD' },
];

/**
 * Whether a credential's value holds anything but references: literal text around them, or a fallback
 * (`${VAR:-xoxb-…}`) that would be used when the variable is unset. Empty means "not configured".
 */
export function isLiteralSecret(value: string): boolean {
  let literal = false;
  const rest = value.replace(REFERENCE, (_m, _name: string, fallback: string | undefined) => {
    if (fallback !== undefined && fallback !== '') literal = true;
    return '';
  });
  return literal || rest.trim() !== '';
}

/**
 * Whether a URL carries a password written literally (`smtp://user:hunter2@relay:587`); one given as a
 * reference (`smtp://user:${SMTP_PASSWORD}@relay:587`, or the whole URL as `${SMTP_URL}`) is fine.
 */
export function hasLiteralUrlPassword(value: string): boolean {
  const MARK = 'reference0marker';
  const marked = value.replace(REFERENCE, (_m, _name: string, fallback: string | undefined) =>
    fallback !== undefined && fallback !== '' ? fallback : MARK,
  );
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]*)@/i.exec(marked.trim());
  const userinfo = match?.[1];
  if (userinfo === undefined) return false;
  const colon = userinfo.indexOf(':');
  if (colon < 0) return false;
  const password = userinfo.slice(colon + 1);
  return password.replaceAll(MARK, '') !== '';
}

/** Values at `path` in `document` (`*` matches every key), with their concrete paths. */
function valuesAt(
  document: unknown,
  path: readonly string[],
  at: string[] = [],
): { path: string[]; value: unknown }[] {
  if (path.length === 0) return [{ path: at, value: document }];
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return [];
  const [head, ...rest] = path as [string, ...string[]];
  const keys = head === '*' ? Object.keys(document) : Object.hasOwn(document, head) ? [head] : [];
  return keys.flatMap((key) => valuesAt((document as Record<string, unknown>)[key], rest, [...at, key]));
}

/** Every string of `document` with its path. */
function strings(document: unknown, at: string[] = []): { path: string[]; value: string }[] {
  if (typeof document === 'string') return [{ path: at, value: document }];
  if (Array.isArray(document)) return document.flatMap((item, i) => strings(item, [...at, String(i)]));
  if (typeof document === 'object' && document !== null)
    return Object.entries(document).flatMap(([key, value]) => strings(value, [...at, key]));
  return [];
}

/** Each secret written literally in a policy document: its key's path and what to write instead. */
export function literalSecrets(document: unknown): { path: string[]; message: string }[] {
  const found = new Map<string, { path: string[]; message: string }>();
  for (const { path, example } of SECRET_KEYS) {
    for (const hit of valuesAt(document, path)) {
      if (typeof hit.value === 'string' && isLiteralSecret(hit.value))
        found.set(hit.path.join('.'), {
          path: hit.path,
          message: `a secret written literally: write a reference such as \${${example}} and set that environment variable (the policy is every incident's workflow input, so its values reach workflow history)`,
        });
    }
  }
  for (const hit of strings(document)) {
    const key = hit.path.join('.');
    if (!found.has(key) && hasLiteralUrlPassword(hit.value))
      found.set(key, {
        path: hit.path,
        message:
          'a URL with a password written literally: write the URL as a reference such as ${SMTP_URL}, or its password as ${VAR}, and set the variable in the environment',
      });
  }
  return [...found.values()];
}
