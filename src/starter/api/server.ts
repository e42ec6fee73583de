import { BlockList, isIP } from 'node:net';
import { IncidentRecordFile, incidentRecordDir } from '../../incident-record-file.ts';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { MissingSecretError, resolveReferences } from '../../secrets.ts';
import { loadSettingsOrExit } from '../../config.ts';
import { deadLetterPath } from '../../deadletter-file.ts';
import { policySnapshotDir } from '../../policy-snapshots.ts';
import type { Settings } from '../../config.ts';
import type { Policy } from '../../domain/policy.ts';
import { lazyClient } from '../client/connection.ts';
import { TemporalIncidents } from '../client/incidents.ts';
import { TemporalWatchdog } from '../client/watchdog.ts';
import { buildApp, buildStatusApp } from './app.ts';
import { SlackResponder } from './slack-responder.ts';

/**
 * For `npm start` on a laptop only: accepted when the webhook token's variable (ALERTMANAGER_WEBHOOK_TOKEN) is
 * unset, NODE_ENV is not production and the API listens on loopback only ({@link isLoopbackHost}).
 */
export const DEV_WEBHOOK_TOKEN = 'local-dev-webhook-token';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether the API listening on `host` (HOST) can be reached from this machine only: 127.0.0.0/8, ::1 (also
 * IPv4-mapped, bracketed) or `localhost`. `0.0.0.0`, `::` and any other address are reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const address = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (address === 'localhost') return true;
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Engineer tokens from each person's `tokenEnv`: token → handle. */
export function engineerTokens(policy: Policy, env: NodeJS.ProcessEnv): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const [handle, person] of Object.entries(policy.people)) {
    const token = person.tokenEnv ? env[person.tokenEnv] : undefined;
    if (token) tokens.set(token, handle);
  }
  return tokens;
}

/**
 * The webhook's bearer token: the policy's `webhook.token` (`${ALERTMANAGER_WEBHOOK_TOKEN}`). Unset, a laptop's
 * API (`host` on loopback, NODE_ENV not production) accepts {@link DEV_WEBHOOK_TOKEN} and says so through
 * `log`; an API that listens beyond loopback refuses to start instead. Refusing is the safe answer: answering
 * every delivery 401 would make Alertmanager drop each alert group for good (it never retries a 4xx), while a
 * process that does not start is seen at once (a failing deployment; the old pods keep serving).
 */
export function webhookToken(
  policy: Policy,
  env: NodeJS.ProcessEnv,
  host: string,
  log: (line: string) => void = (line) => console.warn(line),
): string {
  try {
    return resolveReferences(policy.webhook.token, env, 'webhook.token');
  } catch (err) {
    if (!(err instanceof MissingSecretError) || env['NODE_ENV'] === 'production') throw err;
    if (!isLoopbackHost(host)) {
      throw new Error(
        `${err.variable} is not set and the API listens on ${host}, beyond loopback: set ${err.variable} ` +
          `to the webhook's bearer token (the local development token is accepted only on 127.0.0.1 or ::1)`,
        { cause: err },
      );
    }
    log(
      `${err.variable} is not set: the webhook accepts the local development token "${DEV_WEBHOOK_TOKEN}" ` +
        `(only because the API listens on loopback, ${host}; set ${err.variable} anywhere else)`,
    );
    return DEV_WEBHOOK_TOKEN;
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
    // New incidents name the policy by hash; its snapshot is written where the workers look for it.
    incidents: new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy, {
      policySnapshotDir: policySnapshotDir(env),
      records: new IncidentRecordFile(incidentRecordDir(env)),
    }),
    watchdog: new TemporalWatchdog(client, settings.temporal.taskQueue, settings.policy),
    webhookToken: webhookToken(settings.policy, env, settings.host),
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
    // STATUS_PORT / statusPage.port: the public status page has a listener of its own, not this one.
    serveStatusPage: settings.statusPage === undefined,
  });
  app.addHook('onClose', async () => client.connection.close());
  const listenStatusPage = settings.statusPage
    ? statusPageListener(app, { ...settings, statusPage: settings.statusPage }, env, client)
    : undefined;
  const address = await app.listen({ host: settings.host, port: settings.port });
  const statusAddress = listenStatusPage ? await listenStatusPage() : undefined;
  return { app, address, ...(statusAddress ? { statusAddress } : {}) };
}

/**
 * The public status page's own listener (`STATUS_HOST`:`STATUS_PORT`), closed with the API; call the result
 * once the API listens. Its Atom feed links to `STATUS_PUBLIC_URL`, default `http://<STATUS_HOST>:<STATUS_PORT>`.
 */
function statusPageListener(
  app: FastifyInstance,
  settings: Settings & { statusPage: { host: string; port: number } },
  env: NodeJS.ProcessEnv,
  client: Client,
): () => Promise<string> {
  const { host, port } = settings.statusPage;
  const status = buildStatusApp({
    policy: settings.policy,
    incidents: new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy),
    publicUrl: publicUrl({ host, port }, { INCIDENT_PUBLIC_URL: env['STATUS_PUBLIC_URL'] }),
    logger: { level: env['LOG_LEVEL'] ?? 'info' },
  });
  app.addHook('preClose', async () => status.close());
  return async () => {
    try {
      return await status.listen({ host, port });
    } catch (err) {
      await app.close();
      throw err;
    }
  };
}

async function main(): Promise<void> {
  const settings = loadSettingsOrExit();
  const { app, address, statusAddress } = await startApi(settings);
  console.log(
    `API listening on ${address} (webhook ${address}/webhooks/alertmanager, status ${statusAddress ?? address}/status; ` +
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
