/**
 * A strict, minimal XML 1.0 reader for tests: it throws on anything that is
 * not well-formed (an unclosed or mismatched tag, a stray `<` or `&`, an
 * unknown entity, an unquoted or repeated attribute, text outside the root,
 * a character XML forbids) and returns the element tree. Enough to prove a
 * feed or TwiML parses; no DTDs, no namespaces resolution, no CDATA.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text, entities decoded. */
  text: string;
}

const NAME = '[A-Za-z_:][-A-Za-z0-9._:]*';
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: number): string {
  if (/[<]/.test(raw)) throw new Error(`stray "<" at ${where}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(raw))
    throw new Error(`a character XML forbids at ${where}`);
  return raw.replace(/&([^;]*);|&/g, (match, entity: string | undefined) => {
    if (entity === undefined) throw new Error(`stray "&" at ${where}`);
    if (entity in ENTITIES) return ENTITIES[entity] ?? '';
    const hex = /^#x([0-9a-fA-F]+)$/.exec(entity);
    const dec = /^#([0-9]+)$/.exec(entity);
    if (hex?.[1]) return String.fromCodePoint(parseInt(hex[1], 16));
    if (dec?.[1]) return String.fromCodePoint(Number(dec[1]));
    throw new Error(`unknown entity &${entity}; at ${where}`);
  });
}

export function parseXml(xml: string): XmlElement {
  let pos = 0;
  const declaration = new RegExp(`^<\\?xml(\\s+${NAME}\\s*=\\s*("[^"]*"|'[^']*'))*\\s*\\?>`).exec(xml);
  if (declaration) pos = declaration[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const tag = new RegExp(`^<(/?)(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`);
  while (pos < xml.length) {
    const next = xml.indexOf('<', pos);
    const text = xml.slice(pos, next === -1 ? xml.length : next);
    if (text !== '') {
      const parent = stack.at(-1);
      if (!parent) {
        if (text.trim() !== '') throw new Error(`text outside the root element at ${pos}`);
      } else parent.text += decode(text, pos);
    }
    if (next === -1) break;
    const match = tag.exec(xml.slice(next));
    if (!match) throw new Error(`malformed tag at ${next}: ${xml.slice(next, next + 40)}`);
    const [whole, closing, name = '', attributeText = '', selfClosing] = match;
    pos = next + whole.length;
    if (closing) {
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}> at ${next}`);
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const a of attributeText.matchAll(new RegExp(`(${NAME})\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'g'))) {
      const key = a[1] ?? '';
      if (key in attributes) throw new Error(`repeated attribute ${key} at ${next}`);
      attributes[key] = decode(a[2] ?? a[3] ?? '', next);
    }
    const element: XmlElement = { name, attributes, children: [], text: '' };
    const parent = stack.at(-1);
    if (parent) parent.children.push(element);
    else if (root) throw new Error(`a second root element at ${next}`);
    else root = element;
    if (!selfClosing) stack.push(element);
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)?.name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

/** The direct children of `element` named `name`. */
export function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name);
}
