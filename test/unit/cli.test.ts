import { describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../src/starter/cli.ts';
import { freePort } from '../../scripts/lib/tools.ts';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1', ...env },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('incident CLI', () => {
  it('simulate --severity P0 --no-ack --json prints the escalation timeline', async () => {
    const { code, out } = await cli([
      'simulate',
      '--severity',
      'P0',
      '--no-ack',
      '--json',
      '--at',
      '2026-11-26T10:00:00Z',
    ]);
    expect(code).toBe(EXIT.ok);
    const result = JSON.parse(out) as {
      severity: string;
      steps: {
        afterSeconds: number;
        person: string | null;
        reason: string;
        channels: string[];
        role: string | null;
        level: number;
      }[];
    };
    expect(result.severity).toBe('P0');
    const people = result.steps
      .filter((s) => s.person !== null)
      .map((s) => [s.afterSeconds, s.person, s.role, s.reason, s.channels.join('+')]);
    expect(people).toEqual([
      [0, 'alice', 'on-call-engineer', 'initial', 'pager+sms+phone'],
      [300, 'bob', 'engineering-lead', 'ack_timeout', 'pager+sms'],
      [300, 'carol', 'incident-commander', 'ack_timeout', 'pager+phone'],
      [300, 'dave', 'security-team', 'ack_timeout', 'pager+sms'],
      [3600, 'erin', 'vp-engineering', 'matrix', 'phone+email'],
      [7200, 'frank', 'cto', 'matrix', 'phone+email'],
    ]);
    const levelUps = result.steps.filter((s) => s.person === null).map((s) => [s.afterSeconds, s.reason]);
    expect(levelUps.slice(0, 2)).toEqual([
      [900, 'time_based'],
      [1800, 'no_progress'],
    ]);
    const times = result.steps.map((s) => s.afterSeconds);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('simulate with acknowledgment has no ack_timeout', async () => {
    const { out } = await cli(['simulate', '--severity', 'P1', '--json', '--at', '2026-11-26T10:00:00Z']);
    const steps = (JSON.parse(out) as { steps: { reason: string }[] }).steps;
    expect(steps.some((s) => s.reason === 'ack_timeout')).toBe(false);
  });

  it('usage errors exit 2 with one line and a JSON error', async () => {
    const bad = await cli(['simulate', '--severity', 'P9', '--json']);
    expect(bad.code).toBe(EXIT.usage);
    expect(JSON.parse(bad.out)).toMatchObject({ error: { code: 'USAGE' } });
    expect((await cli(['frobnicate', 'x'])).code).toBe(EXIT.usage);
    expect((await cli(['ack'])).code).toBe(EXIT.usage);
    expect((await cli(['ack', 'INC-00000000'])).err).toMatch(/--by/);
  });

  it('exits 3 with a one-line error when Temporal is unreachable', async () => {
    const port = await freePort();
    const { code, err, out } = await cli(['show', 'INC-deadbeef', '--json'], {
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    });
    expect(code).toBe(EXIT.unreachable);
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toContain(`127.0.0.1:${port}`);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });
  });

  it('a bad policy file exits non-zero naming the key', async () => {
    const { code, err } = await cli(['list'], { INCIDENT_CONFIG: '/nonexistent/policy.yaml' });
    expect(code).toBe(EXIT.usage);
    expect(err).toContain('/nonexistent/policy.yaml');
  });
});
