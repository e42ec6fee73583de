/**
 * The CLI's API mode (INCIDENT_API_URL, INCIDENT_TOKEN): every incident command goes through the engineer API
 * — the real Fastify app on a loopback port, over an in-memory gateway — as the token's person, and never
 * reaches for Temporal; every HTTP answer becomes the CLI's error code and exit code.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { OPERATION_LIST, operationInputs } from '../../src/contract/operations.ts';
import type { OperationName, OperationSpec } from '../../src/contract/operations.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { buildApp } from '../../src/starter/api/app.ts';
import { IncidentForbiddenError, RecordIncompleteError } from '../../src/starter/client/errors.ts';
import { EXIT, runCli } from '../../src/starter/cli/index.ts';
import { toCliError } from '../../src/starter/cli/errors.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const ID = 'INC-0000abcd';
const policy = loadDefaultPolicy();

const state = {
  id: ID,
  workflowId: 'declared-INC-0000abcd',
  title: 'Checkout errors',
  service: 'pno-physics-bench',
  severity: 'P1',
  status: 'triggered',
  createdAt: '2026-11-26T10:00:00.000Z',
  impact: 'high',
  securityRelated: false,
  escalationLevel: 0,
  timeline: [],
} as unknown as IncidentState;

interface Api {
  url: string;
  gateway: FakeGateway;
  app: FastifyInstance;
}

const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
});

/** The real API on a free loopback port, with alice's and bob's tokens, over a fake gateway. */
async function startApi(options: { outboxFile?: string } = {}): Promise<Api> {
  const gateway = new FakeGateway();
  gateway.incidents.set(ID, state);
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: 'webhook-token',
    engineerTokens: new Map([
      ['alice-token', 'alice'],
      ['bob-token', 'bob'],
    ]),
    ...options,
  });
  apps.push(app);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, gateway, app };
}

/** The CLI in API mode; any attempt to reach Temporal is counted (and fails as an unreachable server). */
async function cli(
  args: string[],
  api: { url: string },
  env: NodeJS.ProcessEnv = {},
  options: { apiTimeoutMs?: number } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const temporal = { connects: 0, gateways: 0 };
  const code = await runCli(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      INCIDENT_API_URL: api.url,
      INCIDENT_TOKEN: 'alice-token',
      ...env,
    },
    connect: () => {
      temporal.connects += 1;
      return Promise.reject(new Error('Failed to connect: connection refused'));
    },
    gateway: () => {
      temporal.gateways += 1;
      throw new Error('the CLI used its Temporal gateway in API mode');
    },
    ...options,
  });
  return { code, out: out.join('\n'), err: err.join('\n'), temporal };
}

/** A valid value of an operation's field as typed, and as the API then hands it to the gateway. */
function sampleValue(op: OperationSpec<OperationName>, field: string): { typed: string; sent: string } {
  let type = (operationInputs()[op.name].shape as Record<string, z.ZodType | undefined>)[field];
  while (type instanceof z.ZodOptional || type instanceof z.ZodDefault) type = type.unwrap() as z.ZodType;
  if (type instanceof z.ZodEnum) {
    const first = String(type.options[0]);
    return { typed: first.toLowerCase(), sent: first };
  }
  return { typed: `${field} text`, sent: `${field} text` };
}

/** `op`'s command line with every field given (and no --by), and the argument the workflow should get. */
function fullInvocation(op: OperationSpec<OperationName>) {
  const args = [...op.command, ID];
  const argument: Record<string, unknown> = { by: 'alice' };
  for (const field of op.cli) {
    const { typed, sent } = sampleValue(op, field.field);
    const flag = field.option?.split(' ')[0] ?? '';
    if (field.argument) {
      args.push(typed);
      argument[field.field] = sent;
    } else if (field.option && !field.option.includes('<')) {
      args.push(flag);
      argument[field.field] = !field.inverts;
    } else if (field.repeatable) {
      args.push(flag, `${typed} 1`, flag, `${typed} 2`);
      argument[field.field] = [`${sent} 1`, `${sent} 2`];
    } else {
      args.push(flag, typed);
      argument[field.field] = sent;
    }
  }
  return { args, argument: operationInputs()[op.name].parse(argument) as Record<string, unknown> };
}

describe('incident CLI in API mode', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi();
  });
  afterEach(() => {
    api.gateway.operations.length = 0;
    api.gateway.declared.length = 0;
    api.gateway.failWith = undefined;
    api.gateway.refuse = undefined;
  });

  it.each(OPERATION_LIST)(
    '$verb goes through $http.method /api/incidents/:id/$http.path as the token’s person, never Temporal',
    async (op) => {
      const { args, argument } = fullInvocation(op);
      // INCIDENT_USER is the direct mode's default actor: in API mode the token says who acts.
      const { code, out, err, temporal } = await cli([...args, '--json'], api, { INCIDENT_USER: 'bob' });
      expect(err).toBe('');
      expect(code).toBe(EXIT.ok);
      expect(temporal).toEqual({ connects: 0, gateways: 0 });
      expect(api.gateway.operations).toEqual([{ id: ID, operation: op.name, argument }]);
      expect(JSON.parse(out)).toMatchObject({ id: ID });
    },
  );

  it('list, show and declare go through the API', async () => {
    const list = await cli(['list', '--status', 'triggered', '--json'], api);
    expect(list.code).toBe(EXIT.ok);
    expect(JSON.parse(list.out)).toEqual([
      {
        id: ID,
        workflowId: state.workflowId,
        title: state.title,
        service: state.service,
        severity: 'P1',
        status: 'triggered',
        createdAt: state.createdAt,
      },
    ]);
    expect((await cli(['list'], api)).out).toContain(`${ID}  P1  triggered`);

    const show = await cli(['show', ID, '--json'], api);
    expect(show.code).toBe(EXIT.ok);
    expect(JSON.parse(show.out)).toEqual(state);

    const declared = await cli(
      ['declare', '--severity', 'p2', '--title', 'Slow reports', '--impact', 'high', '--security', '--json'],
      api,
      { INCIDENT_TOKEN: 'bob-token' },
    );
    expect(declared.code).toBe(EXIT.ok);
    expect(api.gateway.declared).toEqual([
      { by: 'bob', severity: 'P2', title: 'Slow reports', impact: 'high', securityRelated: true },
    ]);
    for (const r of [list, show, declared]) expect(r.temporal).toEqual({ connects: 0, gateways: 0 });
  });

  it('an explicit --by must name the token’s person (exit 2, nothing sent otherwise)', async () => {
    const same = await cli(['ack', ID, '--by', 'alice'], api);
    expect(same.err).toBe('');
    expect(same.code).toBe(EXIT.ok);
    expect(api.gateway.operations).toEqual([{ id: ID, operation: 'acknowledge', argument: { by: 'alice' } }]);

    api.gateway.operations.length = 0;
    const other = await cli(['resolve', ID, '--root-cause', 'bad deploy', '--by', 'bob', '--json'], api);
    expect(other.code).toBe(EXIT.usage);
    expect(JSON.parse(other.out)).toMatchObject({ error: { code: 'USAGE' } });
    expect(other.err).toBe(
      "incident: --by bob: in API mode you act as alice, the person of INCIDENT_TOKEN (drop --by, or use bob's own token)",
    );
    expect(api.gateway.operations).toEqual([]);
  });

  it('401: an unknown token exits 1 UNAUTHORIZED, naming the API and never the token', async () => {
    const { code, out, err } = await cli(['show', ID, '--json'], api, { INCIDENT_TOKEN: 's3cret-wrong' });
    expect(code).toBe(EXIT.refused);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(err).toBe(
      `incident: the API at ${api.url} does not accept INCIDENT_TOKEN (401): it is not the token of any person of its policy`,
    );
    expect(out + err).not.toContain('s3cret-wrong');
  });

  it('403: a permission refusal exits 1 FORBIDDEN with the roles that may', async () => {
    api.gateway.operate = () =>
      Promise.reject(
        new IncidentForbiddenError('only incident-commander, engineering-lead may resolve a P1'),
      );
    try {
      const { code, out, err } = await cli(['resolve', ID, '--root-cause', 'x', '--json'], api);
      expect(code).toBe(EXIT.refused);
      expect(JSON.parse(out)).toEqual({
        error: { code: 'FORBIDDEN', message: 'only incident-commander, engineering-lead may resolve a P1' },
      });
      expect(err).toBe('incident: only incident-commander, engineering-lead may resolve a P1');
    } finally {
      Reflect.deleteProperty(api.gateway, 'operate');
    }
  });

  it('404 exits 1 NOT_FOUND; 409 exits 1 REFUSED with the reason', async () => {
    const missing = await cli(['ack', 'INC-00000bad', '--json'], api);
    expect(missing.code).toBe(EXIT.refused);
    expect(JSON.parse(missing.out)).toEqual({
      error: { code: 'NOT_FOUND', message: 'no incident INC-00000bad' },
    });

    api.gateway.refuse = () => `incident ${ID} was already acknowledged by bob`;
    const refused = await cli(['ack', ID, '--json'], api);
    expect(refused.code).toBe(EXIT.refused);
    expect(JSON.parse(refused.out)).toEqual({
      error: { code: 'REFUSED', message: `incident ${ID} was already acknowledged by bob` },
    });
  });

  it('400: what the API refuses as bad input is a usage error (exit 2)', async () => {
    // The CLI does not bound a title's length; the API does (10,000 characters).
    const { code, out, err } = await cli(
      ['declare', '--severity', 'P3', '--title', 'x'.repeat(10_001), '--json'],
      api,
    );
    expect(code).toBe(EXIT.usage);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'USAGE' } });
    expect(err).toMatch(/^incident: the API refused the request: title: /);
    expect(api.gateway.declared).toEqual([]);
  });

  it('503 (Temporal unreachable behind the API) exits 3', async () => {
    api.gateway.failWith = Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), { code: 14 });
    const { code, out, err } = await cli(['ack', ID, '--json'], api);
    expect(code).toBe(EXIT.unreachable);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'TEMPORAL_UNAVAILABLE' } });
    expect(err).toContain(`the API at ${api.url} cannot reach Temporal (503)`);
  });

  it('a full read the record store cannot complete: 503 RECORD_INCOMPLETE from the API, exit 3 in both CLI modes', async () => {
    const lacking = new RecordIncompleteError(
      `the incident record store (/data/records) lacks entries ${ID}'s runs let go (alerts: 350): ...`,
    );
    // An API of its own: the shared one's gateway stays as it is.
    const api = await startApi();
    api.gateway.getIncident = () => Promise.reject(lacking);
    const res = await fetch(`${api.url}/api/incidents/${ID}?full=true`, {
      headers: { authorization: 'Bearer alice-token' },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({
      error: { code: 'RECORD_INCOMPLETE', message: lacking.message },
    });
    const { code, out, err } = await cli(['show', ID, '--full', '--json'], api);
    expect(code).toBe(EXIT.unreachable);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'RECORD_INCOMPLETE' } });
    expect(err).toContain('lacks entries');
    // Direct mode (the CLI's own gateway threw it): the same code and exit.
    expect(toCliError(lacking, '127.0.0.1:7233')).toMatchObject({
      code: 'RECORD_INCOMPLETE',
      exitCode: EXIT.unreachable,
    });
  });

  it('maintenance and deadletter are not available in API mode (exit 2); simulate stays local', async () => {
    for (const args of [
      ['maintenance', 'list'],
      ['maintenance', 'end', 'mw-1'],
      ['deadletter', 'list'],
      ['deadletter', 'replay', '--all'],
    ]) {
      const r = await cli([...args, '--json'], api);
      expect(r.code).toBe(EXIT.usage);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'NOT_IN_API_MODE' } });
      expect(r.err).toMatch(/is not available in API mode \(INCIDENT_API_URL\)/);
      expect(r.temporal).toEqual({ connects: 0, gateways: 0 });
    }
    const simulate = await cli(['simulate', '--severity', 'P1', '--json'], api);
    expect(simulate.code).toBe(EXIT.ok);
  });

  it('one of INCIDENT_API_URL and INCIDENT_TOKEN without the other is a configuration error', async () => {
    const noToken = await cli(['list', '--json'], api, { INCIDENT_TOKEN: '' });
    expect(noToken.code).toBe(EXIT.usage);
    expect(JSON.parse(noToken.out)).toMatchObject({ error: { code: 'CONFIG' } });
    expect(noToken.err).toContain('INCIDENT_TOKEN is not');
    const noUrl = await cli(['list', '--json'], api, { INCIDENT_API_URL: '' });
    expect(noUrl.code).toBe(EXIT.usage);
    expect(noUrl.err).toContain('INCIDENT_API_URL is not');
    expect(noUrl.temporal).toEqual({ connects: 0, gateways: 0 });
  });
});

describe('incident CLI in API mode: an API that is not there', () => {
  let silent: Server | undefined;
  afterAll(() => silent?.close());

  it('a refused connection exits 3 API_UNAVAILABLE', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { code, out, err, temporal } = await cli(['list', '--json'], { url });
    expect(code).toBe(EXIT.unreachable);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'API_UNAVAILABLE' } });
    expect(err).toBe(`incident: the API at ${url} is unreachable: connection refused`);
    expect(temporal).toEqual({ connects: 0, gateways: 0 });
  });

  it('an API that never answers exits 3 after the timeout', async () => {
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent?.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const url = `http://127.0.0.1:${port}`;
    const { code, err } = await cli(['show', ID], { url }, {}, { apiTimeoutMs: 300 });
    expect(code).toBe(EXIT.unreachable);
    expect(err).toBe(`incident: the API at ${url} is unreachable: no answer within 0.3 s`);
  });
});

describe('incident outbox in API mode', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads GET /outbox of the API; one without an outbox exits 1 OUTBOX_OFF', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pno-cli-api-outbox-'));
    const file = path.join(dir, 'outbox.jsonl');
    const entries = [
      {
        at: '2026-11-26T10:00:00.000Z',
        channel: 'slack',
        target: '#incidents',
        text: 'P1 opened',
        incidentId: ID,
      },
      { at: '2026-11-26T10:00:01.000Z', channel: 'pager', target: 'alice', text: 'page', incidentId: ID },
      {
        at: '2026-11-26T10:00:02.000Z',
        channel: 'slack',
        target: '#incidents',
        text: 'other',
        incidentId: 'INC-00000001',
      },
    ];
    await writeFile(file, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const withOutbox = await startApi({ outboxFile: file });
    const r = await cli(['outbox', '--channel', 'slack', '--incident', ID, '--json'], withOutbox);
    expect(r.code).toBe(EXIT.ok);
    expect(JSON.parse(r.out)).toEqual([entries[0]]);

    const production = await startApi();
    const off = await cli(['outbox', '--json'], production);
    expect(off.code).toBe(EXIT.refused);
    expect(JSON.parse(off.out)).toMatchObject({ error: { code: 'OUTBOX_OFF' } });
  });
});

describe('deploy/k8s: engineers get the API, and only the worker and the API reach Temporal', () => {
  it("a NetworkPolicy in Temporal's namespace admits to port 7233 only the incident-response worker and API", async () => {
    const file = path.resolve(import.meta.dirname, '../../deploy/k8s/incident-response.yaml');
    const docs = parseAllDocuments(await readFile(file, 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec: unknown },
    );
    const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
    expect(policies).toHaveLength(1);
    const [policy] = policies;
    expect(policy?.metadata.namespace).toBe('temporal');
    const spec = policy?.spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: { from: Record<string, unknown>[]; ports?: unknown[] }[];
    };
    expect(spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe('frontend');
    expect(spec.policyTypes).toEqual(['Ingress']);
    // From outside Temporal's namespace: only these pods, only 7233. Inside it: Temporal's own services.
    const outside = spec.ingress.filter((rule) => rule.from.some((peer) => 'namespaceSelector' in peer));
    expect(outside).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'incident-response' } },
            podSelector: {
              matchExpressions: [{ key: 'app', operator: 'In', values: ['incident-worker', 'incident-api'] }],
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 7233 }],
      },
    ]);
    const inside = spec.ingress.filter((rule) => !outside.includes(rule));
    expect(inside).toEqual([{ from: [{ podSelector: {} }] }]);
    // The pods those labels name are the worker and the API.
    const deployments = docs.filter((d) => d.kind === 'Deployment').map((d) => d.metadata.name);
    expect(deployments.sort()).toEqual(['incident-api', 'incident-worker']);
  });
});
