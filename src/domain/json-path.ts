/**
 * The small JSONPath subset the policy uses to find fields in a JSON body:
 * `$` then any of `.name`, `[0]`, `['any key']` / `["any key"]`. No wildcards,
 * filters or recursion: one path names at most one value.
 */
export type JsonPathSegment = string | number;

const NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

/** The path's segments, or undefined when it is not in the subset. */
export function parseJsonPath(path: string): JsonPathSegment[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const segments: JsonPathSegment[] = [];
  let rest = path.slice(1);
  while (rest !== '') {
    if (rest.startsWith('.')) {
      const name = NAME.exec(rest.slice(1))?.[0];
      if (name === undefined) return undefined;
      segments.push(name);
      rest = rest.slice(1 + name.length);
      continue;
    }
    const index = /^\[(\d{1,9})\]/.exec(rest);
    if (index) {
      segments.push(Number(index[1]));
      rest = rest.slice(index[0].length);
      continue;
    }
    const quoted = /^\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/.exec(rest);
    if (quoted) {
      segments.push((quoted[1] ?? quoted[2] ?? '').replace(/\\(.)/g, '$1'));
      rest = rest.slice(quoted[0].length);
      continue;
    }
    return undefined;
  }
  return segments;
}

/**
 * The value at `path` in `document`, or undefined. Only own properties count
 * (`$.constructor` of a plain object is nothing), and only array indexes of arrays.
 */
export function readJsonPath(document: unknown, path: string): unknown {
  const segments = parseJsonPath(path);
  if (segments === undefined) return undefined;
  let value: unknown = document;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(value)) return undefined;
      value = value[segment];
    } else {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
      if (!Object.hasOwn(value, segment)) return undefined;
      value = (value as Record<string, unknown>)[segment];
    }
  }
  return value;
}
