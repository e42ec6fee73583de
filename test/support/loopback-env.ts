/**
 * Test and bench traffic stays on 127.0.0.1: the environment a test or bench gives the product's processes
 * is this process's without what would point the product elsewhere — providers' credentials and URLs (a
 * real page, SMS or e-mail), a cluster, a Prometheus, another data directory or policy. Each caller then sets
 * its own stand-ins.
 */
const OUTSIDE = [
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
  return env;
}
