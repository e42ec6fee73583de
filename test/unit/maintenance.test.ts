import { describe, expect, it } from 'vitest';
import {
  ENDED_WINDOW_RETENTION_MS,
  activeWindow,
  addWindowRefusal,
  endWindow,
  endWindowRefusal,
  newWindow,
  policyWindows,
  pruneWindows,
  stateAt,
} from '../../src/domain/maintenance.ts';
import type { MaintenanceWindow } from '../../src/domain/maintenance.ts';
import { PolicyError } from '../../src/domain/policy.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const at = (iso: string) => Date.parse(iso);
const window = (over: Partial<MaintenanceWindow> = {}): MaintenanceWindow => ({
  id: 'mw-00000001',
  service: 'pno-physics-bench',
  from: '2026-03-07T22:00:00.000Z',
  to: '2026-03-08T02:00:00.000Z',
  reason: 'database migration',
  ...over,
});

describe('maintenance windows: which one covers an incident', () => {
  it('covers its own service from its start up to (not including) its end', () => {
    const w = window();
    expect(activeWindow([w], 'pno-physics-bench', at('2026-03-07T21:59:59Z'))).toBeUndefined();
    expect(activeWindow([w], 'pno-physics-bench', at('2026-03-07T22:00:00Z'))).toEqual({
      id: 'mw-00000001',
      reason: 'database migration',
      until: '2026-03-08T02:00:00.000Z',
    });
    expect(activeWindow([w], 'pno-physics-bench', at('2026-03-08T02:00:00Z'))).toBeUndefined();
    expect(activeWindow([w], 'checkout', at('2026-03-07T23:00:00Z'))).toBeUndefined();
  });

  it('a * window covers every service', () => {
    const w = window({ service: '*' });
    expect(activeWindow([w], 'checkout', at('2026-03-07T23:00:00Z'))?.id).toBe('mw-00000001');
  });

  it('of several, the one that lasts longest wins, and ties go to the smaller id', () => {
    const short = window({ id: 'mw-b', to: '2026-03-08T00:00:00Z' });
    const long = window({ id: 'mw-c', service: '*', to: '2026-03-08T05:00:00Z' });
    const twin = window({ id: 'mw-a', to: '2026-03-08T05:00:00Z' });
    expect(activeWindow([short, long], 'pno-physics-bench', at('2026-03-07T23:00:00Z'))?.id).toBe('mw-c');
    expect(activeWindow([short, long, twin], 'pno-physics-bench', at('2026-03-07T23:00:00Z'))?.id).toBe(
      'mw-a',
    );
  });

  it('a window ended early stops covering when it was ended, and says so in `until`', () => {
    const ended = endWindow(window(), at('2026-03-07T23:00:00Z'), 'alice');
    expect(ended).toMatchObject({ endedAt: '2026-03-07T23:00:00.000Z', endedBy: 'alice' });
    expect(stateAt(ended, at('2026-03-07T22:30:00Z'))).toBe('active');
    expect(activeWindow([ended], 'pno-physics-bench', at('2026-03-07T22:30:00Z'))?.until).toBe(
      '2026-03-07T23:00:00.000Z',
    );
    expect(stateAt(ended, at('2026-03-07T23:00:00Z'))).toBe('ended');
  });

  it('states: upcoming, active, ended', () => {
    expect(stateAt(window(), at('2026-03-01T00:00:00Z'))).toBe('upcoming');
    expect(stateAt(window(), at('2026-03-07T22:00:00Z'))).toBe('active');
    expect(stateAt(window(), at('2026-03-09T00:00:00Z'))).toBe('ended');
  });
});

describe('maintenance windows: what operators may add and end', () => {
  const now = at('2026-03-07T12:00:00Z');
  const valid = {
    service: 'pno-physics-bench',
    from: '2026-03-07T22:00:00Z',
    to: '2026-03-08T02:00:00+01:00',
    reason: 'database migration',
  };

  it('accepts a well-formed window and normalizes its times to UTC', () => {
    expect(addWindowRefusal(valid, now)).toBeUndefined();
    expect(newWindow('mw-1', { ...valid, createdBy: 'alice' })).toEqual({
      id: 'mw-1',
      service: 'pno-physics-bench',
      from: '2026-03-07T22:00:00.000Z',
      to: '2026-03-08T01:00:00.000Z',
      reason: 'database migration',
      createdBy: 'alice',
    });
  });

  it.each([
    ['an end before the start', { to: '2026-03-07T21:00:00Z' }, /to: the window must end after it starts/],
    ['an end equal to the start', { to: '2026-03-07T22:00:00Z' }, /must end after it starts/],
    ['a blank reason', { reason: '   ' }, /^reason: must not be blank/],
    ['a blank service', { service: '' }, /^service:/],
    ['a date that is no date-time', { from: 'tomorrow' }, /^from:/],
    ['an unknown field', { severity: 'P1' }, /severity/],
  ])('refuses %s', (_what, change, message) => {
    expect(addWindowRefusal({ ...valid, ...change }, now)).toMatch(message);
  });

  it('refuses a window that is already over', () => {
    expect(
      addWindowRefusal({ ...valid, from: '2026-03-06T00:00:00Z', to: '2026-03-07T00:00:00Z' }, now),
    ).toMatch(/ends in the past/);
  });

  it('ends only a window it holds that is not over yet', () => {
    const windows = [window()];
    expect(endWindowRefusal(windows, { id: 'mw-00000001' }, at('2026-03-07T23:00:00Z'))).toBeUndefined();
    expect(endWindowRefusal(windows, { id: 'mw-00000001' }, at('2026-03-07T10:00:00Z'))).toBeUndefined();
    expect(endWindowRefusal(windows, { id: 'mw-nope' }, now)).toBe('no maintenance window mw-nope');
    expect(endWindowRefusal(windows, { id: 'mw-00000001' }, at('2026-03-09T00:00:00Z'))).toMatch(
      /already over/,
    );
    expect(endWindowRefusal(windows, {}, now)).toMatch(/^id:/);
  });

  it('keeps ended windows for a week, then drops them', () => {
    const end = at('2026-03-08T02:00:00Z');
    expect(pruneWindows([window()], end + ENDED_WINDOW_RETENTION_MS - 1)).toHaveLength(1);
    expect(pruneWindows([window()], end + ENDED_WINDOW_RETENTION_MS)).toHaveLength(0);
  });
});

describe('maintenance windows in the policy file', () => {
  it('the default policy has none', () => {
    expect(loadDefaultPolicy().maintenance).toEqual([]);
  });

  it('a list of windows gets ids policy-<index>', () => {
    const policy = policyWith({
      maintenance: [
        {
          service: 'pno-physics-bench',
          from: '2026-03-07T22:00:00Z',
          to: '2026-03-08T02:00:00Z',
          reason: 'db',
        },
        { service: '*', from: '2026-04-01T00:00:00Z', to: '2026-04-01T01:00:00Z', reason: 'network' },
      ],
    });
    expect(policyWindows(policy.maintenance).map((w) => [w.id, w.service])).toEqual([
      ['policy-0', 'pno-physics-bench'],
      ['policy-1', '*'],
    ]);
    expect(activeWindow(policyWindows(policy.maintenance), 'x', at('2026-04-01T00:30:00Z'))?.id).toBe(
      'policy-1',
    );
  });

  it('a window that ends before it starts is a policy error naming the key', () => {
    const bad = () =>
      policyWith({
        maintenance: [
          { service: 'x', from: '2026-03-08T02:00:00Z', to: '2026-03-07T22:00:00Z', reason: 'db' },
        ],
      });
    expect(bad).toThrow(PolicyError);
    expect(bad).toThrow(/maintenance\.0\.to: the window must end after it starts/);
    expect(() =>
      policyWith({ maintenance: [{ service: 'x', from: 'soon', to: '2026-03-07T22:00:00Z', reason: 'db' }] }),
    ).toThrow(/maintenance\.0\.from/);
  });
});
