import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyEnvironment, loadSettings } from '../../src/config.ts';
import { PolicyError, parsePolicy } from '../../src/domain/policy.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { parseDuration } from '../../src/domain/duration.ts';
import { PROCEDURES_SEVERITY_RULES, severityRules } from '../../src/domain/severity-rules.ts';
import { SEVERITIES } from '../../src/domain/severity.ts';
import { renderTemplate } from '../../src/domain/templates.ts';
import { resolveReferences, MissingSecretError } from '../../src/secrets.ts';
import { loadDefaultDocument, loadDefaultPolicy, policyWith } from '../support/policy.ts';

const M = 60_000;
const H = 60 * M;

describe('policy file', () => {
  it('holds the procedures values', () => {
    const p = loadDefaultPolicy();
    expect(p.severities.P0.responseTarget).toBe(15 * 60_000);
    expect(p.severities.P1.responseTarget).toBe(60 * 60_000);
    expect(p.severities.P2).toMatchObject({ responseTarget: 4 * 3_600_000, businessHours: true });
    expect(p.escalation.acknowledgeWithin).toEqual({ P0: 5 * 60_000, P1: 5 * 60_000 });
    expect(p.escalation.progressUpdateWithin).toEqual({ P0: 30 * 60_000, P1: 2 * 3_600_000 });
    expect(p.escalation.rules.P0).toMatchObject({
      autoEscalateAfter: 15 * 60_000,
      commanderRequired: true,
      securityEvaluationRequired: true,
    });
    expect(p.escalation.rules.P1?.autoEscalateAfter).toBe(60 * 60_000);
    expect(p.escalation.rules.P2).toMatchObject({ autoEscalateAfter: 240 * 60_000, businessTime: true });
    expect(p.escalation.rules.P3).toBeUndefined();
    expect(p.severities.P0.notify).toEqual({ role: 'on-call-engineer', channels: ['pager', 'sms', 'phone'] });
    expect(p.severities.P2.notify.channels).toEqual(['slack', 'email']);
    expect(p.severities.P3.notify).toEqual({ role: 'development-team', channels: ['email'] });
    // The secret stays a reference in the snapshot a workflow receives.
    expect(p.channels.slack.botToken).toBe('${SLACK_BOT_TOKEN}');
  });

  it.each([
    [{ severities: { P1: { responseTarget: 'soon' } } }, 'severities.P1.responseTarget'],
    [{ roles: { 'on-call-engineer': ['nobody'] } }, 'roles.on-call-engineer.0'],
    [{ escalation: { matrix: { cto: { contact: ['carrier-pigeon'] } } } }, 'escalation.matrix.cto.contact.0'],
    [{ businessHours: { timezone: 'Mars/Olympus' } }, 'businessHours.timezone'],
    [{ businessHours: { start: '9am' } }, 'businessHours.start'],
    [{ severities: { P0: { posts: ['nowhere'] } } }, 'severities.P0.posts.0'],
    [{ severities: { P2: { resolutionPosts: ['nowhere'] } } }, 'severities.P2.resolutionPosts.0'],
    [{ severities: { P1: { autoResolve: 'sometimes' } } }, 'severities.P1.autoResolve'],
    [
      { severities: { P0: { resolveRequires: { commander: 'yes' } } } },
      'severities.P0.resolveRequires.commander',
    ],
    [{ severities: { P0: { resolveRequires: { lawyer: true } } } }, 'severities.P0.resolveRequires'],
    [{ severities: { P3: { updateReminderEvery: 'weekly' } } }, 'severities.P3.updateReminderEvery'],
    [{ escalation: { updateInterval: { P0: '30m' } } }, 'escalation.updateInterval'],
    [
      { templates: { statusUpdate: 'UPDATE {{ incident_id }}: {{ progress_description }}' } },
      'templates.statusUpdate',
    ],
    [{ unknownKey: 1 }, '(root)'],
  ])('a bad value is an error naming its key (%#)', (patch, key) => {
    try {
      policyWith(patch);
      expect.unreachable('policy accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as PolicyError).issues.map((i) => i.path)).toContain(key);
    }
  });

  it('a missing section names it', () => {
    const { severities: _s, ...rest } = loadDefaultDocument();
    expect(() => parsePolicy(rest, 'x.yaml')).toThrow(/severities/);
  });

  it('durations read like the procedures', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });

  it('templates render every placeholder, marking unknown ones', () => {
    expect(renderTemplate('{{ a }}/{{b}}/{{ c }}', { a: 'x', b: 2 })).toBe('x/2/n/a');
  });

  it('secret references resolve only from the environment, naming a missing variable but never a value', () => {
    expect(resolveReferences('Bearer ${TOKEN}', { TOKEN: 's3cr3t' }, 'x')).toBe('Bearer s3cr3t');
    expect(resolveReferences('${URL:-https://slack.com/api}', {}, 'x')).toBe('https://slack.com/api');
    expect(() => resolveReferences('${TOKEN}', {}, 'channels.slack.botToken')).toThrow(MissingSecretError);
    expect(() => resolveReferences('${TOKEN}', {}, 'channels.slack.botToken')).toThrow(
      /TOKEN.*channels\.slack\.botToken/,
    );
  });
});

/** Each severity's course, as the procedures set it (P0/P1 post-mortem, P2/P3 resolve themselves, P0 needs IC + security). */
const PROCEDURES_RULES = {
  P0: {
    postmortemRequired: true,
    autoResolve: false,
    resolveRequires: { commander: true, securityEvaluation: true },
    updateReminderEvery: 30 * M,
  },
  P1: {
    postmortemRequired: true,
    autoResolve: false,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: 2 * H,
  },
  P2: {
    postmortemRequired: false,
    autoResolve: true,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: 4 * H,
  },
  P3: {
    postmortemRequired: false,
    autoResolve: true,
    resolveRequires: { commander: false, securityEvaluation: false },
    updateReminderEvery: null,
  },
} as const;

/** A policy as a snapshot taken before the severity rules were fields: none of them set. */
function snapshotWithoutSeverityRules(policy: Policy): Policy {
  const severities = Object.fromEntries(
    SEVERITIES.map((s) => {
      const {
        postmortemRequired: _p,
        autoResolve: _a,
        resolveRequires: _r,
        updateReminderEvery: _u,
        resolutionPosts: _rp,
        ...rest
      } = policy.severities[s];
      return [s, rest];
    }),
  ) as Policy['severities'];
  return JSON.parse(JSON.stringify({ ...policy, severities })) as Policy;
}

describe('severity rules', () => {
  it('the policy file states each severity rule with the procedures value', () => {
    const document = loadDefaultDocument() as { severities: Record<string, Record<string, unknown>> };
    const p = loadDefaultPolicy();
    for (const s of SEVERITIES) {
      // Stated in the file, not left to a fallback.
      for (const field of ['postmortemRequired', 'autoResolve', 'resolveRequires', 'updateReminderEvery']) {
        expect(document.severities[s], `${s}.${field}`).toHaveProperty(field);
      }
      expect(severityRules(p, s)).toMatchObject(PROCEDURES_RULES[s]);
    }
    // #pno-engineering ("General engineering updates") hears of every resolution.
    for (const s of SEVERITIES) expect(severityRules(p, s).resolutionPosts).toEqual(['engineering']);
    expect(p.channels.slack.channels['engineering']).toBe('#pno-engineering');
  });

  it('a snapshot from before the rules were fields gets the procedures values (and no resolution posts)', () => {
    const old = snapshotWithoutSeverityRules(loadDefaultPolicy());
    expect(old.severities.P0).not.toHaveProperty('autoResolve');
    for (const s of SEVERITIES) {
      expect(severityRules(old, s)).toEqual({ ...PROCEDURES_RULES[s], resolutionPosts: [] });
      expect(PROCEDURES_SEVERITY_RULES[s]).toMatchObject(PROCEDURES_RULES[s]);
    }
  });

  it('each rule is the policy’s to change', () => {
    const p = policyWith({
      severities: {
        P1: { autoResolve: true, postmortemRequired: false, resolveRequires: { commander: true } },
        P3: { updateReminderEvery: '1d' },
      },
    });
    expect(severityRules(p, 'P1')).toMatchObject({
      autoResolve: true,
      postmortemRequired: false,
      resolveRequires: { commander: true, securityEvaluation: false },
    });
    expect(severityRules(p, 'P3').updateReminderEvery).toBe(24 * H);
  });
});

describe('the procedures survive loading', () => {
  // The procedures as shared/ has them (CI has a read-only copy beside the repository), else the copy kept
  // with the tests.
  const SHARED_SPEC = fileURLToPath(
    new URL('../../../shared/spec/incident-response-procedures.md', import.meta.url),
  );
  const SPEC = existsSync(SHARED_SPEC)
    ? SHARED_SPEC
    : fileURLToPath(new URL('../fixtures/incident-response-procedures.md', import.meta.url));

  it('impact lists hold the procedures items (a comma in a YAML flow list once split them)', () => {
    expect(loadDefaultPolicy().impacts).toEqual({
      critical: [
        'Service completely unavailable',
        'Data loss or corruption',
        'Security breach',
        'Revenue impact > $10,000/hour',
      ],
      high: [
        'Significant user experience degradation',
        'Partial service unavailability',
        'SLA violations',
        'Revenue impact $1,000-$10,000/hour',
      ],
      medium: ['Minor user experience issues', 'Internal tool problems', 'Revenue impact < $1,000/hour'],
      low: ['Cosmetic issues', 'No revenue impact', 'No user experience impact'],
    });
  });

  it('every definition, example and impact is a line of the procedures, verbatim', () => {
    const lines = new Set(
      readFileSync(SPEC, 'utf8')
        .split('\n')
        .map((line) => line.trim()),
    );
    const p = loadDefaultPolicy();
    const missing: string[] = [];
    for (const s of SEVERITIES) {
      const { name, definition, examples } = p.severities[s];
      if (![...lines].some((line) => line.startsWith(`#### ${s} - ${name} (`)))
        missing.push(`${s} name ${name}`);
      if (!lines.has(`**Definition**: ${definition}`)) missing.push(`${s} definition: ${definition}`);
      for (const example of examples)
        if (!lines.has(`- ${example}`)) missing.push(`${s} example: ${example}`);
    }
    for (const [impact, items] of Object.entries(p.impacts)) {
      for (const item of items ?? []) if (!lines.has(`- ${item}`)) missing.push(`${impact} impact: ${item}`);
    }
    expect(missing).toEqual([]);
    expect(Object.values(p.impacts).flat()).toHaveLength(14);
  });
});

describe('environment overrides', () => {
  it('TEMPORAL_UI_URL sets the web UI that incident links point at', () => {
    const p = loadDefaultPolicy();
    expect(applyEnvironment(p, {}).links.webUi).toBe('http://127.0.0.1:8233');
    expect(applyEnvironment(p, { TEMPORAL_UI_URL: 'https://temporal.example.com/' }).links.webUi).toBe(
      'https://temporal.example.com/',
    );
    expect(loadSettings({ TEMPORAL_UI_URL: 'https://ui.example.com' }).policy.links.webUi).toBe(
      'https://ui.example.com',
    );
    expect(() => applyEnvironment(p, { TEMPORAL_UI_URL: 'not a url' })).toThrow(/TEMPORAL_UI_URL/);
  });
});
