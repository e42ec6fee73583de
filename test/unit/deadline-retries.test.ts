/**
 * A call to an unreachable Temporal fails by its deadline: the SDK's retry interceptor sleeps its backoff
 * whatever the deadline, so the webhook's 5 s signal-with-start answered its 503 after 6 to 7.5 s (CI saw
 * 7.04 s against the 7 s its test allows). The client's connection retries only while a retry can start
 * before the deadline.
 */
import { defaultGrpcRetryOptions } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/ports.ts';
import { deadlineBoundedRetries, lazyClient } from '../../src/starter/client/connection.ts';

const UNAVAILABLE = { code: 14, details: 'connect ECONNREFUSED', metadata: undefined as never };
const INVALID_ARGUMENT = { code: 3, details: 'bad', metadata: undefined as never };

describe('retries bounded by the deadline', () => {
  // No jitter: the SDK's delays are 170, 289, 491, 835 ms … (100 ms × 1.7^attempt).
  const base = defaultGrpcRetryOptions({ maxJitter: 0 });

  it('retries while the next attempt starts before the deadline, with the SDK’s delay', () => {
    let now = 0;
    const retries = deadlineBoundedRetries(1_000, base, () => now);
    expect(retries.retryableDecider(1, UNAVAILABLE)).toBe(true);
    expect(retries.delayFunction(1, UNAVAILABLE)).toBe(170);
    now = 829; // 829 + 170 < 1000
    expect(retries.retryableDecider(1, UNAVAILABLE)).toBe(true);
    now = 830; // the retry would start at the deadline: the caller has the failure now
    expect(retries.retryableDecider(1, UNAVAILABLE)).toBe(false);
    now = 0;
    expect(retries.retryableDecider(4, UNAVAILABLE)).toBe(true);
    expect(retries.delayFunction(4, UNAVAILABLE)).toBeCloseTo(835.21, 2);
  });

  it('keeps the SDK’s decision: no retry of a non-retryable status or past its attempts', () => {
    const retries = deadlineBoundedRetries(Infinity, base, () => 0);
    expect(retries.retryableDecider(1, INVALID_ARGUMENT)).toBe(false);
    expect(retries.retryableDecider(10, UNAVAILABLE)).toBe(false);
    expect(retries.retryableDecider(9, UNAVAILABLE)).toBe(true);
  });

  it('a call to a port nobody listens on fails by its deadline, not a backoff later', async () => {
    const port = await freePort();
    const client: Client = lazyClient({
      address: `127.0.0.1:${port}`,
      namespace: 'default',
      taskQueue: 'unused',
      tls: false,
    });
    try {
      // With the SDK's interceptor the 5th attempt starts at 1.43–2.14 s and sleeps 1.14–1.70 s: the call
      // failed at 2.57 s at the earliest. Bounded, the last attempt is the 5th and the failure comes with it.
      const deadlineMs = 2_300;
      const started = performance.now();
      const failure = await client
        .withDeadline(Date.now() + deadlineMs, () => client.workflowService.getSystemInfo({}))
        .then(
          () => undefined,
          (err: unknown) => err as { code?: number },
        );
      const elapsed = performance.now() - started;
      expect(failure?.code).toBe(UNAVAILABLE.code);
      expect(elapsed).toBeLessThan(deadlineMs + 150);
    } finally {
      await client.connection.close();
    }
  });
});
