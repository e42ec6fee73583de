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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The value at `name` through own properties only: the whole name first (a label `service.name`), then a dotted path. */
function ownValue(view: unknown, name: string): { hit: boolean; value?: unknown } {
  if (isRecord(view) && Object.hasOwn(view, name)) return { hit: true, value: view[name] };
  if (!name.includes('.')) return { hit: false };
  let value: unknown = view;
  for (const part of name.split('.')) {
    if (!isRecord(value) || !Object.hasOwn(value, part)) return { hit: false };
    value = value[part];
  }
  return { hit: true, value };
}

/**
 * Mustache's context, looking names up among the values' own properties only: the values hold alert labels,
 * whose names are anyone's (`constructor` is a label, not `Object`), and Prometheus 3's label names have dots
 * (`{{ k8s.pod.name }}` is the label `k8s.pod.name`, not a path). Nothing in a view is ever called.
 */
class OwnPropertyContext extends Mustache.Context {
  override push(view: unknown): Mustache.Context {
    return new OwnPropertyContext(view, this);
  }
  override lookup(name: string): unknown {
    return name === '.' ? this.view : lookupOwn(this, name);
  }
}

/** The first own value of `name` in a context or, failing that, in its parents (an enclosing section's). */
function lookupOwn(start: Mustache.Context, name: string): unknown {
  for (let context: Mustache.Context | undefined = start; context; context = context.parent) {
    const found = ownValue(context.view, name);
    if (found.hit) return found.value;
  }
  return undefined;
}

export function renderTemplate(template: string, values: TemplateValues): string {
  const tokens = parse(template);
  const sections = sectionNames(tokens);
  const view: Record<string, string | number | undefined> = Object.fromEntries(Object.entries(values));
  // A value that guards a section stays as given, so an absent one hides its section instead of showing "n/a".
  for (const name of valueNames(tokens)) {
    if (sections.has(name)) continue;
    const value = Object.hasOwn(view, name) ? view[name] : undefined;
    if (value === undefined || value === '') view[name] = 'n/a';
  }
  return Mustache.render(template, new OwnPropertyContext(view), undefined, {
    escape: (text: string) => text,
  });
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
