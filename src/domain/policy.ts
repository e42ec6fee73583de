import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { parseJsonPath } from './json-path.ts';
import { templatePlaceholders, templateProblem } from './templates.ts';
import { CHANNELS, IMPACTS, ROLES, SEVERITIES } from './severity.ts';
import { literalSecrets } from './literal-secrets.ts';
import { DEFAULT_PERMISSIONS, PERMISSIONS } from './permissions.ts';
import type { Permission } from './permissions.ts';
import type { Impact, Role, Severity } from './severity.ts';
import { APPROVABLE_STEPS, playbookDefaults } from './playbook-settings.ts';

/** Workflow code imports these from playbook-settings.ts (zod-free); kept here for everything else. */

/**
 * The policy file's schema. The policy holds every value of the procedures
 * (severities, timings, routing, matrix, templates); a team edits it instead
 * of the code. Parsed policies are plain JSON, so the incident workflow gets a
 * snapshot as input and a running escalation never changes when the file does
 * (Grafana OnCall's lesson). Secrets stay `${VAR}` references in the snapshot.
 */

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as "5m", "2h" or "1d", got "${text}"`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A matrix deadline: a duration after the incident opened, or the next business day's start. */
const deadline = z.union([
  z.literal('next-business-day').transform(() => ({ kind: 'next-business-day' as const })),
  duration.transform((ms) => ({ kind: 'after' as const, ms })),
]);
export type Deadline = z.output<typeof deadline>;

/** The playbooks' defaults: the procedures' values (playbook-settings.ts holds them, zod-free, for the workflows). */
const pd = playbookDefaults();

/**
 * The remediation playbooks' parameters and safety limits: every threshold and wait of the procedures'
 * "Resolution Playbooks", with their values as defaults. Queries are PromQL as the procedures write them.
 */
const playbooksPolicy = z
  .strictObject({
    /** The kill switch: false stops every automatic action (no playbook starts; engineers cannot run one). */
    enabled: z.boolean().default(pd.enabled),
    /** Record the plan and touch nothing. Also what happens when the worker has no cluster to talk to. */
    dryRun: z.boolean().default(pd.dryRun),
    /** No playbook scales the Deployment above this. */
    maxReplicas: z.number().int().positive().default(pd.maxReplicas),
    /** Between two runs of one playbook that act on one Deployment (recorded on the Deployment). */
    cooldown: duration.default(pd.cooldown),
    /** How long a step waits for `incident approve`; nobody answering escalates. */
    approvalTimeout: duration.default(pd.approvalTimeout),
    requireApproval: z.array(z.enum(APPROVABLE_STEPS)).default(pd.requireApproval),
    /** What "enable the circuit breaker" patches: a ConfigMap key, or an annotation on the Deployment. */
    circuitBreaker: z
      .union([
        z.strictObject({ configMap: z.string().min(1), key: z.string().min(1), value: z.string() }),
        z.strictObject({ annotation: z.string().min(1), value: z.string() }),
      ])
      .default(pd.circuitBreaker),
    /** Attempts of a step that fails with a 5xx or a timeout before the playbook gives up (`failed`). */
    attempts: z.number().int().min(1).max(20).default(pd.attempts),
    /** How often a bounded wait (pods Ready, rollout complete) looks again. */
    pollEvery: duration.default(pd.pollEvery),
    serviceOutage: z
      .strictObject({
        readyTimeout: duration.default(pd.serviceOutage.readyTimeout),
        settle: duration.default(pd.serviceOutage.settle),
      })
      .prefault({}),
    highErrorRate: z
      .strictObject({
        errorRateQuery: z.string().default(pd.highErrorRate.errorRateQuery),
        errorPatternsQuery: z.string().default(pd.highErrorRate.errorPatternsQuery),
        falseAlarmBelow: z.number().min(0).max(1).default(pd.highErrorRate.falseAlarmBelow),
        emergencyAbove: z.number().min(0).max(1).default(pd.highErrorRate.emergencyAbove),
        stillHighAbove: z.number().min(0).max(1).default(pd.highErrorRate.stillHighAbove),
        recoveredBelow: z.number().min(0).max(1).default(pd.highErrorRate.recoveredBelow),
        /** CPU or memory above this share of the pods' requests is pressure: scale up by `scaleStep`. */
        pressureAbove: z.number().min(0).default(pd.highErrorRate.pressureAbove),
        usageWindow: z.string().default(pd.highErrorRate.usageWindow),
        scaleStep: z.number().int().positive().default(pd.highErrorRate.scaleStep),
        /** The standard mitigation's gradual scale-up. */
        gradualStep: z.number().int().positive().default(pd.highErrorRate.gradualStep),
        standardWait: duration.default(pd.highErrorRate.standardWait),
        rollbackIfYoungerThan: duration.default(pd.highErrorRate.rollbackIfYoungerThan),
        monitorEvery: duration.default(pd.highErrorRate.monitorEvery),
        monitorFor: duration.default(pd.highErrorRate.monitorFor),
      })
      .prefault({}),
    performanceDegradation: z
      .strictObject({
        /** p95 in milliseconds; with no data, a probe of the health URL measures instead. */
        latencyQuery: z.string().default(pd.performanceDegradation.latencyQuery),
        slaMs: z.number().positive().default(pd.performanceDegradation.slaMs),
        cpuMillicores: z.number().positive().default(pd.performanceDegradation.cpuMillicores),
        memoryMi: z.number().positive().default(pd.performanceDegradation.memoryMi),
        usageWindow: z.string().default(pd.performanceDegradation.usageWindow),
        minReplicas: z.number().int().positive().default(pd.performanceDegradation.minReplicas),
        rolloutTimeout: duration.default(pd.performanceDegradation.rolloutTimeout),
        remeasureAfter: duration.default(pd.performanceDegradation.remeasureAfter),
        improvedBy: z.number().min(0).max(1).default(pd.performanceDegradation.improvedBy),
        monitorEvery: duration.default(pd.performanceDegradation.monitorEvery),
        monitorFor: duration.default(pd.performanceDegradation.monitorFor),
      })
      .prefault({}),
  })
  .prefault({});
export type PlaybooksPolicy = z.output<typeof playbooksPolicy>;

const severity = z.enum(SEVERITIES);
const role = z.enum(ROLES);
const channel = z.enum(CHANNELS);
const handle = z
  .string()
  .regex(/^[a-z][a-z0-9._-]*$/, 'a handle is lower-case letters, digits, ".", "_" or "-"');
const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as INCIDENT_TOKEN_ALICE');
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day as HH:MM');
const jsonPath = z.string().refine((path) => parseJsonPath(path) !== undefined, {
  message: "a path such as $.alert.name, $.items[0].id or $['odd key']",
});

function perSeverity<T extends z.ZodType>(value: T) {
  return z.partialRecord(severity, value);
}

const severityPolicy = z.strictObject({
  name: z.string(),
  definition: z.string(),
  examples: z.array(z.string()).default([]),
  /** Time to first response the procedures promise. */
  responseTarget: duration,
  /** Whether `responseTarget` counts business time only (P2: 4 business hours, P3: 2 business days). */
  businessHours: z.boolean(),
  responseTeam: z.array(role),
  /** Level 0: who is notified at once, and how. */
  notify: z.strictObject({ role, channels: z.array(channel).min(1) }),
  /** Slack channels (keys of `channels.slack.channels`) that get the incident posts. */
  posts: z.array(z.string()).default([]),
  /*
   * The severity's rules below are optional on purpose: a policy snapshot that
   * a running incident received before a rule became a field has no value for
   * it, and `severityRules()` (severity-rules.ts) gives a missing one the
   * procedures' value. A zod default would only apply to a parsed file.
   */
  /** Slack channels that get only the resolution notice (#pno-engineering: "General engineering updates"). */
  resolutionPosts: z.array(z.string()).optional(),
  /** Resolving it needs a post-mortem (P0/P1). */
  postmortemRequired: z.boolean().optional(),
  /** Once mitigated, it resolves itself after `resolution.autoResolveAfter` without firing alerts (P2/P3). */
  autoResolve: z.boolean().optional(),
  /** What must be on record before an engineer may resolve it (P0: a commander and a security evaluation). */
  resolveRequires: z
    .strictObject({
      commander: z.boolean().default(false),
      securityEvaluation: z.boolean().default(false),
    })
    .optional(),
  /** How often a status update is due ("Next Update"); a reminder is posted when one is late. `never`: none. */
  updateReminderEvery: z.union([z.literal('never').transform(() => null), duration]).optional(),
});

const escalationRule = z.strictObject({
  autoEscalateAfter: duration,
  /** Count `autoEscalateAfter` in business time (P2's 240 minutes). */
  businessTime: z.boolean().default(false),
  commanderRequired: z.boolean().default(false),
  securityEvaluationRequired: z.boolean().default(false),
});

const matrixRow = z.strictObject({
  contact: z.array(channel).min(1),
  /** Engaged only when the incident is security-related. */
  securityOnly: z.boolean().default(false),
  /** Engaged only while the incident is still unresolved at the deadline ("2hr (if ongoing)"). */
  deadlines: perSeverity(deadline).default({}),
});

const person = z.strictObject({
  name: z.string(),
  email: z.email().optional(),
  phone: z.string().optional(),
  slack: z.string().optional(),
  /** PagerDuty user id (`P…`): who acknowledged when a PagerDuty webhook says so. */
  pagerduty: z.string().optional(),
  roles: z.array(role).default([]),
  /** Environment variable holding this person's API bearer token. */
  tokenEnv: envName.optional(),
});

/** Who may: `anyone` (every person of the policy), or the roles that may. */
const roleRule = z.union([
  z.literal('anyone'),
  z.array(role).min(1, 'list at least one role, or write anyone'),
]);
/** One rule for every severity, or one per severity of the incident (a severity left out: anyone). */
const permissionRule = z.union([roleRule, perSeverity(roleRule)]);

/**
 * Which roles may do what to an incident (src/domain/permissions.ts says why each default is what the
 * procedures imply). A person holds the roles they list, those whose `roles:` entry lists them, and
 * `incident-commander` on the incident they command.
 */
const permissionsPolicy = z
  .strictObject(
    Object.fromEntries(
      PERMISSIONS.map((name) => [name, permissionRule.default(DEFAULT_PERMISSIONS[name] as never)]),
    ) as { [P in Permission]: z.ZodDefault<typeof permissionRule> },
  )
  .prefault({});

const slackChannel = z.string().regex(/^[#@]?[a-z0-9._-]+$/i, 'a Slack channel name such as #pno-incidents');

export const policySchema = z
  .strictObject({
    service: z.strictObject({
      id: z.string().min(1),
      name: z.string().min(1),
      namespace: z.string().default('production'),
      selector: z.string().default(''),
      prometheusJob: z.string().default(''),
      /** The objects the playbooks act on, in `namespace` (the procedures' kubectl lines). */
      deployment: z.string().default('pno-physics-bench'),
      serviceName: z.string().default('pno-service'),
      ingress: z.string().default('pno-ingress'),
      hpa: z.string().default('pno-hpa'),
      /** The service's health URL (`curl -f`); `SERVICE_HEALTH_URL` overrides it. */
      healthUrl: z.string().default(''),
      /** Health URLs of external dependencies, probed by the high-error-rate playbook. */
      dependencies: z.array(z.url()).default([]),
    }),
    links: z
      .strictObject({
        /** Base URL of the Temporal web UI, for "how to act" links; `TEMPORAL_UI_URL` overrides it. */
        webUi: z.string().default('http://127.0.0.1:8233'),
        statusPage: z.string().default(''),
        postmortemBase: z.string().default(''),
      })
      .prefault({}),
    severities: z.strictObject({
      P0: severityPolicy,
      P1: severityPolicy,
      P2: severityPolicy,
      P3: severityPolicy,
    }),
    impacts: z.partialRecord(z.enum(IMPACTS), z.array(z.string())).default({}),
    escalation: z.strictObject({
      acknowledgeWithin: perSeverity(duration),
      progressUpdateWithin: perSeverity(duration),
      /** The decision script's `escalation_rules`. */
      rules: perSeverity(escalationRule),
      /** The decision script's `get_escalation_targets`. */
      targets: z.strictObject({
        always: z.array(role),
        whenCommanderRequired: z.array(role),
        whenSecurityEvaluationRequired: z.array(role),
        whenImpactCritical: z.array(role),
      }),
      matrix: z.partialRecord(role, matrixRow),
      /** Moved to `severities.<P>.updateReminderEvery`; accepted only to say so. */
      updateInterval: z.unknown().optional(),
    }),
    /** Who fills each role until on-call rotations exist: handles into `people`. */
    roles: z.partialRecord(role, z.array(handle)),
    people: z.record(handle, person),
    businessHours: z.strictObject({
      timezone: z.string().refine((tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'an IANA time zone such as Europe/Berlin'),
      days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).min(1),
      start: clock,
      end: clock,
      holidays: z.array(z.iso.date()).default([]),
    }),
    /**
     * Where each channel is delivered. Every endpoint and credential is a `${VAR}` reference resolved by
     * the worker's activities; a channel whose reference resolves to nothing has no transport (its messages
     * fail with `not_configured`, or go to the local outbox when `INCIDENT_OUTBOX` is set).
     */
    channels: z.strictObject({
      slack: z.strictObject({
        /** Slack Web API base; `${SLACK_API_URL}` lets tests point it at a local server. */
        apiUrl: z.string().default('https://slack.com/api'),
        botToken: z.string(),
        /** Incoming-webhook URL, used for channel posts when there is no bot token. */
        webhookUrl: z.string().default('${SLACK_WEBHOOK_URL:-}'),
        /**
         * `thread`: one thread per incident in each channel it posts to. `channel`: P0/P1 incidents also get a
         * channel of their own (`#inc-<id>-<slug>`), responders invited as they are paged.
         */
        mode: z.enum(['thread', 'channel']).default('thread'),
        /** Severities that get their own channel in `channel` mode. */
        channelFor: z.array(severity).default(['P0', 'P1']),
        channels: z.record(z.string(), slackChannel),
      }),
      email: z
        .strictObject({
          smtpUrl: z.string().default('${SMTP_URL:-}'),
          from: z.string().default('PNO Incident Response <incidents@localhost>'),
          /** Mailing lists per role: a role's notifications also go to its list. */
          lists: z.partialRecord(role, z.email()).default({}),
        })
        .prefault({}),
      pagerduty: z
        .strictObject({
          eventsUrl: z.string().default('${PAGERDUTY_EVENTS_URL:-https://events.pagerduty.com/v2/enqueue}'),
          /** The integration key of roles without their own. */
          routingKey: z.string().default('${PAGERDUTY_ROUTING_KEY:-}'),
          /** A routing key per role (`${VAR}` references), e.g. the security team's own service. */
          routingKeys: z.partialRecord(role, z.string()).default({}),
        })
        .prefault({}),
      twilio: z
        .strictObject({
          apiUrl: z.string().default('${TWILIO_API_URL:-https://api.twilio.com}'),
          accountSid: z.string().default('${TWILIO_ACCOUNT_SID:-}'),
          authToken: z.string().default('${TWILIO_AUTH_TOKEN:-}'),
          from: z.string().default('${TWILIO_FROM:-}'),
        })
        .prefault({}),
      webhook: z
        .strictObject({
          /**
           * Receives a signed JSON event `{type, incident, at}` for every step of every incident; empty: no
           * generic webhook (incidents send no events). Usually a reference such as `${INCIDENT_WEBHOOK_URL}`.
           */
          url: z.string().default(''),
          secret: z.string().default('${WEBHOOK_SECRET:-}'),
        })
        .prefault({}),
      /**
       * When a channel cannot deliver (not configured, or refused for good), the next one to try for that
       * person; tried once, and never a channel the notification already used.
       */
      fallback: z.partialRecord(channel, channel).default({
        pager: 'sms',
        sms: 'phone',
        phone: 'sms',
        slack: 'email',
        email: 'slack',
      }),
    }),
    templates: z.strictObject({
      initialReport: z.string(),
      statusUpdate: z.string(),
      resolutionNotice: z.string(),
    }),
    webhook: z
      .strictObject({
        token: z.string().default('${ALERTMANAGER_WEBHOOK_TOKEN}'),
        /** Optional HTTP basic auth, as Alertmanager's `http_config.basic_auth` sends it (either scheme is accepted). */
        basicAuth: z.strictObject({ username: z.string().min(1), password: z.string().min(1) }).optional(),
        /**
         * Alerts an incident records per delivery (Alertmanager's `max_alerts` should be at most this); the
         * rest are counted (`truncatedAlerts`), the most severe kept, and the severity read from all of them.
         */
        maxAlertsPerGroup: z.number().int().positive().default(1_000),
        /**
         * What one alert may weigh as sent (labels, annotations, URLs: a Kubernetes alert is about 1.2 KiB);
         * an alert stores at most this much of its labels and annotations, the longest cut first.
         */
        maxAlertBytes: z.number().int().min(1_024).default(16_384),
        /**
         * The alert webhooks' body limit. Default: (maxAlertsPerGroup + 4) × maxAlertBytes (15.7 MiB), so a
         * group within those limits is never a 413; a smaller value is refused here.
         */
        maxBodyBytes: z.number().int().positive().optional(),
        /**
         * Backpressure (src/starter/api/backpressure.ts): past either bound the alert webhooks answer 503 with
         * `Retry-After: retryAfterSeconds` (Alertmanager retries a 5xx) before any Temporal call, so a refused
         * delivery starts nothing. `maxInFlight`: this API's signal-with-starts not yet answered by Temporal.
         * `maxQueueBacklog`: workflow tasks waiting on the incidents task queue as Temporal reports it
         * (DescribeTaskQueue's approximate backlog, asked at most every `queueBacklogPollSeconds`, never per
         * request); 0 does not ask.
         */
        backpressure: z
          .strictObject({
            maxInFlight: z.number().int().positive().default(128),
            maxQueueBacklog: z.number().int().min(0).default(1_000),
            queueBacklogPollSeconds: z.number().min(1).max(60).default(5),
            retryAfterSeconds: z.number().int().min(1).max(300).default(5),
          })
          .prefault({}),
      })
      .superRefine((webhook, ctx) => {
        const needed = (webhook.maxAlertsPerGroup + 4) * webhook.maxAlertBytes;
        if (webhook.maxBodyBytes !== undefined && webhook.maxBodyBytes < needed)
          ctx.addIssue({
            code: 'custom',
            path: ['maxBodyBytes'],
            message: `must be at least (maxAlertsPerGroup + 4) × maxAlertBytes = ${needed}, or be left out (then it is that), so that no group within the limits is refused`,
          });
      })
      .prefault({}),
    alerts: z
      .strictObject({
        /** A `priority` label P0..P3 wins; else the `severity` label through this table. */
        severityLabel: z.record(z.string(), severity).default({
          page: 'P0',
          emergency: 'P0',
          critical: 'P1',
          warning: 'P2',
          high: 'P2',
          info: 'P3',
          low: 'P3',
        }),
        defaultSeverity: severity.default('P2'),
        serviceLabels: z.array(z.string()).default(['service', 'app', 'job']),
        /**
         * Flap damping: a flapping alert (firing, resolved, firing…) takes its incident through mitigated and
         * back each time; the channels hear of each state at most once per this interval (the timeline keeps
         * every change). `0s` turns damping off.
         */
        flapDamping: duration.default(10 * 60_000),
        /**
         * Mapping rules, first match wins. `match` values are exact label values, or
         * regular expressions written `~regex` (anchored). Each field set here
         * overrides the defaults; a `priority` label still wins for severity.
         */
        rules: z
          .array(
            z.strictObject({
              name: z.string().min(1),
              match: z
                .record(z.string(), z.string())
                .refine((m) => Object.keys(m).length > 0, 'match at least one label'),
              severity: severity.optional(),
              service: z.string().optional(),
              impact: z.enum(IMPACTS).optional(),
              securityRelated: z.boolean().optional(),
              playbook: z.enum(['serviceOutage', 'highErrorRate', 'performanceDegradation']).optional(),
              /** Templates over the alert: `{{ alertname }}`, `{{ service }}`, any label name, `{{ summary }}`. */
              title: z.string().optional(),
              summary: z.string().optional(),
            }),
          )
          .default([]),
      })
      .prefault({}),
    /** Alert sources beside Alertmanager and Grafana, mapped into alerts by the same rules. */
    sources: z
      .strictObject({
        /**
         * `POST /webhooks/generic`: any JSON body. Each field is a path into it (`$.alert.name`,
         * `$.items[0].id`, `$['odd key']`); the alert gets labels `alertname` (the title), `severity`,
         * `service`, so `alerts.rules` and the severity table apply as to any alert.
         */
        generic: z
          .strictObject({
            /** With the dedup key, what the incident's workflow id derives from. */
            receiver: z.string().min(1).default('generic'),
            fields: z
              .strictObject({
                title: jsonPath.default('$.title'),
                severity: jsonPath.default('$.severity'),
                service: jsonPath.default('$.service'),
                /** Same key → same incident (redelivery, repeats); absent → the title. */
                dedupKey: jsonPath.default('$.dedup_key'),
                status: jsonPath.default('$.status'),
                summary: jsonPath.default('$.summary'),
              })
              .prefault({}),
            /** Values of `status` (case-insensitive) that mean the problem is over; anything else is firing. */
            resolvedValues: z.array(z.string()).default(['resolved', 'ok', 'closed', 'recovered']),
          })
          .prefault({}),
      })
      .prefault({}),
    /** The public status page (`/status`): components and the services whose incidents affect each. */
    statusPage: z
      .strictObject({
        components: z
          .array(z.strictObject({ name: z.string().min(1), services: z.array(z.string().min(1)).min(1) }))
          .default([]),
        /**
         * Severities whose incidents show without an engineer's public update (as "Investigating" and their
         * title). Default none: an incident shows once an engineer posts a public update. Security-related
         * incidents never show.
         */
        publicSeverities: z.array(severity).default([]),
        /**
         * Serve the status page on its own listener at this port (`STATUS_PORT` overrides it); the main
         * listener then no longer serves it. Unset: the main listener serves it.
         */
        port: z.number().int().min(0).max(65_535).optional(),
      })
      .prefault({}),
    playbooks: playbooksPolicy,
    permissions: permissionsPolicy,
    resolution: z
      .strictObject({
        /** P2/P3 resolve themselves after their alerts stay clear this long. */
        autoResolveAfter: duration.default(30 * 60_000),
      })
      .prefault({}),
    /**
     * The alerting pipeline's dead-man's switch (src/workflows/watchdog.ts): alerts named `alertname` (Prometheus'
     * always-firing `Watchdog`, routed to the webhook) open no incident but keep the receiver's watchdog alive;
     * when none arrives for `timeout`, it opens an incident of `severity` ("Alerting pipeline silent").
     */
    watchdog: z
      .strictObject({
        alertname: z.string().trim().min(1).default('Watchdog'),
        /** Longer than Alertmanager's `group_interval` + `repeat_interval` for the Watchdog route. */
        timeout: duration
          .refine(
            (ms) => ms >= 60_000,
            'at least 1m (Alertmanager repeats the Watchdog at most once a minute)',
          )
          .default(10 * 60_000),
        severity: severity.default('P1'),
      })
      .prefault({}),
    /**
     * Planned maintenance: incidents of `service` (`*`: every service) that open in `[from, to)` are
     * recorded and escalate as usual but page nobody. Ids `policy-<index>` (src/domain/maintenance.ts);
     * operators add their own with `incident maintenance add`.
     */
    maintenance: z
      .array(
        z
          .strictObject({
            service: z.string().trim().min(1, 'a service id, or * for every service'),
            from: z.iso.datetime({ offset: true }),
            to: z.iso.datetime({ offset: true }),
            reason: z.string().trim().min(1, 'must not be blank'),
          })
          .refine((w) => Date.parse(w.to) > Date.parse(w.from), {
            path: ['to'],
            message: 'the window must end after it starts',
          }),
      )
      .default([]),
  })
  .superRefine((policy, ctx) => {
    policy.alerts.rules.forEach((rule, i) => {
      for (const field of ['title', 'summary'] as const) {
        const problem = rule[field] === undefined ? undefined : templateProblem(rule[field]);
        if (problem) {
          ctx.addIssue({
            code: 'custom',
            path: ['alerts', 'rules', i, field],
            message: `not a Mustache template: ${problem}`,
          });
        }
      }
      for (const [label, pattern] of Object.entries(rule.match)) {
        if (!pattern.startsWith('~')) continue;
        try {
          new RegExp(`^(?:${pattern.slice(1)})$`);
        } catch {
          ctx.addIssue({
            code: 'custom',
            path: ['alerts', 'rules', i, 'match', label],
            message: 'not a valid regular expression',
          });
        }
      }
    });
    for (const [roleName, handles] of Object.entries(policy.roles)) {
      handles?.forEach((h, i) => {
        if (!Object.hasOwn(policy.people, h)) {
          ctx.addIssue({
            code: 'custom',
            path: ['roles', roleName, i],
            message: `"${h}" is not a key of people`,
          });
        }
      });
    }
    for (const s of SEVERITIES) {
      for (const field of ['posts', 'resolutionPosts'] as const) {
        policy.severities[s][field]?.forEach((key, i) => {
          if (!Object.hasOwn(policy.channels.slack.channels, key)) {
            ctx.addIssue({
              code: 'custom',
              path: ['severities', s, field, i],
              message: `"${key}" is not a key of channels.slack.channels`,
            });
          }
        });
      }
    }
    if (policy.escalation.updateInterval !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['escalation', 'updateInterval'],
        message: 'moved: set severities.<P0..P3>.updateReminderEvery instead (a duration, or never)',
      });
    }
    // Secrets are `${VAR}` references: the policy is every incident's workflow input (and so its history).
    for (const { path, message } of literalSecrets(policy)) ctx.addIssue({ code: 'custom', path, message });
    // Every post names the incident and says how to act on it (DESIGN, "Escalation semantics").
    for (const [name, template] of Object.entries(policy.templates)) {
      const problem = templateProblem(template);
      if (problem) {
        ctx.addIssue({
          code: 'custom',
          path: ['templates', name],
          message: `not a Mustache template: ${problem}`,
        });
        continue;
      }
      const used = new Set(templatePlaceholders(template));
      for (const needed of REQUIRED_PLACEHOLDERS) {
        if (!used.has(needed)) {
          ctx.addIssue({
            code: 'custom',
            path: ['templates', name],
            message: `must use the placeholder {{ ${needed} }} (every post names the incident and says how to act)`,
          });
        }
      }
    }
  });

/** Placeholders every message template must use. */
export const REQUIRED_PLACEHOLDERS = ['incident_id', 'title', 'how_to_act'] as const;

export type Policy = z.output<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;
export type SeverityPolicy = Policy['severities'][Severity];
export type Person = Policy['people'][string];
export type { Impact, Role, Severity };

/** A policy error that names the key that is wrong and what was expected. */
export class PolicyError extends Error {
  readonly issues: readonly { path: string; message: string }[];
  constructor(source: string, issues: readonly { path: string; message: string }[]) {
    super(`invalid policy ${source}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'PolicyError';
    this.issues = issues;
  }
}

/** Validates a parsed YAML/JSON document; throws {@link PolicyError} naming each bad key. */
export function parsePolicy(document: unknown, source = '(inline)'): Policy {
  const result = policySchema.safeParse(document);
  if (result.success) return result.data;
  throw new PolicyError(
    source,
    result.error.issues.map((issue) => ({
      path: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
      message: issue.message,
    })),
  );
}
