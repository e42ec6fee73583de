import { fileURLToPath } from 'node:url';
import { MissingSecretError, resolveReferences } from '../../secrets.ts';
import { loadSettingsOrExit } from '../../config.ts';
import { deadLetterPath } from '../../deadletter-file.ts';
import type { Settings } from '../../config.ts';
import type { Policy } from '../../domain/policy.ts';
import { lazyClient } from '../client/connection.ts';
import { TemporalIncidents } from '../client/incidents.ts';
import { buildApp } from './app.ts';
import { SlackResponder } from './slack-responder.ts';

/** For `npm start` on a laptop only; production must set ALERTMANAGER_WEBHOOK_TOKEN. */
export const DEV_WEBHOOK_TOKEN = 'local-dev-webhook-token';

/** Engineer tokens from each person's `tokenEnv`: token → handle. */
export function engineerTokens(policy: Policy, env: NodeJS.ProcessEnv): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const [handle, person] of Object.entries(policy.people)) {
    const token = person.tokenEnv ? env[person.tokenEnv] : undefined;
    if (token) tokens.set(token, handle);
  }
  return tokens;
}

export function webhookToken(policy: Policy, env: NodeJS.ProcessEnv): string {
  try {
    return resolveReferences(policy.webhook.token, env, 'webhook.token');
  } catch (err) {
    if (err instanceof MissingSecretError && env['NODE_ENV'] !== 'production') {
      console.warn(`${err.message}; using the local development token "${DEV_WEBHOOK_TOKEN}"`);
      return DEV_WEBHOOK_TOKEN;
    }
    throw err;
  }
}

/**
 * The API's external base URL: `INCIDENT_PUBLIC_URL` (what Twilio and PagerDuty are configured to call,
 * e.g. behind a proxy or tunnel), else `http://<HOST>:<PORT>`.
 */
export function publicUrl(settings: Pick<Settings, 'host' | 'port'>, env: NodeJS.ProcessEnv): string {
  const configured = env['INCIDENT_PUBLIC_URL'];
  if (configured) {
    try {
      return new URL(configured).href.replace(/\/+$/, '');
    } catch {
      throw new Error(
        `INCIDENT_PUBLIC_URL: expected a URL such as https://incidents.example.com, got "${configured}"`,
      );
    }
  }
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `http://${host}:${settings.port}`;
}

/** The provider settings of the API's callbacks, from the environment (each secret only ever held here). */
export function providerDeps(settings: Settings, env: NodeJS.ProcessEnv) {
  const slack = settings.policy.channels.slack;
  return {
    ...(env['SLACK_SIGNING_SECRET'] ? { slackSigningSecret: env['SLACK_SIGNING_SECRET'] } : {}),
    ...(env['PAGERDUTY_WEBHOOK_SECRET'] ? { pagerDutyWebhookSecret: env['PAGERDUTY_WEBHOOK_SECRET'] } : {}),
    ...(env['TWILIO_AUTH_TOKEN'] ? { twilioAuthToken: env['TWILIO_AUTH_TOKEN'] } : {}),
    ...(env['INCIDENT_OUTBOX'] ? { outboxFile: env['INCIDENT_OUTBOX'] } : {}),
    // Valid alert deliveries that could not be ingested: kept here, `incident deadletter list|replay`.
    deadLetterFile: deadLetterPath(env),
    publicUrl: publicUrl(settings, env),
    // Resolved when a call is made: a missing bot token fails that answer, not the API's start.
    slack: new SlackResponder({
      apiUrl: () => resolveReferences(slack.apiUrl, env, 'channels.slack.apiUrl'),
      token: () => resolveReferences(slack.botToken, env, 'channels.slack.botToken'),
    }),
  };
}

export async function startApi(settings: Settings, env: NodeJS.ProcessEnv = process.env) {
  // Lazy: the API starts (and answers 503) even while Temporal is down.
  const client = lazyClient(settings.temporal);
  const app = buildApp({
    policy: settings.policy,
    incidents: new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy),
    webhookToken: webhookToken(settings.policy, env),
    ...(settings.policy.webhook.basicAuth
      ? {
          webhookBasicAuth: {
            username: resolveReferences(
              settings.policy.webhook.basicAuth.username,
              env,
              'webhook.basicAuth.username',
            ),
            password: resolveReferences(
              settings.policy.webhook.basicAuth.password,
              env,
              'webhook.basicAuth.password',
            ),
          },
        }
      : {}),
    engineerTokens: engineerTokens(settings.policy, env),
    ...providerDeps(settings, env),
    logger: { level: env['LOG_LEVEL'] ?? 'info' },
  });
  app.addHook('onClose', async () => client.connection.close());
  const address = await app.listen({ host: settings.host, port: settings.port });
  return { app, address };
}

async function main(): Promise<void> {
  const settings = loadSettingsOrExit();
  const { app, address } = await startApi(settings);
  console.log(
    `API listening on ${address} (webhook ${address}/webhooks/alertmanager, status ${address}/status; ` +
      `dead letters in ${deadLetterPath(process.env)})`,
  );
  const stop = () => void app.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`API failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
