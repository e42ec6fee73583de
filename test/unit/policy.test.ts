import { describe, expect, it } from 'vitest';
import { PolicyError, parsePolicy } from '../../src/domain/policy.ts';
import { parseDuration } from '../../src/domain/duration.ts';
import { renderTemplate } from '../../src/domain/templates.ts';
import { resolveReferences, MissingSecretError } from '../../src/activities/secrets.ts';
import { loadDefaultDocument, loadDefaultPolicy, policyWith } from '../support/policy.ts';

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
