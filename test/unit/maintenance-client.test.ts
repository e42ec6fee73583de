import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { MaintenanceWindow } from '../../src/domain/maintenance.ts';
import { MaintenanceRefusedError } from '../../src/starter/client/errors.ts';
import { TemporalMaintenance } from '../../src/starter/client/maintenance.ts';
import { policyWith } from '../support/policy.ts';

const NOW = Date.parse('2026-03-07T23:00:00Z');
const policy = policyWith({
  maintenance: [
    { service: 'billing', from: '2026-03-07T22:00:00Z', to: '2026-03-08T01:00:00Z', reason: 'policy window' },
  ],
});
const operatorWindow: MaintenanceWindow = {
  id: 'mw-0000abcd',
  service: 'pno-physics-bench',
  from: '2026-03-07T22:30:00.000Z',
  to: '2026-03-08T00:00:00.000Z',
  reason: 'db migration',
  createdBy: 'alice',
};

/** Just enough of a Temporal client for the maintenance lookup: the query answers `answer()`. */
function fakeClient(answer: () => Promise<MaintenanceWindow[]>) {
  const calls = { queries: 0 };
  const client = {
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
    workflow: {
      getHandle: () => ({
        query: () => {
          calls.queries += 1;
          return answer();
        },
      }),
    },
  } as unknown as Client;
  return { client, calls };
}

describe('maintenance lookup for new incidents', () => {
  it("combines the policy's and the operators' windows", async () => {
    const { client } = fakeClient(() => Promise.resolve([operatorWindow]));
    const store = new TemporalMaintenance(client, 'q', policy, { now: () => NOW });
    expect(await store.activeFor('pno-physics-bench', NOW)).toEqual({
      id: 'mw-0000abcd',
      reason: 'db migration',
      until: '2026-03-08T00:00:00.000Z',
    });
    expect(await store.activeFor('billing', NOW)).toEqual({
      id: 'policy-0',
      reason: 'policy window',
      until: '2026-03-08T01:00:00.000Z',
    });
    expect(await store.activeFor('checkout', NOW)).toBeUndefined();
    expect((await store.list(NOW)).map((w) => [w.id, w.source, w.state])).toEqual([
      ['policy-0', 'policy', 'active'],
      ['mw-0000abcd', 'operator', 'active'],
    ]);
  });

  it('asks Temporal at most once per cache period (the webhook asks for every new incident)', async () => {
    let now = NOW;
    const { client, calls } = fakeClient(() => Promise.resolve([operatorWindow]));
    const store = new TemporalMaintenance(client, 'q', policy, { now: () => now, cacheMs: 5_000 });
    await Promise.all([1, 2, 3].map(() => store.activeFor('pno-physics-bench', now)));
    now += 4_999;
    await store.activeFor('pno-physics-bench', now);
    expect(calls.queries).toBe(1);
    now += 1;
    await store.activeFor('pno-physics-bench', now);
    expect(calls.queries).toBe(2);
  });

  it('a store that is down means no window (paging is never blocked), reported, and asked again after the period', async () => {
    let now = NOW;
    let down = true;
    const errors: unknown[] = [];
    const { client, calls } = fakeClient(() =>
      down
        ? Promise.reject(new Error('Failed to connect: connection refused'))
        : Promise.resolve([operatorWindow]),
    );
    const store = new TemporalMaintenance(client, 'q', policy, {
      now: () => now,
      onLookupError: (err) => errors.push(err),
    });
    expect(await store.activeFor('pno-physics-bench', now)).toBeUndefined();
    expect(errors).toHaveLength(1);
    // The policy's windows still hold.
    expect((await store.activeFor('billing', now))?.id).toBe('policy-0');
    expect(calls.queries).toBe(1);
    down = false;
    now += 5_000;
    // After the period it is asked again, and the window it now answers holds.
    expect((await store.activeFor('pno-physics-bench', now))?.id).toBe('mw-0000abcd');
    expect(calls.queries).toBe(2);
    // Down again: the last known windows hold for the next period.
    down = true;
    now += 5_000;
    expect((await store.activeFor('pno-physics-bench', now))?.id).toBe('mw-0000abcd');
  });

  it('no maintenance workflow yet means no operator windows; the CLI sees other errors', async () => {
    const missing = fakeClient(() =>
      Promise.reject(new WorkflowNotFoundError('no', 'maintenance-windows', undefined)),
    );
    expect(await new TemporalMaintenance(missing.client, 'q', policy).list(NOW)).toHaveLength(1);
    const down = fakeClient(() => Promise.reject(new Error('Failed to connect: connection refused')));
    await expect(new TemporalMaintenance(down.client, 'q', policy).list(NOW)).rejects.toThrow(
      /Failed to connect/,
    );
  });

  it('a policy window cannot be ended from the CLI', async () => {
    const { client } = fakeClient(() => Promise.resolve([]));
    await expect(new TemporalMaintenance(client, 'q', policy).end('policy-0')).rejects.toThrow(
      MaintenanceRefusedError,
    );
  });
});
