import type { Policy, Severity } from './policy.ts';

/**
 * Business-time arithmetic over the policy's `businessHours`: P2's response
 * target and time-based escalation count only business time, and the matrix's
 * "next day" means the start of the next business day.
 *
 * Times are epoch milliseconds. Business hours are wall-clock times in an IANA
 * time zone, so every day's opening and closing instants are computed from the
 * zone's offset on that day (correct across DST changes). Pure: only `Intl` and
 * `Date` arithmetic on given timestamps, so it runs inside Temporal workflows.
 *
 * A business day's window is `[open, close)`: the opening instant is business
 * time, the closing instant is not. When `end <= start` the window runs
 * overnight, closing at `end` on the following day (`00:00`–`00:00` is a 24-hour
 * day). A wall-clock time that does not exist (skipped by a DST change) maps to
 * the instant after the gap; one that occurs twice maps to its first occurrence.
 */

export type BusinessHours = Policy['businessHours'];

const DAY_MS = 86_400_000;
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

interface Window {
  open: number;
  close: number;
}

interface Compiled {
  timeZone: string;
  days: ReadonlySet<string>;
  holidays: ReadonlySet<string>;
  startMin: number;
  endMin: number;
  /** Most consecutive calendar days that can lack business time; scanning further means a broken config. */
  maxScanDays: number;
  windows: Map<number, Window | null>;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const compiledCache = new WeakMap<BusinessHours, Compiled>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallClock(ms: number, timeZone: string): Wall {
  const wall: Wall = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(ms)) {
    if (part.type in wall) wall[part.type as keyof Wall] = Number(part.value);
  }
  return wall;
}

/** The zone's UTC offset at instant `ms`, in milliseconds (wall clock minus UTC). */
function offsetAt(ms: number, timeZone: string): number {
  const w = wallClock(ms, timeZone);
  const wallAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wallAsUtc - Math.floor(ms / 1000) * 1000;
}

/** Days since 1970-01-01 of the local calendar date of `ms`. */
function localDayNumber(ms: number, timeZone: string): number {
  const w = wallClock(ms, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day) / DAY_MS;
}

function isoDate(dayNumber: number): string {
  return new Date(dayNumber * DAY_MS).toISOString().slice(0, 10);
}

function weekday(dayNumber: number): (typeof WEEKDAYS)[number] {
  // 1970-01-01 was a Thursday.
  return WEEKDAYS[(((dayNumber + 4) % 7) + 7) % 7] ?? 'sun';
}

/** The instant at which the wall clock in `timeZone` shows `minutes` past midnight of local day `dayNumber`. */
function localToInstant(dayNumber: number, minutes: number, timeZone: string): number {
  const wallAsUtc = dayNumber * DAY_MS + minutes * 60_000;
  const before = offsetAt(wallAsUtc - DAY_MS, timeZone);
  const after = offsetAt(wallAsUtc + DAY_MS, timeZone);
  const valid = [before, after]
    .map((o) => wallAsUtc - o)
    .filter((t) => offsetAt(t, timeZone) === wallAsUtc - t);
  if (valid.length > 0) return Math.min(...valid);
  // Skipped by a DST change: the same distance past the transition as the wall time is past the gap's start.
  return wallAsUtc - before;
}

function minutesOf(clock: string): number {
  const [h, m] = clock.split(':');
  return Number(h) * 60 + Number(m);
}

function compile(bh: BusinessHours): Compiled {
  let c = compiledCache.get(bh);
  if (c) return c;
  if (bh.days.length === 0) throw new Error('business hours: no business days configured');
  formatter(bh.timezone); // throws early on an unknown zone
  const holidays = new Set(bh.holidays);
  c = {
    timeZone: bh.timezone,
    days: new Set(bh.days),
    holidays,
    startMin: minutesOf(bh.start),
    endMin: minutesOf(bh.end),
    // In any 7 consecutive days one is a business weekday, unless it is a (distinct) holiday;
    // the slack covers DST days whose window collapses to nothing.
    maxScanDays: 7 * (holidays.size + 1) + 14,
    windows: new Map(),
  };
  compiledCache.set(bh, c);
  return c;
}

/** The business window opening on local day `dayNumber`, or null when that day has none. */
function windowOf(c: Compiled, dayNumber: number): Window | null {
  const cached = c.windows.get(dayNumber);
  if (cached !== undefined) return cached;
  let w: Window | null = null;
  if (c.days.has(weekday(dayNumber)) && !c.holidays.has(isoDate(dayNumber))) {
    const open = localToInstant(dayNumber, c.startMin, c.timeZone);
    const close =
      c.endMin > c.startMin
        ? localToInstant(dayNumber, c.endMin, c.timeZone)
        : localToInstant(dayNumber + 1, c.endMin, c.timeZone);
    if (close > open) w = { open, close };
  }
  if (c.windows.size > 5_000) c.windows.clear();
  c.windows.set(dayNumber, w);
  return w;
}

function noBusinessTime(c: Compiled, from: number): Error {
  return new Error(
    `business hours: no business time within ${c.maxScanDays} days after ${new Date(from).toISOString()} (check days and holidays)`,
  );
}

/** The earliest business window that closes after `ms` (it may contain `ms` or open later). */
function windowClosingAfter(c: Compiled, ms: number): Window {
  // Start a day early: an overnight window opened the previous local day may still be open.
  const first = localDayNumber(ms, c.timeZone) - 1;
  for (let d = first; d <= first + c.maxScanDays; d++) {
    const w = windowOf(c, d);
    if (w && w.close > ms) return w;
  }
  throw noBusinessTime(c, ms);
}

/** True when `ms` lies inside business hours (opening instant included, closing instant excluded). */
export function isBusinessTime(ms: number, bh: BusinessHours): boolean {
  const w = windowClosingAfter(compile(bh), ms);
  return w.open <= ms;
}

/** `ms` itself when it is business time, else the next opening. */
export function nextBusinessOpening(ms: number, bh: BusinessHours): number {
  const w = windowClosingAfter(compile(bh), ms);
  return Math.max(ms, w.open);
}

/**
 * The earliest instant at which `durationMs` of business time has elapsed since
 * `startMs`. Time outside business hours does not count: a start outside hours
 * begins counting at the next opening, weekends and holidays are skipped. A
 * positive duration always ends inside business hours or exactly at a closing
 * instant; a zero duration returns `startMs`. Additive:
 * `addBusinessTime(addBusinessTime(t, a), b) === addBusinessTime(t, a + b)`.
 */
export function addBusinessTime(startMs: number, durationMs: number, bh: BusinessHours): number {
  if (!Number.isFinite(startMs) || !Number.isFinite(durationMs) || durationMs < 0) {
    throw new RangeError(
      `addBusinessTime: expected a finite start and a non-negative duration, got ${startMs}, ${durationMs}`,
    );
  }
  const c = compile(bh);
  let remaining = durationMs;
  let t = startMs;
  while (remaining > 0) {
    const w = windowClosingAfter(c, t);
    const from = Math.max(t, w.open);
    const available = w.close - from;
    if (remaining <= available) return from + remaining;
    remaining -= available;
    t = w.close;
  }
  return t;
}

/** Business time elapsed between `fromMs` and `toMs` (0 when `toMs <= fromMs`). */
export function businessTimeBetween(fromMs: number, toMs: number, bh: BusinessHours): number {
  const c = compile(bh);
  let total = 0;
  let t = fromMs;
  while (t < toMs) {
    const w = windowClosingAfter(c, t);
    if (w.open >= toMs) break;
    const from = Math.max(t, w.open);
    total += Math.min(w.close, toMs) - from;
    t = w.close;
  }
  return total;
}

/**
 * The opening instant of the first business day after the local calendar day
 * of `ms` ("next day" in the escalation matrix): for a Friday, the next
 * Monday's opening unless that is a holiday.
 */
export function nextBusinessDayStart(ms: number, bh: BusinessHours): number {
  const c = compile(bh);
  const today = localDayNumber(ms, c.timeZone);
  for (let d = today + 1; d <= today + 1 + c.maxScanDays; d++) {
    const w = windowOf(c, d);
    if (w) return w.open;
  }
  throw noBusinessTime(c, ms);
}

/**
 * When the first response to an incident of `severity` opened at `createdAtMs`
 * is due: its `responseTarget` after opening, counted in business time when the
 * severity's `businessHours` is true (P2: 4 business hours, P3: 16).
 */
export function responseDueAt(policy: Policy, severity: Severity, createdAtMs: number): number {
  const s = policy.severities[severity];
  return s.businessHours
    ? addBusinessTime(createdAtMs, s.responseTarget, policy.businessHours)
    : createdAtMs + s.responseTarget;
}
