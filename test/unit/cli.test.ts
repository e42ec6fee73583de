import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXIT, runCli } from '../../src/starter/cli/index.ts';
import type { CliIo } from '../../src/starter/cli/index.ts';
import { OPERATION_LIST, operationInputs } from '../../src/contract/operations.ts';
import type { OperationName, OperationSpec } from '../../src/contract/operations.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentRefusedError } from '../../src/starter/client/errors.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { FakeGateway } from '../support/fake-gateway.ts';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, inject: Partial<CliIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1', ...env },
    ...inject,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A `connect` that counts the CLI's attempts to reach Temporal and fails as an unreachable server does. */
function connectSpy() {
  const spy = {
    calls: 0,
    connect: () => {
      spy.calls += 1;
      return Promise.reject(new Error('Failed to connect: connection refused'));
    },
  };
  return spy;
}

/** Runs the CLI against an in-memory gateway that records what it was asked. */
async function cliOnFake(args: string[], env: NodeJS.ProcessEnv = {}, gateway = new FakeGateway()) {
  const result = await cli(args, env, { gateway: () => gateway });
  return { ...result, gateway };
}

const ID = 'INC-0000abcd';
/** Each command as typed: `ack`, `playbook run`. */
const COMMANDS = ['list', 'show', 'declare', 'simulate', ...OPERATION_LIST.map((op) => op.command.join(' '))];

/** The flag of an option (`--message`) or the name of an argument (`person`), as help prints them. */
function cliName(field: { option?: string; argument?: string }): string {
  return field.option?.split(' ')[0] ?? field.argument?.replace(/[<>[\]]/g, '') ?? '';
}

/**
 * A valid value for an operation's field, as typed and as sent: an enum's first choice typed in lower
 * case (the CLI takes any case, `severity <id> p1`), any other field some text.
 */
function sampleValue(op: OperationSpec<OperationName>, field: string): { typed: string; sent: string } {
  let type = (operationInputs()[op.name].shape as Record<string, z.ZodType | undefined>)[field];
  while (type instanceof z.ZodOptional || type instanceof z.ZodDefault) type = type.unwrap() as z.ZodType;
  if (type instanceof z.ZodEnum) {
    const first = String(type.options[0]);
    return { typed: first.toLowerCase(), sent: first };
  }
  return { typed: `${field} text`, sent: `${field} text` };
}

/** The command line of `op` with every field given (repeatable ones twice), and the argument it should send. */
function fullInvocation(op: OperationSpec<OperationName>): {
  args: string[];
  argument: Record<string, unknown>;
} {
  const args = [...op.command, ID];
  const argument: Record<string, unknown> = { by: 'alice' };
  for (const field of op.cli) {
    const { typed, sent } = sampleValue(op, field.field);
    if (field.argument) {
      args.push(typed);
      argument[field.field] = sent;
    } else if (field.option && !field.option.includes('<')) {
      args.push(cliName(field));
      argument[field.field] = !field.inverts;
    } else if (field.option && field.repeatable) {
      args.push(cliName(field), `${typed} 1`, cliName(field), `${typed} 2`);
      argument[field.field] = [`${sent} 1`, `${sent} 2`];
    } else if (field.option) {
      args.push(cliName(field), typed);
      argument[field.field] = sent;
    }
  }
  return { args, argument };
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

describe('incident CLI: commands and help', () => {
  it.each(COMMANDS)('%s --help exits 0 and names its options', async (command) => {
    const { code, out, err } = await cli([...command.split(' '), '--help']);
    expect(code).toBe(EXIT.ok);
    expect(err).toBe('');
    expect(out).toContain(`Usage: incident ${command}`);
    expect(out).toContain('--json');
    const op = OPERATION_LIST.find((o) => o.command.join(' ') === command);
    if (op) {
      expect(out).toContain(op.summary);
      for (const field of op.cli) expect(out).toContain(cliName(field));
      expect(out).toContain('--by');
    }
    if (!command.includes(' ')) expect((await cli(['help', command])).out).toBe(out);
  });

  it('the top-level help lists every command; no command is a usage error', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(EXIT.ok);
    for (const command of COMMANDS)
      expect(help.out).toMatch(new RegExp(`^  ${command.split(' ')[0] ?? ''}\\b`, 'm'));
    const none = await cli([]);
    expect(none.code).toBe(EXIT.usage);
    expect(none.err).toContain('Usage: incident');
    const noneJson = await cli(['--json']);
    expect(noneJson.code).toBe(EXIT.usage);
    expect(JSON.parse(noneJson.out)).toMatchObject({ error: { code: 'USAGE' } });
  });

  it.each([
    ['an unknown command', ['frobnicate', 'x']],
    ['an unknown option', ['ack', ID, '--by', 'alice', '--frobnicate']],
    ['a missing incident id', ['ack', '--by', 'alice']],
    ['a malformed incident id', ['show', 'INC-1']],
    ['a missing positional argument', ['commander', ID, '--by', 'alice']],
    ['too many arguments', ['ack', ID, 'extra', '--by', 'alice']],
    ['a missing required option', ['update', ID, '--by', 'alice']],
    ['a blank message', ['update', ID, '--by', 'alice', '--message', '  ']],
    ['a bad severity', ['severity', ID, 'P7', '--by', 'alice']],
    ['a bad impact', ['declare', '--severity', 'P1', '--title', 't', '--impact', 'huge', '--by', 'alice']],
    ['a blank title', ['declare', '--severity', 'P1', '--title', ' ', '--by', 'alice']],
    ['a bad --at', ['simulate', '--severity', 'P1', '--at', 'tomorrow']],
    ['a bad status filter', ['list', '--status', 'open']],
    ['no acting engineer', ['declare', '--severity', 'P1', '--title', 't']],
  ])('%s exits 2 before connecting, with one line and a JSON error', async (_what, args) => {
    const spy = connectSpy();
    const { code, out, err } = await cli([...args, '--json'], {}, { connect: spy.connect });
    expect(code).toBe(EXIT.usage);
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toMatch(/^incident: \S/);
    const body = JSON.parse(out) as { error: { code: string; message: string } };
    expect(body).toEqual({ error: { code: 'USAGE', message: err.replace(/^incident: /, '') } });
    expect(spy.calls).toBe(0);
  });

  it.each(OPERATION_LIST.filter((op) => op.cli.some((f) => f.required)))(
    '$verb without each required field is a usage error that names it',
    async (op) => {
      const { args } = fullInvocation(op);
      for (const field of op.cli.filter((f) => f.required)) {
        const flag = cliName(field);
        const without = field.option
          ? args.filter((a, i) => a !== flag && args[i - 1] !== flag)
          : args.filter((a) => a !== sampleValue(op, field.field).typed);
        const spy = connectSpy();
        const { code, err } = await cli([...without, '--by', 'alice'], {}, { connect: spy.connect });
        expect(code).toBe(EXIT.usage);
        expect(err).toContain(flag);
        expect(spy.calls).toBe(0);
      }
    },
  );

  it.each(OPERATION_LIST)('$verb sends the $name update with every field it was given', async (op) => {
    const { args, argument } = fullInvocation(op);
    const { code, gateway } = await cliOnFake([...args, '--json'], { INCIDENT_USER: 'alice' });
    expect(code).toBe(EXIT.ok);
    expect(gateway.operations).toEqual([{ id: ID, operation: op.name, argument }]);
    expect(operationInputs()[op.name].safeParse(argument).success).toBe(true);
  });

  it('builds the arguments engineers type', async () => {
    const update = await cliOnFake([
      'update',
      ID,
      '--message',
      'rolled back',
      '--action',
      'paused deploys',
      '--action',
      'scaled to 5',
      '--public',
      '--by',
      'bob',
    ]);
    expect(update.gateway.operations[0]?.argument).toEqual({
      by: 'bob',
      message: 'rolled back',
      actions: ['paused deploys', 'scaled to 5'],
      public: true,
    });
    const severity = await cliOnFake(['severity', ID, 'p1', '--reason', 'checkout down'], {
      INCIDENT_USER: 'carol',
    });
    expect(severity.gateway.operations[0]).toEqual({
      id: ID,
      operation: 'changeSeverity',
      argument: { by: 'carol', severity: 'P1', reason: 'checkout down' },
    });
    const ack = await cliOnFake(['ack', ID, '--by', 'dave'], { INCIDENT_USER: 'carol' });
    expect(ack.gateway.operations[0]?.argument).toEqual({ by: 'dave' });
    const declared = await cliOnFake(
      ['declare', '--severity', 'p2', '--title', 'Slow reports', '--impact', 'high', '--security'],
      { INCIDENT_USER: 'alice' },
    );
    expect(declared.gateway.declared).toEqual([
      { by: 'alice', severity: 'P2', title: 'Slow reports', impact: 'high', securityRelated: true },
    ]);
  });

  it('with --json, operations print the incident state and list prints the array', async () => {
    const op = await cliOnFake(['mitigate', ID, '--by', 'alice', '--json']);
    expect(JSON.parse(op.out)).toEqual({ id: ID });
    const list = await cliOnFake(['list', '--json']);
    expect(list.code).toBe(EXIT.ok);
    expect(JSON.parse(list.out)).toEqual([]);
    expect((await cliOnFake(['list'])).out).toBe('no incidents');
  });

  it('maps the gateway errors to exit 1 with their codes', async () => {
    const missing = await cliOnFake(['show', ID, '--json']);
    expect(missing.code).toBe(EXIT.refused);
    expect(JSON.parse(missing.out)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(missing.err).toBe(`incident: no incident ${ID}`);

    class RefusingGateway extends FakeGateway {
      override operate(): Promise<IncidentState> {
        return Promise.reject(new IncidentRefusedError(`incident ${ID} was already acknowledged by alice`));
      }
    }
    const refused = await cliOnFake(['ack', ID, '--by', 'bob', '--json'], {}, new RefusingGateway());
    expect(refused.code).toBe(EXIT.refused);
    expect(JSON.parse(refused.out)).toEqual({
      error: { code: 'REFUSED', message: `incident ${ID} was already acknowledged by alice` },
    });
  });

  it('connects to Temporal only once the arguments are valid, and exits 3 when it is unreachable', async () => {
    const spy = connectSpy();
    const bad = await cli(['escalate', ID, '--by', 'alice'], {}, { connect: spy.connect });
    expect(bad.code).toBe(EXIT.usage);
    expect(spy.calls).toBe(0);
    const good = await cli(
      ['escalate', ID, '--by', 'alice', '--reason', 'need the lead', '--json'],
      {},
      {
        connect: spy.connect,
      },
    );
    expect(spy.calls).toBe(1);
    expect(good.code).toBe(EXIT.unreachable);
    expect(JSON.parse(good.out)).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });
    expect(good.err).toBe('incident: Temporal is unreachable at 127.0.0.1:1');
  });

  it('a bad policy file is a CONFIG error, after the arguments parsed', async () => {
    const env = { INCIDENT_CONFIG: '/nonexistent/policy.yaml' };
    const { code, out } = await cli(['simulate', '--severity', 'P1', '--json'], env);
    expect(code).toBe(EXIT.usage);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'CONFIG' } });
    expect((await cli(['simulate', '--help'], env)).code).toBe(EXIT.ok);
  });

  it('simulate prints a table without --json', async () => {
    const { code, out } = await cli(['simulate', '--severity', 'P1', '--at', '2026-11-26T10:00:00Z']);
    expect(code).toBe(EXIT.ok);
    expect(out.split('\n')[0]).toMatch(/^\+\s+0s {2}L0 {2}initial\s+alice \(on-call-engineer\) via /);
  });
});
