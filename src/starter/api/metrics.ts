import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The API's Prometheus metrics; one registry per app so tests stay independent. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'incident_api_' });
  /** Asked at each scrape: how many workers poll the task queue (set by `buildApp` from its gateway). */
  const workers: { count?: () => Promise<number> } = {};
  /** The webhooks' backlog (set by the webhook routes from their backpressure): read at each scrape. */
  const backlog: { inFlight?: () => number; queue?: () => Promise<number | undefined> } = {};
  return {
    registry,
    workers,
    backlog,
    backpressure: new Counter({
      name: 'incident_webhook_backpressure_total',
      help: 'Alert deliveries answered 503 with Retry-After because a backlog bound was passed (webhook.backpressure), by bound: in_flight (ingest calls Temporal has not answered) or queue_backlog (workflow tasks waiting on the incidents task queue); nothing of them was started',
      labelNames: ['bound'] as const,
      registers: [registry],
    }),
    webhookInFlight: new Gauge({
      name: 'incident_webhook_in_flight',
      help: 'Alert deliveries whose ingest call (signal-with-start) Temporal has not answered yet',
      registers: [registry],
      collect() {
        if (backlog.inFlight) this.set(backlog.inFlight());
      },
    }),
    taskQueueBacklog: new Gauge({
      name: 'incident_task_queue_backlog',
      help: 'Workflow tasks waiting for a worker on the incidents task queue, as Temporal estimates it (asked at most every webhook.backpressure.queueBacklogPollSeconds); NaN while Temporal cannot say',
      registers: [registry],
      async collect() {
        if (backlog.queue) this.set((await backlog.queue()) ?? Number.NaN);
      },
    }),
    workersPolling: new Gauge({
      name: 'incident_workers_polling',
      help: 'Workers polling the incidents task queue (workflow tasks) within the last 90 s, asked of Temporal at each scrape; 0 also while Temporal cannot be asked',
      registers: [registry],
      async collect() {
        if (workers.count) this.set(await workers.count());
      },
    }),
    alertsReceived: new Counter({
      name: 'incident_webhook_alerts_received_total',
      help: 'Alerts received in valid Alertmanager webhook payloads',
      registers: [registry],
    }),
    deduplicated: new Counter({
      name: 'incident_webhook_alerts_deduplicated_total',
      help: 'Alerts redelivered with a status their incident already has (recorded once by the workflow)',
      registers: [registry],
    }),
    incidents: new Counter({
      name: 'incident_webhook_groups_total',
      help: 'Alert group deliveries by what they did to an incident',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'incident_webhook_rejected_total',
      help: 'Webhook requests refused, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'incident_webhook_deadlettered_total',
      help: 'Valid alert deliveries that could not be ingested and were kept in the dead-letter file (incident deadletter list), by source and stage',
      labelNames: ['source', 'stage'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'incident_webhook_duration_seconds',
      help: 'Webhook handling time',
      labelNames: ['status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof createMetrics>;
