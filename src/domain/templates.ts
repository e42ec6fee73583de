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

export function renderTemplate(template: string, values: TemplateValues): string {
  const view: Record<string, string | number | undefined> = { ...values };
  for (const name of valueNames(parse(template))) {
    if (view[name] === undefined || view[name] === '') view[name] = 'n/a';
  }
  // Sections see the values as given: an absent value hides its section instead of showing "n/a".
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
