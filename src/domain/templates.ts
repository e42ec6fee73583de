import Mustache from 'mustache';

/**
 * Renders the procedures' message templates: logic-less Mustache, so a team
 * can override any template in the policy (`{{ name }}` placeholders, and
 * `{{#eta}}…{{/eta}}` sections that show only when a value is there). The
 * domain renders plain text: each channel escapes it for its medium (Slack
 * mrkdwn, HTML), so no HTML escaping happens here. A placeholder with no value
 * renders as "n/a" rather than disappearing, so a reader sees that a field is
 * unknown instead of a silently broken message.
 */
export type TemplateValues = Readonly<Record<string, string | number | undefined>>;

type Token = [string, string, number, number, Token[]?, ...unknown[]];

/** Names the template shows as values (`{{ name }}`, `{{{ name }}}`, `{{& name }}`), sections included. */
function valueNames(tokens: readonly Token[], into: Set<string> = new Set()): Set<string> {
  for (const token of tokens) {
    if (token[0] === 'name' || token[0] === '&') into.add(token[1]);
    if (Array.isArray(token[4])) valueNames(token[4], into);
  }
  return into;
}

/** Parses a template; throws with Mustache's message (an unclosed section, say) when it is not one. */
function parse(template: string): Token[] {
  return Mustache.parse(template) as unknown as Token[];
}

/** Names that open a section (`{{#name}}`, `{{^name}}`). */
function sectionNames(tokens: readonly Token[], into: Set<string> = new Set()): Set<string> {
  for (const token of tokens) {
    if (token[0] === '#' || token[0] === '^') into.add(token[1]);
    if (Array.isArray(token[4])) sectionNames(token[4], into);
  }
  return into;
}

export function renderTemplate(template: string, values: TemplateValues): string {
  const tokens = parse(template);
  const sections = sectionNames(tokens);
  const view: Record<string, string | number | undefined> = { ...values };
  // A value that guards a section stays as given, so an absent one hides its section instead of showing "n/a".
  for (const name of valueNames(tokens)) {
    if (!sections.has(name) && (view[name] === undefined || view[name] === '')) view[name] = 'n/a';
  }
  return Mustache.render(template, view, undefined, { escape: (text: string) => text });
}

/** Placeholder names a template uses, e.g. to validate a policy's templates. */
export function templatePlaceholders(template: string): string[] {
  return [...valueNames(parse(template))];
}

/** Why a template is not one (unclosed section…), or undefined. */
export function templateProblem(template: string): string | undefined {
  try {
    parse(template);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Formats a list as the templates' bullet lists. */
export function bulletList(items: readonly string[]): string {
  return items.length === 0 ? '- none yet' : items.map((item) => `- ${item}`).join('\n');
}
