import { fileURLToPath } from 'node:url';
import { MissingSecretError, resolveReferences } from '../../secrets.ts';
import { loadSettingsOrExit } from '../../config.ts';
import type { Settings } from '../../config.ts';
import type { Policy } from '../../domain/policy.ts';
import { lazyClient } from '../client/connection.ts';
import { TemporalIncidents } from '../client/incidents.ts';
import { buildApp } from './app.ts';

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
    `API listening on ${address} (webhook ${address}/webhooks/alertmanager, status ${address}/status)`,
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
