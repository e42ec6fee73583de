import { startAlertmanager, startPrometheus } from './prometheus.ts';
import type { Daemon, PrometheusApi } from './prometheus.ts';
import { startStack } from './stack.ts';
import type { Stack } from './stack.ts';
import { startTestDevServer } from './temporal.ts';
import { TestService } from './test-service.ts';
import { workflowBundle } from './workflow-env.ts';

export const RECEIVER = 'incident-response';

/**
 * The whole picture of the alert-ingestion tests: a real Temporal dev server,
 * the product (worker + API), a test service that Prometheus scrapes with the
 * repo's rules, and Alertmanager posting to the webhook with the bearer token.
 */
export interface MonitoredStack {
  /** Replace with the handle `restart()` returns, so that `stop()` stops the server that runs. */
  server: Awaited<ReturnType<typeof startTestDevServer>>;
  stack: Stack;
  service: TestService;
  alertmanager: Daemon;
  prometheus: Daemon & PrometheusApi;
  stop(): Promise<void>;
}

export async function startMonitoredStack(name: string): Promise<MonitoredStack> {
  const [server, bundle] = await Promise.all([startTestDevServer(), workflowBundle()]);
  const stack = await startStack({ address: server.address, name, workflowBundle: bundle });
  const service = new TestService({ errorRatio: 0 });
  await service.start();
  const alertmanager = await startAlertmanager({
    webhookUrl: `${stack.api.address}/webhooks/alertmanager`,
    bearerToken: stack.webhookToken,
    receiver: RECEIVER,
  });
  const prometheus = await startPrometheus({
    targets: [service.target],
    alertmanager: alertmanager.hostPort,
  });
  const monitored: MonitoredStack = {
    server,
    stack,
    service,
    alertmanager,
    prometheus,
    stop: async () => {
      await prometheus.stop();
      await alertmanager.stop();
      await service.stop();
      await stack.stop();
      // The current server: a crash test replaces it with its restarted handle.
      await monitored.server.stop();
    },
  };
  return monitored;
}
