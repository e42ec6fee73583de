import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { ConnectionOptions, GrpcRetryOptions } from '@temporalio/client';
import type { Settings } from '../../config.ts';

type GrpcInterceptor = NonNullable<ConnectionOptions['interceptors']>[number];

/**
 * The SDK's retries of a failed call (UNAVAILABLE and the like, with backoff), except one that would start
 * after the call's deadline: the SDK's own interceptor sleeps its backoff whatever the deadline (up to 5 s a
 * retry), so a call bounded to 5 s while Temporal is down answered after 6 to 7.5 s. With this, the caller
 * has the last failure (UNAVAILABLE) by its deadline, and a webhook's 503 comes when it says it does.
 */
export function deadlineBoundedRetries(
  deadline: number,
  base: GrpcRetryOptions = defaultGrpcRetryOptions(),
  now: () => number = Date.now,
): GrpcRetryOptions {
  let delay = 0;
  return {
    retryableDecider(attempt, status) {
      if (!base.retryableDecider(attempt, status)) return false;
      delay = base.delayFunction(attempt, status);
      return now() + delay < deadline;
    },
    delayFunction: () => delay,
  };
}

/** {@link deadlineBoundedRetries} as the connection's gRPC interceptor: each call by its own deadline. */
const deadlineAwareRetry: GrpcInterceptor = (options, nextCall) => {
  const { deadline } = options;
  const at = deadline instanceof Date ? deadline.getTime() : (deadline ?? Infinity);
  return makeGrpcRetryInterceptor(deadlineBoundedRetries(at))(options, nextCall);
};

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

/** The client connection's options: the settings' fields, and retries that end by each call's deadline. */
function clientConnectionOptions(temporal: Settings['temporal']): ConnectionOptions {
  return { ...connectionOptions(temporal), interceptors: [deadlineAwareRetry] };
}

/** Connects now (the CLI: fail fast when Temporal is unreachable). */
export async function connectClient(
  temporal: Settings['temporal'],
  connectTimeoutMs = 5_000,
): Promise<Client> {
  const connection = await Connection.connect({
    ...clientConnectionOptions(temporal),
    connectTimeout: connectTimeoutMs,
  });
  return new Client({ connection, namespace: temporal.namespace });
}

/** Connects on first use (the API and activities: they start, and answer 503, while Temporal is down). */
export function lazyClient(temporal: Settings['temporal']): Client {
  return new Client({
    connection: Connection.lazy(clientConnectionOptions(temporal)),
    namespace: temporal.namespace,
  });
}
