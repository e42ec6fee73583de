/**
 * Renders the procedures' message templates (`{{ name }}` placeholders).
 * A placeholder with no value renders as "n/a" rather than disappearing, so a
 * reader sees that a field is unknown instead of a silently broken message.
 */
export type TemplateValues = Readonly<Record<string, string | number | undefined>>;

const PLACEHOLDER = /\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/gi;

export function renderTemplate(template: string, values: TemplateValues): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => {
    const value = values[name];
    return value === undefined || value === '' ? 'n/a' : String(value);
  });
}

/** Placeholder names a template uses, e.g. to validate a policy's templates. */
export function templatePlaceholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

/** Formats a list as the templates' bullet lists. */
export function bulletList(items: readonly string[]): string {
  return items.length === 0 ? '- none yet' : items.map((item) => `- ${item}`).join('\n');
}
