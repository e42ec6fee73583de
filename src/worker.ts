import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { SmtpEmail } from './activities/channels/email.ts';
import {
  emailNotifier,
  notConfiguredNotifier,
  notConfiguredPagerFollowUp,
  notConfiguredPoster,
  notConfiguredSink,
  outboxNotifier,
  outboxPagerFollowUp,
  outboxPoster,
  outboxSink,
  pagerFollowUp,
  pagerNotifier,
  phoneNotifier,
  slackNotifier,
  slackPoster,
  smsNotifier,
  webhookPoster,
  webhookSink,
} from './activities/channels/notifier.ts';
import type { ChannelPoster, PersonChannel } from './activities/channels/notifier.ts';
import { Outbox } from './activities/channels/outbox.ts';
import { PagerDutyEvents } from './activities/channels/pagerduty.ts';
import type { PagerClient } from './activities/channels/pagerduty.ts';
import { SlackApi, SlackWebhook } from './activities/channels/slack.ts';
import { TwilioApi } from './activities/channels/twilio.ts';
import { SignedWebhook } from './activities/channels/webhook.ts';
import type { DeliveryChannels } from './activities/deliver.ts';
import { TemporalIncidentHistory } from './activities/incident-history.ts';
import { createActivities } from './activities/index.ts';
import { IncidentRecordFile, incidentRecordDir } from './incident-record-file.ts';
import { createPlaybookHttp } from './activities/playbooks/http.ts';
import { playbookActivities } from './activities/playbooks/index.ts';
import type { PlaybookActivities } from './activities/playbooks/index.ts';
import { KubernetesCluster, loadKubeConfig } from './activities/playbooks/kubernetes.ts';
import { Monitoring } from './activities/playbooks/monitoring.ts';
import { loadSettingsOrExit } from './config.ts';
import { PolicySnapshots, policySnapshotDir } from './policy-snapshots.ts';
import type { Settings } from './config.ts';
import type { Policy } from './domain/policy.ts';
import { playbookSettings } from './domain/playbook-settings.ts';
import type { Channel, Role } from './domain/severity.ts';
import { resolveReferences } from './secrets.ts';
import { connectionOptions, lazyClient } from './starter/client/connection.ts';

/** The workflow bundle's entry: every workflow the task queue runs. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

type Env = Readonly<Record<string, string | undefined>>;

/** A `${VAR}` reference's value now, or '' when it resolves to nothing (the channel is not configured). */
function valueOf(reference: string, env: Env, key: string): string {
  try {
    return resolveReferences(reference, env, key).trim();
  } catch {
    return '';
  }
}

/** The reference's variable names, to say what to set (`PAGERDUTY_ROUTING_KEY`). */
function variablesOf(...references: string[]): string {
  const names = references.flatMap((r) => [...r.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]));
  return names.length > 0 ? names.join(', ') : references.join(', ');
}

/**
 * Every channel's transport, decided once from the policy and the environment: the provider's when its
 * credentials are set; else, with `INCIDENT_OUTBOX` (npm start on a laptop), the local outbox; else
 * "not configured", which fails each message loudly so that the person's fallback channel is tried.
 * Credentials are read when a message is sent, never logged. `describe` says, per channel, which it is.
 */
export function buildChannels(policy: Policy, env: Env): { channels: DeliveryChannels; describe: string[] } {
  const c = policy.channels;
  const outboxFile = env['INCIDENT_OUTBOX']?.trim();
  const outbox = outboxFile ? new Outbox({ file: outboxFile }) : undefined;
  const describe: string[] = [];
  const toOutbox = new Set<Channel | 'room'>();
  const choose = <T>(
    name: Channel,
    configured: boolean,
    real: () => T,
    local: (o: Outbox) => T,
    none: (why: string) => T,
    provider: string,
    missing: string,
  ): T => {
    if (configured) {
      describe.push(`${name}: ${provider}`);
      return real();
    }
    if (outbox) {
      toOutbox.add(name);
      describe.push(`${name}: local outbox ${outboxFile} (set ${missing} to deliver for real)`);
      return local(outbox);
    }
    describe.push(`${name}: NOT CONFIGURED (set ${missing}): its messages fail and fallbacks are tried`);
    return none(`set ${missing}`);
  };

  const slackToken = () => resolveReferences(c.slack.botToken, env, 'channels.slack.botToken');
  const slackApi = new SlackApi({
    apiUrl: () => valueOf(c.slack.apiUrl, env, 'channels.slack.apiUrl'),
    token: slackToken,
  });
  const slackConfigured = valueOf(c.slack.botToken, env, 'channels.slack.botToken') !== '';
  const slackWebhookUrl = valueOf(c.slack.webhookUrl, env, 'channels.slack.webhookUrl');
  let posts: ChannelPoster;
  if (!slackConfigured && slackWebhookUrl !== '') {
    describe.push('slack: incoming webhook (channel posts only; no direct messages or incident channels)');
    posts = webhookPoster(new SlackWebhook({ url: () => slackWebhookUrl }));
  } else {
    posts = choose(
      'slack',
      slackConfigured,
      () => slackPoster(slackApi),
      outboxPoster,
      notConfiguredPoster,
      `Slack Web API ${valueOf(c.slack.apiUrl, env, 'apiUrl')}`,
      variablesOf(c.slack.botToken),
    );
  }
  if (toOutbox.has('slack')) toOutbox.add('room');

  const pagers = new Map<string, PagerClient>();
  const pagerFor = (role: Role | null): PagerClient => {
    const reference = (role ? c.pagerduty.routingKeys[role] : undefined) ?? c.pagerduty.routingKey;
    let pager = pagers.get(reference);
    if (!pager) {
      pager = new PagerDutyEvents({
        routingKey: () =>
          resolveReferences(reference, env, `channels.pagerduty routing key${role ? ` of ${role}` : ''}`),
        eventsUrl: () => valueOf(c.pagerduty.eventsUrl, env, 'channels.pagerduty.eventsUrl'),
      });
      pagers.set(reference, pager);
    }
    return pager;
  };
  const pagerConfigured =
    valueOf(c.pagerduty.routingKey, env, 'routingKey') !== '' ||
    Object.values(c.pagerduty.routingKeys).some((r) => r && valueOf(r, env, 'routingKeys') !== '');
  const pagerProvider = `PagerDuty Events API v2 ${valueOf(c.pagerduty.eventsUrl, env, 'eventsUrl')}`;
  const pagerMissing = variablesOf(c.pagerduty.routingKey);

  const twilio = new TwilioApi({
    accountSid: () => valueOf(c.twilio.accountSid, env, 'channels.twilio.accountSid'),
    authToken: () => valueOf(c.twilio.authToken, env, 'channels.twilio.authToken'),
    from: () => valueOf(c.twilio.from, env, 'channels.twilio.from'),
    apiUrl: () => valueOf(c.twilio.apiUrl, env, 'channels.twilio.apiUrl'),
  });
  const twilioConfigured = [c.twilio.accountSid, c.twilio.authToken, c.twilio.from].every(
    (r) => valueOf(r, env, 'twilio') !== '',
  );
  const twilioProvider = `Twilio ${valueOf(c.twilio.apiUrl, env, 'apiUrl')}`;
  const twilioMissing = variablesOf(c.twilio.accountSid, c.twilio.authToken, c.twilio.from);

  const smtpUrl = () => valueOf(c.email.smtpUrl, env, 'channels.email.smtpUrl');
  const emailConfigured = smtpUrl() !== '';

  const notifiers: Record<PersonChannel, ReturnType<typeof pagerNotifier>> = {
    pager: choose(
      'pager',
      pagerConfigured,
      () => pagerNotifier(pagerFor),
      (o) => outboxNotifier('pager', o),
      (why) => notConfiguredNotifier('pager', why),
      pagerProvider,
      pagerMissing,
    ),
    sms: choose(
      'sms',
      twilioConfigured,
      () => smsNotifier(twilio),
      (o) => outboxNotifier('sms', o),
      (why) => notConfiguredNotifier('sms', why),
      `${twilioProvider} (Messages)`,
      twilioMissing,
    ),
    phone: choose(
      'phone',
      twilioConfigured,
      () => phoneNotifier(twilio),
      (o) => outboxNotifier('phone', o),
      (why) => notConfiguredNotifier('phone', why),
      `${twilioProvider} (Calls)`,
      twilioMissing,
    ),
    slack: slackConfigured
      ? slackNotifier(posts)
      : outbox
        ? outboxNotifier('slack', outbox)
        : notConfiguredNotifier('slack', `set ${variablesOf(c.slack.botToken)}`),
    email: choose(
      'email',
      emailConfigured,
      () => emailNotifier(new SmtpEmail({ url: smtpUrl, from: c.email.from })),
      (o) => outboxNotifier('email', o),
      (why) => notConfiguredNotifier('email', why),
      'SMTP (SMTP_URL)',
      variablesOf(c.email.smtpUrl),
    ),
  };
  const pager = pagerConfigured
    ? pagerFollowUp(pagerFor)
    : outbox
      ? outboxPagerFollowUp(outbox)
      : notConfiguredPagerFollowUp(`set ${pagerMissing}`);

  // The generic webhook is optional: with no URL in the policy, incidents send no events at all.
  const webhookUrl = () => valueOf(c.webhook.url, env, 'channels.webhook.url');
  let events;
  if (c.webhook.url === '') {
    describe.push('webhook: off (no channels.webhook.url in the policy)');
    events = notConfiguredSink('no channels.webhook.url in the policy');
  } else {
    events = choose(
      'webhook',
      webhookUrl() !== '',
      () =>
        webhookSink(
          new SignedWebhook({
            url: webhookUrl,
            secret: () => valueOf(c.webhook.secret, env, 'channels.webhook.secret'),
          }),
        ),
      outboxSink,
      notConfiguredSink,
      'signed webhook',
      variablesOf(c.webhook.url),
    );
  }
  return { channels: { notifiers, posts, pager, events, outbox: toOutbox }, describe };
}

/**
 * The one composition root: the only place that builds real clients from the
 * policy and the environment and hands them to the activities. `channels`
 * says, per channel, where its messages go.
 */
export function buildActivities(settings: Settings, env: NodeJS.ProcessEnv = process.env) {
  const { channels, describe } = buildChannels(settings.policy, env);
  const playbooks = buildPlaybooks(settings.policy, env);
  // Incidents' policies by hash (their snapshots), and the people whose contacts `deliver` looks up.
  const policies = new PolicySnapshots({ current: settings.policy, dir: policySnapshotDir(env) });
  return {
    policies,
    activities: createActivities({
      policies,
      history: new TemporalIncidentHistory(lazyClient(settings.temporal)),
      records: new IncidentRecordFile(incidentRecordDir(env)),
      channels,
      playbooks: playbooks.activities,
    }),
    channels: [...describe, ...playbooks.describe],
  };
}

/**
 * The playbooks' hands: the cluster from `KUBECONFIG` or the in-cluster account (none: every playbook
 * runs dry and says so), Prometheus from `PROMETHEUS_URL`, and the one HTTP client for probes and
 * Prometheus. `describe` says what each is, and whether playbooks act at all.
 */
export function buildPlaybooks(
  policy: Policy,
  env: Env,
): { activities: PlaybookActivities; describe: string[] } {
  const kube = loadKubeConfig(env);
  const prometheusUrl = env['PROMETHEUS_URL']?.trim() || undefined;
  const monitoring = new Monitoring({
    ...(prometheusUrl ? { prometheusUrl } : {}),
    http: createPlaybookHttp(),
  });
  const settings = playbookSettings(policy);
  const where = [
    kube ? `cluster ${kube.describe}` : 'cluster: NONE (no KUBECONFIG, not in a cluster): playbooks run dry',
    monitoring.prometheusConfigured
      ? monitoring.describe()
      : `${monitoring.describe()}: the playbooks cannot measure`,
  ];
  const mode = !settings.enabled
    ? 'OFF (playbooks.enabled: false)'
    : settings.dryRun || !kube
      ? 'dry run (plans recorded, nothing touched)'
      : 'live';
  return {
    activities: playbookActivities({
      ...(kube ? { cluster: new KubernetesCluster(kube.config) } : {}),
      monitoring,
      prometheus: monitoring.prometheusConfigured,
      describe: where,
    }),
    describe: [`playbooks: ${mode}; ${where.join('; ')}`],
  };
}

export async function createWorker(
  settings: Settings,
  overrides: Partial<WorkerOptions> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ worker: Worker; connection: NativeConnection; channels: string[] }> {
  const connection = await NativeConnection.connect(connectionOptions(settings.temporal));
  const { activities, channels, policies } = buildActivities(settings, env);
  // Its own policy's snapshot, for whatever shares the directory (an API on the same file needs none).
  const dir = policySnapshotDir(env);
  channels.push(
    await policies.publish().then(
      () => `policy: ${policies.current.hash} (snapshots in ${dir})`,
      (err: unknown) =>
        `policy: ${policies.current.hash}; its snapshot NOT written to ${dir}: ${err instanceof Error ? err.message : String(err)}`,
    ),
  );
  const worker = await Worker.create({
    connection,
    namespace: settings.temporal.namespace,
    taskQueue: settings.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities,
    ...overrides,
  });
  return { worker, connection, channels };
}

/**
 * `WORKER_METRICS_ADDRESS` (`host:port`, e.g. `0.0.0.0:9464`), or undefined when unset: where the worker serves
 * the Temporal SDK's own Prometheus metrics (`/metrics`). A value that is not `host:port` is refused.
 */
export function workerMetricsAddress(env: Env): string | undefined {
  const value = env['WORKER_METRICS_ADDRESS']?.trim();
  if (!value) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535)
    throw new Error(`WORKER_METRICS_ADDRESS: expected host:port such as 0.0.0.0:9464, got "${value}"`);
  return value;
}

/**
 * Installs the SDK's runtime with its Prometheus exporter on {@link workerMetricsAddress} (once per process,
 * before any connection): worker task slots, poll and schedule-to-start latencies, workflow and activity
 * outcomes, Temporal request latencies and failures, named the Prometheus way (`_total` counters, `_seconds`
 * histograms). Returns the address, or undefined (nothing installed: the SDK's default runtime, no metrics).
 */
export function installWorkerMetrics(env: Env): string | undefined {
  const bindAddress = workerMetricsAddress(env);
  if (!bindAddress) return undefined;
  Runtime.install({
    telemetryOptions: {
      metrics: {
        prometheus: {
          bindAddress,
          countersTotalSuffix: true,
          unitSuffix: true,
          useSecondsForDurations: true,
        },
      },
    },
  });
  return bindAddress;
}

async function main(): Promise<void> {
  const settings = loadSettingsOrExit();
  const metricsAddress = installWorkerMetrics(process.env);
  if (metricsAddress) console.log(`worker metrics (Temporal SDK) on http://${metricsAddress}/metrics`);
  const { worker, connection, channels } = await createWorker(settings);
  for (const line of channels) console.log(/^(playbooks|policy):/.test(line) ? line : `channel ${line}`);
  const stop = () => worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(
    `worker polling task queue ${settings.temporal.taskQueue} on ${settings.temporal.address} (namespace ${settings.temporal.namespace})`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
