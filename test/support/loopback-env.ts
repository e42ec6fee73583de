/**
 * Test and bench traffic stays on 127.0.0.1: the environment a test or bench gives the product's processes
 * is this process's without what would point the product elsewhere — providers' credentials and URLs (a
 * real page, SMS or e-mail), a cluster, a Prometheus, another data directory or policy. Each caller then sets
 * its own stand-ins.
 */
const OUTSIDE = [
  // Temporal: a test's own dev server, never one the shell points at (a port-forward to production).
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  // The CLI's API mode: with these it would act, as that engineer, on the API they name.
  'INCIDENT_API_URL',
  'INCIDENT_TOKEN',
  'SLACK_API_URL',
  'SLACK_BOT_TOKEN',
  'PAGERDUTY_ROUTING_KEY',
  'PAGERDUTY_EVENTS_URL',
  'SLACK_WEBHOOK_URL',
  'SMTP_URL',
  'TWILIO_ACCOUNT_SID',
  'TWILIO_AUTH_TOKEN',
  'TWILIO_FROM',
  'TWILIO_API_URL',
  'INCIDENT_WEBHOOK_URL',
  'WEBHOOK_SECRET',
  'PROMETHEUS_URL',
  'KUBECONFIG',
  'KUBERNETES_SERVICE_HOST',
  'KUBERNETES_SERVICE_PORT',
  'INCIDENT_CONFIG',
  'INCIDENT_DATA_DIR',
  'INCIDENT_RECORDS_DIR',
  'INCIDENT_POLICY_DIR',
  'INCIDENT_DEADLETTER',
  'INCIDENT_OUTBOX',
];

export function loopbackEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of OUTSIDE) delete env[name];
  // The policy's health URL is the real service's: probed (by the investigation, the playbooks' checks) on a
  // loopback port nobody listens on unless the caller sets its own.
  env['SERVICE_HEALTH_URL'] = 'http://127.0.0.1:9/health';
  return env;
}
