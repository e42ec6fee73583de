import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addBusinessTime,
  businessTimeBetween,
  isBusinessTime,
  nextBusinessDayStart,
  nextBusinessOpening,
  responseDueAt,
} from '../../src/domain/business-hours.ts';
import type { BusinessHours } from '../../src/domain/business-hours.ts';
import type { Severity } from '../../src/domain/severity.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const H = 3_600_000;
const M = 60_000;
const t = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

const WEEKDAYS: BusinessHours['days'] = ['mon', 'tue', 'wed', 'thu', 'fri'];
const ALL_DAYS: BusinessHours['days'] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

const policy = loadDefaultPolicy();
/** The real policy's business hours: 09:00–17:00 Mon–Fri UTC, no holidays. */
const utc: BusinessHours = policy.businessHours;
const utcHoliday: BusinessHours = { ...utc, holidays: ['2025-03-06'] }; // Thursday
const berlin: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: WEEKDAYS,
  start: '09:00',
  end: '17:00',
  holidays: [],
};

// 2025-03-03 is a Monday; 2025-03-07 a Friday. Berlin changes to CEST on Sunday 2025-03-30 and back on 2025-10-26.

describe('the real policy', () => {
  it('keeps business hours 09:00–17:00 Mon–Fri UTC', () => {
    expect(utc).toEqual({ timezone: 'UTC', days: WEEKDAYS, start: '09:00', end: '17:00', holidays: [] });
  });
});

describe('isBusinessTime', () => {
  it.each([
    ['Monday opening instant', utc, '2025-03-03T09:00:00.000Z', true],
    ['a millisecond before opening', utc, '2025-03-03T08:59:59.999Z', false],
    ['a millisecond before closing', utc, '2025-03-03T16:59:59.999Z', true],
    ['closing instant', utc, '2025-03-03T17:00:00.000Z', false],
    ['Saturday noon', utc, '2025-03-08T12:00:00.000Z', false],
    ['Sunday noon', utc, '2025-03-09T12:00:00.000Z', false],
    ['Thursday noon, a holiday', utcHoliday, '2025-03-06T12:00:00.000Z', false],
    ['Wednesday noon before the holiday', utcHoliday, '2025-03-05T12:00:00.000Z', true],
    ['Berlin 09:00 CET (08:00Z) before the spring change', berlin, '2025-03-28T08:00:00.000Z', true],
    ['Berlin 08:59 CET', berlin, '2025-03-28T07:59:00.000Z', false],
    ['Berlin 09:00 CEST (07:00Z) after the spring change', berlin, '2025-03-31T07:00:00.000Z', true],
    ['Berlin 08:59 CEST', berlin, '2025-03-31T06:59:00.000Z', false],
    ['Berlin 17:00 CEST (15:00Z) closes', berlin, '2025-03-31T15:00:00.000Z', false],
    ['Berlin 16:59 CEST', berlin, '2025-03-31T14:59:00.000Z', true],
    ['Berlin 09:00 CET (08:00Z) after the autumn change', berlin, '2025-10-27T08:00:00.000Z', true],
    ['Berlin 08:00 CET (07:00Z) after the autumn change', berlin, '2025-10-27T07:00:00.000Z', false],
  ] as const)('%s', (_name, bh, at, expected) => {
    expect(isBusinessTime(t(at), bh)).toBe(expected);
  });
});

describe('addBusinessTime', () => {
  it.each([
    ['4 h from Monday 10:00', utc, '2025-03-03T10:00:00Z', 4 * H, '2025-03-03T14:00:00.000Z'],
    [
      '4 h from Friday 16:00 ends Monday 12:00',
      utc,
      '2025-03-07T16:00:00Z',
      4 * H,
      '2025-03-10T12:00:00.000Z',
    ],
    [
      '1 h from Friday 16:00 ends at Friday closing',
      utc,
      '2025-03-07T16:00:00Z',
      1 * H,
      '2025-03-07T17:00:00.000Z',
    ],
    [
      '1 h + 1 ms from Friday 16:00 crosses the weekend',
      utc,
      '2025-03-07T16:00:00Z',
      H + 1,
      '2025-03-10T09:00:00.001Z',
    ],
    [
      'a start before opening counts from opening',
      utc,
      '2025-03-03T07:00:00Z',
      1 * H,
      '2025-03-03T10:00:00.000Z',
    ],
    [
      'a start after closing counts from the next opening',
      utc,
      '2025-03-03T20:00:00Z',
      30 * M,
      '2025-03-04T09:30:00.000Z',
    ],
    ['a Saturday start counts from Monday', utc, '2025-03-08T12:00:00Z', 1 * H, '2025-03-10T10:00:00.000Z'],
    [
      '16 h (P3) from Monday 10:00 ends Wednesday 10:00',
      utc,
      '2025-03-03T10:00:00Z',
      16 * H,
      '2025-03-05T10:00:00.000Z',
    ],
    ['40 h is exactly one business week', utc, '2025-03-03T09:00:00Z', 40 * H, '2025-03-07T17:00:00.000Z'],
    ['a holiday is skipped', utcHoliday, '2025-03-05T15:00:00Z', 4 * H, '2025-03-07T11:00:00.000Z'],
    [
      'a start on a holiday counts from the next business day',
      utcHoliday,
      '2025-03-06T10:00:00Z',
      1 * H,
      '2025-03-07T10:00:00.000Z',
    ],
    ['zero from outside hours stays put', utc, '2025-03-08T12:00:00Z', 0, '2025-03-08T12:00:00.000Z'],
    // Berlin: Friday 16:00 CET + 4 business hours = Monday 12:00 CEST, 67 h later instead of 68 h.
    ['Berlin across the spring change', berlin, '2025-03-28T15:00:00Z', 4 * H, '2025-03-31T10:00:00.000Z'],
    // Berlin: Friday 16:00 CEST + 4 business hours = Monday 12:00 CET, 69 h later.
    ['Berlin across the autumn change', berlin, '2025-10-24T14:00:00Z', 4 * H, '2025-10-27T11:00:00.000Z'],
  ] as const)('%s', (_name, bh, start, duration, expected) => {
    expect(iso(addBusinessTime(t(start), duration, bh))).toBe(expected);
  });

  it('measures the DST days themselves: with round-the-clock hours business time is elapsed time', () => {
    const always: BusinessHours = {
      timezone: 'Europe/Berlin',
      days: ALL_DAYS,
      start: '00:00',
      end: '00:00',
      holidays: [],
    };
    for (const start of [
      '2025-03-29T11:00:00Z',
      '2025-03-30T00:30:00Z',
      '2025-10-25T22:00:00Z',
      '2025-10-26T00:59:00Z',
    ]) {
      for (const d of [H, 23 * H, 24 * H, 25 * H, 72 * H]) {
        expect(addBusinessTime(t(start), d, always) - t(start)).toBe(d);
      }
    }
    expect(isBusinessTime(t('2025-03-30T01:30:00Z'), always)).toBe(true);
  });

  it('handles a window around the skipped and the repeated hour', () => {
    const night: BusinessHours = {
      timezone: 'Europe/Berlin',
      days: ALL_DAYS,
      start: '01:00',
      end: '04:00',
      holidays: [],
    };
    // 30 March: 01:00 CET (00:00Z) to 04:00 CEST (02:00Z) is only 2 h.
    expect(businessTimeBetween(t('2025-03-29T12:00:00Z'), t('2025-03-30T12:00:00Z'), night)).toBe(2 * H);
    expect(iso(addBusinessTime(t('2025-03-29T23:30:00Z'), 3 * H, night))).toBe('2025-03-31T00:00:00.000Z');
    // 26 October: 01:00 CEST (23:00Z) to 04:00 CET (03:00Z) is 4 h.
    expect(businessTimeBetween(t('2025-10-25T12:00:00Z'), t('2025-10-26T12:00:00Z'), night)).toBe(4 * H);
    expect(iso(addBusinessTime(t('2025-10-25T23:00:00Z'), 4 * H, night))).toBe('2025-10-26T03:00:00.000Z');
  });

  it('maps a skipped opening time to the instant after the gap', () => {
    const twoThirty: BusinessHours = {
      timezone: 'Europe/Berlin',
      days: ALL_DAYS,
      start: '02:30',
      end: '05:00',
      holidays: [],
    };
    // 02:30 does not exist on 30 March; the window opens at 03:30 CEST (01:30Z) and closes 05:00 CEST (03:00Z).
    expect(isBusinessTime(t('2025-03-30T01:29:59Z'), twoThirty)).toBe(false);
    expect(isBusinessTime(t('2025-03-30T01:30:00Z'), twoThirty)).toBe(true);
    // 02:30 occurs twice on 26 October; the window opens at the first (00:30Z) and closes 05:00 CET (04:00Z).
    expect(businessTimeBetween(t('2025-10-26T00:00:00Z'), t('2025-10-26T12:00:00Z'), twoThirty)).toBe(
      3.5 * H,
    );
  });

  it('supports overnight hours (end before start)', () => {
    const nights: BusinessHours = {
      timezone: 'UTC',
      days: WEEKDAYS,
      start: '22:00',
      end: '06:00',
      holidays: [],
    };
    expect(isBusinessTime(t('2025-03-08T05:00:00Z'), nights)).toBe(true); // Saturday morning, Friday's shift
    expect(isBusinessTime(t('2025-03-08T22:00:00Z'), nights)).toBe(false); // Saturday night
    expect(iso(addBusinessTime(t('2025-03-07T23:00:00Z'), 8 * H, nights))).toBe('2025-03-10T23:00:00.000Z');
  });

  it('terminates over a long run of holidays', () => {
    const holidays = Array.from({ length: 120 }, (_, i) =>
      iso(t('2025-12-01T00:00:00Z') + i * 86_400_000).slice(0, 10),
    );
    const closed: BusinessHours = { ...utc, holidays };
    expect(iso(addBusinessTime(t('2025-11-28T16:00:00Z'), 2 * H, closed))).toBe('2026-03-31T10:00:00.000Z');
    expect(iso(nextBusinessDayStart(t('2025-12-01T10:00:00Z'), closed))).toBe('2026-03-31T09:00:00.000Z');
  });

  it('refuses a configuration without business days and bad durations instead of looping', () => {
    expect(() => addBusinessTime(0, H, { ...utc, days: [] })).toThrow(/no business days/);
    expect(() => addBusinessTime(0, Number.POSITIVE_INFINITY, utc)).toThrow(RangeError);
    expect(() => addBusinessTime(0, -1, utc)).toThrow(RangeError);
  });
});

describe('nextBusinessDayStart', () => {
  it.each([
    ['Monday 10:00 → Tuesday opening', utc, '2025-03-03T10:00:00Z', '2025-03-04T09:00:00.000Z'],
    [
      'Monday 03:00 (before opening) → Tuesday, not the same day',
      utc,
      '2025-03-03T03:00:00Z',
      '2025-03-04T09:00:00.000Z',
    ],
    ['Friday 16:00 → Monday', utc, '2025-03-07T16:00:00Z', '2025-03-10T09:00:00.000Z'],
    ['Saturday → Monday', utc, '2025-03-08T12:00:00Z', '2025-03-10T09:00:00.000Z'],
    [
      'Wednesday before a Thursday holiday → Friday',
      utcHoliday,
      '2025-03-05T15:00:00Z',
      '2025-03-07T09:00:00.000Z',
    ],
    ['Berlin Friday evening → Monday 09:00 CEST', berlin, '2025-03-28T18:00:00Z', '2025-03-31T07:00:00.000Z'],
    ['Berlin Friday evening → Monday 09:00 CET', berlin, '2025-10-24T18:00:00Z', '2025-10-27T08:00:00.000Z'],
    // 23:30Z on Sunday is already Monday 00:30 in Berlin: the next business day is Tuesday.
    ['Berlin local date, not UTC date', berlin, '2025-03-30T22:30:00Z', '2025-04-01T07:00:00.000Z'],
  ] as const)('%s', (_name, bh, at, expected) => {
    expect(iso(nextBusinessDayStart(t(at), bh))).toBe(expected);
  });
});

describe('nextBusinessOpening', () => {
  it('is the instant itself in hours, else the next opening', () => {
    expect(iso(nextBusinessOpening(t('2025-03-03T12:00:00Z'), utc))).toBe('2025-03-03T12:00:00.000Z');
    expect(iso(nextBusinessOpening(t('2025-03-07T17:00:00Z'), utc))).toBe('2025-03-10T09:00:00.000Z');
  });
});

describe('responseDueAt', () => {
  it.each([
    ['P0', '2025-03-07T16:00:00Z', '2025-03-07T16:15:00.000Z'],
    ['P1', '2025-03-07T16:00:00Z', '2025-03-07T17:00:00.000Z'],
    ['P2', '2025-03-07T16:00:00Z', '2025-03-10T12:00:00.000Z'],
    ['P2', '2025-03-08T03:00:00Z', '2025-03-10T13:00:00.000Z'],
    ['P3', '2025-03-03T10:00:00Z', '2025-03-05T10:00:00.000Z'],
    ['P3', '2025-03-07T16:00:00Z', '2025-03-11T16:00:00.000Z'],
  ] as const)('%s opened %s is due %s', (severity: Severity, at, expected) => {
    expect(iso(responseDueAt(policy, severity, t(at)))).toBe(expected);
  });
});

// ---- properties -----------------------------------------------------------

const HOLIDAYS_2025 = [
  '2025-01-01',
  '2025-04-18',
  '2025-04-21',
  '2025-05-01',
  '2025-12-24',
  '2025-12-25',
  '2025-12-26',
];
const CONFIGS: { name: string; bh: BusinessHours }[] = [
  { name: 'UTC 9–17', bh: utc },
  { name: 'UTC 9–17 with holidays', bh: { ...utc, holidays: [...HOLIDAYS_2025, '2026-01-01'] } },
  { name: 'Berlin 9–17 with holidays', bh: { ...berlin, holidays: HOLIDAYS_2025 } },
  {
    name: 'New York 08:30–17:30',
    bh: {
      timezone: 'America/New_York',
      days: WEEKDAYS,
      start: '08:30',
      end: '17:30',
      holidays: ['2025-07-04'],
    },
  },
  {
    name: 'Berlin 01:00–04:00 daily (DST gap)',
    bh: { timezone: 'Europe/Berlin', days: ALL_DAYS, start: '01:00', end: '04:00', holidays: [] },
  },
  {
    name: 'Lord Howe overnight 20:00–02:00 (30-minute DST)',
    bh: {
      timezone: 'Australia/Lord_Howe',
      days: ['mon', 'wed', 'sat'],
      start: '20:00',
      end: '02:00',
      holidays: ['2025-04-05'],
    },
  },
];

const instant = fc.integer({ min: t('2024-12-20T00:00:00Z'), max: t('2026-01-10T00:00:00Z') });
const duration = fc.oneof(
  fc.integer({ min: 0, max: 10 * 24 * 60 }).map((minutes) => minutes * M),
  fc.integer({ min: 0, max: 10 * 24 * H }),
);
const config = fc.constantFrom(...CONFIGS);

/** Business time, or the closing instant of a window (not business time, but the instant before is). */
function businessOrClosing(ms: number, bh: BusinessHours): boolean {
  return isBusinessTime(ms, bh) || isBusinessTime(ms - 1, bh);
}

describe('business-time properties', () => {
  it('a positive duration ends in business time or at a closing instant', () => {
    fc.assert(
      fc.property(config, instant, duration, ({ bh }, start, d) => {
        fc.pre(d > 0);
        const end = addBusinessTime(start, d, bh);
        expect(end).toBeGreaterThan(start);
        expect(businessOrClosing(end, bh)).toBe(true);
      }),
    );
  });

  it('is monotonic in the duration', () => {
    fc.assert(
      fc.property(config, instant, duration, duration, ({ bh }, start, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(addBusinessTime(start, lo, bh)).toBeLessThanOrEqual(addBusinessTime(start, hi, bh));
      }),
    );
  });

  it('is additive: add(add(t, a), b) = add(t, a + b)', () => {
    fc.assert(
      fc.property(config, instant, duration, duration, ({ bh }, start, a, b) => {
        expect(addBusinessTime(addBusinessTime(start, a, bh), b, bh)).toBe(addBusinessTime(start, a + b, bh));
      }),
    );
  });

  it('counts exactly the business time it adds', () => {
    fc.assert(
      fc.property(config, instant, duration, ({ bh }, start, d) => {
        expect(businessTimeBetween(start, addBusinessTime(start, d, bh), bh)).toBe(d);
      }),
    );
  });

  it('never ends on a weekend day or holiday of a 9–17 calendar', () => {
    const bh = CONFIGS[1]?.bh ?? utc;
    fc.assert(
      fc.property(instant, duration, (start, d) => {
        fc.pre(d > 0);
        const end = addBusinessTime(start, d, bh);
        const date = new Date(end - 1);
        expect([1, 2, 3, 4, 5]).toContain(date.getUTCDay());
        expect(bh.holidays).not.toContain(date.toISOString().slice(0, 10));
      }),
    );
  });

  it('the next business day starts after the local day of the instant, at an opening', () => {
    fc.assert(
      fc.property(config, instant, ({ bh }, at) => {
        const next = nextBusinessDayStart(at, bh);
        expect(next).toBeGreaterThan(at);
        expect(isBusinessTime(next, bh)).toBe(true);
        expect(isBusinessTime(next - 1, bh)).toBe(false); // none of these calendars has back-to-back windows
      }),
    );
  });
});
