/**
 * Durations in the policy file are written the way the procedures write them
 * (`5m`, `2h`, `1d`, `90s`, or combined `1h30m`), so a reviewer can check the
 * file against the procedures line by line. Inside the program they are
 * milliseconds.
 */
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/;

/** Parses `15m`, `2h`, `1h30m`, `45s`; returns undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim();
  if (rest === '') return undefined;
  let total = 0;
  while (rest.length > 0) {
    const match = DURATION.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
    rest = rest.slice(match[0].length);
  }
  return Math.round(total);
}

/** Formats milliseconds as the largest whole units, e.g. `1h30m`, `15m`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit];
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.length > 0 ? parts.join('') : `${rest}ms`;
}
