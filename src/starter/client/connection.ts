import { Client, Connection } from '@temporalio/client';
import type { ConnectionOptions } from '@temporalio/client';
import type { Settings } from '../../config.ts';

/**
 * The one place that turns the settings (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_TLS`, `TEMPORAL_API_KEY`) into connection options, for the API,
 * the CLI and the worker (whose native connection takes the same fields).
 */
export function connectionOptions(temporal: Settings['temporal']): {
  address: string;
  tls: ConnectionOptions['tls'];
  apiKey: string | undefined;
} {
  return { address: temporal.address, tls: temporal.tls ? {} : undefined, apiKey: temporal.apiKey };
}

/** Connects now (the CLI: fail fast when Temporal is unreachable). */
export async function connectClient(
  temporal: Settings['temporal'],
  connectTimeoutMs = 5_000,
): Promise<Client> {
  const connection = await Connection.connect({
    ...connectionOptions(temporal),
    connectTimeout: connectTimeoutMs,
  });
  return new Client({ connection, namespace: temporal.namespace });
}

/** Connects on first use (the API and activities: they start, and answer 503, while Temporal is down). */
export function lazyClient(temporal: Settings['temporal']): Client {
  return new Client({
    connection: Connection.lazy(connectionOptions(temporal)),
    namespace: temporal.namespace,
  });
}
