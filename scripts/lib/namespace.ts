/**
 * Prepares a Temporal namespace for incident workflows: registers the search attributes they carry and
 * keeps closed incidents long enough for post-mortems. Used by `npm start` on whatever server it finds or
 * starts, and by the dev servers of the tests and the benchmarks. Every step is idempotent.
 */
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { msNumberToTs, optionalTsToMs } from '@temporalio/common/lib/time.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { incidentSearchAttributes } from '../../src/contract/search-attributes.ts';

/** Default retention of closed workflows: post-mortems are due within a month; a few days of slack. */
export const DEFAULT_RETENTION_DAYS = 35;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Options of {@link prepareNamespace}. */
export interface PrepareNamespaceOptions {
  /**
   * Minimum retention of closed workflows, in days. Default {@link DEFAULT_RETENTION_DAYS}; `null` leaves the
   * namespace's retention as it is (a server npm start did not start: see scripts/lib/temporal-target.ts).
   */
  retentionDays?: number | null;
}

/** What {@link prepareNamespace} changed. */
export interface PreparedNamespace {
  /** Search attributes it registered (they were missing). */
  addedSearchAttributes: string[];
  /** The namespace's retention of closed workflows afterwards, in days (0: none configured). */
  retentionDays: number;
  /** The retention before, in days, when it raised it. */
  raisedRetentionFromDays?: number;
}

/** gRPC status code NOT_FOUND (grpc-js errors carry the numeric code). */
const GRPC_NOT_FOUND = 5;

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === GRPC_NOT_FOUND;
}

/**
 * Registers every key of `incidentSearchAttributes` on `namespace` (skipping those already registered
 * with the same type; a different type is an error, as workflows would fail to upsert it) and raises the
 * namespace's retention of closed workflows to `retentionDays` (35 by default) if it is shorter — the dev
 * server's `default` namespace keeps them only 24 h. Never lowers a longer retention; `retentionDays: null`
 * leaves it alone. Returns what it changed.
 */
export async function prepareNamespace(
  connection: Pick<Connection, 'workflowService' | 'operatorService'>,
  namespace: string,
  opts: PrepareNamespaceOptions = {},
): Promise<PreparedNamespace> {
  // A server that just came up may answer before its namespace registry has loaded the namespace.
  const described = await retryWhileNotFound(() =>
    connection.workflowService.describeNamespace({ namespace }),
  );

  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const registered = customAttributes ?? {};
  const missing: Record<string, number> = {};
  for (const { name, type } of incidentSearchAttributes) {
    const wanted = encodeSearchAttributeIndexedValueType(type);
    if (wanted === undefined) throw new Error(`unknown search attribute type ${type} for ${name}`);
    const existing = registered[name];
    if (existing === undefined) {
      missing[name] = wanted;
    } else if (existing !== wanted) {
      throw new Error(
        `search attribute ${name} is registered on namespace ${namespace} with type ${String(existing)}, ` +
          `but incident workflows need ${type} (${wanted}); remove it or use another namespace`,
      );
    }
  }
  if (Object.keys(missing).length > 0) {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  }

  const addedSearchAttributes = Object.keys(missing);
  const currentMs = optionalTsToMs(described.config?.workflowExecutionRetentionTtl) ?? 0;
  if (opts.retentionDays === null) return { addedSearchAttributes, retentionDays: currentMs / DAY_MS };
  const wantedMs = Math.round((opts.retentionDays ?? DEFAULT_RETENTION_DAYS) * DAY_MS);
  if (currentMs >= wantedMs) return { addedSearchAttributes, retentionDays: currentMs / DAY_MS };
  await connection.workflowService.updateNamespace({
    namespace,
    // Only fields that are set are changed; the rest of the namespace config stays as it is.
    config: { workflowExecutionRetentionTtl: msNumberToTs(wantedMs) },
  });
  return {
    addedSearchAttributes,
    retentionDays: wantedMs / DAY_MS,
    raisedRetentionFromDays: currentMs / DAY_MS,
  };
}

async function retryWhileNotFound<T>(call: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isNotFound(err) || Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

/**
 * Connects to the Temporal frontend at `address` (host:port), retrying until it answers a cheap call
 * (`getSystemInfo`) or `timeoutMs` has passed, and returns the open connection (close it when done).
 * Rejects with the last connection error on timeout, or when `opts.signal` aborts (e.g. the server
 * process exited).
 */
export async function waitForTemporal(
  address: string,
  timeoutMs: number,
  opts: { signal?: AbortSignal } = {},
): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    let connection: Connection | undefined;
    try {
      const remaining = Math.max(250, Math.min(2_000, deadline - Date.now()));
      connection = await Connection.connect({ address, connectTimeout: remaining });
      await connection.workflowService.getSystemInfo({});
      return connection;
    } catch (err) {
      lastError = err;
      await connection?.close().catch(() => undefined);
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`Temporal at ${address} did not answer within ${timeoutMs} ms: ${why}`);
    }
    await sleep(200);
  }
}
