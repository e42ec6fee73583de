/**
 * Tool provisioning: the external programs this project runs (Temporal CLI dev server, Temporal's Java
 * time-skipping test server, Prometheus + Alertmanager), fetched or built on first use and cached by version
 * (see ./cache.ts).
 *
 * One module serves `npm start`, `npm test`, the tests and CI, so a fresh machine needs nothing but
 * `npm install && npm test`.
 */
import type { PrometheusTools } from './prometheus.ts';
import { ensurePrometheus } from './prometheus.ts';
import { ensureTemporalCli } from './temporal-cli.ts';
import { ensureTestServer } from './test-server.ts';
import type { Log } from './cache.ts';

export type { BuildOnceOptions, LockOptions, Log } from './cache.ts';
export { buildOnce, toolsDir, verifySha256, which, withLock } from './cache.ts';
export { isProcessAlive } from '../process.ts';
export type { PrometheusTools } from './prometheus.ts';
export { ensurePrometheus } from './prometheus.ts';
export {
  TEMPORAL_CLI_GO_VERSION,
  TEMPORAL_CLI_VERSION,
  TEMPORAL_CLI_WHEEL,
  ensureTemporalCli,
} from './temporal-cli.ts';
export { TEST_SERVER_MAIN_CLASS, TEST_SERVER_VERSION, ensureTestServer } from './test-server.ts';

/** Everything {@link ensureAll} provides. */
export interface AllTools {
  temporalCli: string;
  testServer: string;
  prometheus: PrometheusTools;
}

/**
 * Ensures every tool, in parallel (downloads and Maven mostly wait on the network, apt on its lock).
 * Fails after all attempts finished, with every failure's message.
 */
export async function ensureAll(opts: { log?: Log } = {}): Promise<AllTools> {
  const [cli, testServer, prometheus] = await Promise.allSettled([
    ensureTemporalCli(opts),
    ensureTestServer(opts),
    ensurePrometheus(opts),
  ]);
  const failures = [cli, testServer, prometheus].flatMap((r) =>
    r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : [],
  );
  if (cli.status === 'rejected' || testServer.status === 'rejected' || prometheus.status === 'rejected') {
    throw new Error(`could not provide every tool:\n- ${failures.join('\n- ')}`);
  }
  return { temporalCli: cli.value, testServer: testServer.value, prometheus: prometheus.value };
}
