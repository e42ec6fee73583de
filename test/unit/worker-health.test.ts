/**
 * Readiness and the worker (issue 11, "Readiness and self-monitoring"): `/readyz` follows Temporal alone, so
 * a worker outage leaves the API in its Service taking alerts durably; the worker has its own probe
 * (`/healthz/worker`) and gauge (`incident_workers_polling`); and an engineer's call to an incident whose
 * worker is down answers a prompt 503 / exit 3 that says so, instead of waiting for a worker for ever.
 *
 * The real gateway (TemporalIncidents) and app over a stand-in for the Temporal client: each test says what
 * Temporal answers.
 */
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '../../src/starter/api/app.ts';
import { WorkerUnavailableError } from '../../src/starter/client/errors.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { toCliError } from '../../src/starter/cli/errors.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const policy = loadDefaultPolicy();
const QUEUE = 'incident-response';
const ID = 'INC-0000beef';
const TOKEN = 'alice-token';

type Poller = { identity: string; lastAccessTime?: { seconds: number; nanos: number } };
const polledAgo = (ms: number): Poller => {
  const at = Date.now() - ms;
  return {
    identity: `worker-${ms}`,
    lastAccessTime: { seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1e6 },
  };
};

const grpcError = (code: number, message: string) =>
  Object.assign(new Error(`${code} ${message}`), { code, details: message });

interface Temporal {
  describeNamespace?: () => Promise<unknown>;
  pollers?: () => Poller[];
  /** The update's answer; it is given the deadline the caller set (undefined: none). */
  executeUpdate?: (deadline: number | undefined) => Promise<unknown>;
  query?: () => Promise<unknown>;
  updatesSent?: number[];
}

/** A stand-in for the Temporal client: visibility finds one running incident; the rest is `t`'s. */
function gateway(t: Temporal, deadlines = { operationMs: 300 }) {
  let deadline: number | undefined;
  const sent: number[] = [];
  t.updatesSent = sent;
  const client = {
    options: { namespace: 'default' },
    async withDeadline<T>(d: number, fn: () => Promise<T>): Promise<T> {
      const outer = deadline;
      deadline = d;
      try {
        return await fn();
      } finally {
        deadline = outer;
      }
    },
    workflowService: {
      describeNamespace: () =>
        t.describeNamespace?.() ?? Promise.resolve({ namespaceInfo: { name: 'default', state: 1 } }),
      describeTaskQueue: () => Promise.resolve({ pollers: t.pollers?.() ?? [] }),
    },
    workflow: {
      async *list() {
        yield await Promise.resolve({
          workflowId: 'w',
          runId: 'r',
          status: { name: 'RUNNING' },
          startTime: new Date(),
        });
      },
      getHandle: () => ({
        executeUpdate: () => {
          sent.push(Date.now());
          return t.executeUpdate?.(deadline) ?? Promise.resolve({ id: ID });
        },
        query: () => t.query?.() ?? Promise.resolve({ id: ID }),
      }),
    },
  } as unknown as Client;
  const incidents = new TemporalIncidents(client, QUEUE, policy, {
    deadlines,
    maintenance: { activeFor: () => Promise.resolve(undefined) },
  });
  const app = buildApp({ policy, incidents, webhookToken: 'w', engineerTokens: new Map([[TOKEN, 'alice']]) });
  return { incidents, app };
}

/** What a gRPC call does when its deadline passes: it fails then (and hangs for ever without one). */
const untilDeadline = (deadline: number | undefined) =>
  new Promise<never>((_resolve, reject) => {
    if (deadline === undefined) return;
    setTimeout(
      () =>
        reject(
          new WorkflowUpdateRPCTimeoutOrCancelledError('Call cancelled', {
            cause: grpcError(1, 'CANCELLED: Call cancelled'),
          }),
        ),
      Math.max(0, deadline - Date.now()),
    );
  });

describe('/readyz: Temporal takes work, whether or not a worker polls', () => {
  it('is 200 while Temporal answers for the namespace and no worker polls', async () => {
    const { app } = gateway({ pollers: () => [] });
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ready', temporal: true });
  });

  it('is 503 when Temporal does not answer, or its namespace no longer takes workflows', async () => {
    const down = gateway({
      describeNamespace: () => Promise.reject(grpcError(14, 'UNAVAILABLE: No connection established')),
    });
    expect((await down.app.inject({ url: '/readyz' })).statusCode).toBe(503);
    const deprecated = gateway({
      describeNamespace: () => Promise.resolve({ namespaceInfo: { name: 'default', state: 2 } }),
      pollers: () => [polledAgo(1_000)],
    });
    const res = await deprecated.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json<{ error: string }>().error).toMatch(/namespace default is not registered/);
  });
});

describe('/healthz/worker and incident_workers_polling', () => {
  it('200 and a count while a worker polls; 503 and 0 when none has for 90 s (Temporal lists a stopped one for minutes)', async () => {
    let pollers = [polledAgo(2_000), polledAgo(55_000)];
    const { app } = gateway({ pollers: () => pollers });
    let res = await app.inject({ url: '/healthz/worker' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'polling', taskQueue: QUEUE, polling: true, workers: 2 });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/^incident_workers_polling 2$/m);

    pollers = [polledAgo(3 * 60_000)];
    res = await app.inject({ url: '/healthz/worker' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'no worker polling', polling: false, workers: 0 });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/^incident_workers_polling 0$/m);
    pollers = [];
    expect((await app.inject({ url: '/healthz/worker' })).statusCode).toBe(503);
  });
});

describe('engineer calls while the worker is down', () => {
  const ack = (app: ReturnType<typeof gateway>['app']) =>
    app.inject({
      method: 'POST',
      url: `/api/incidents/${ID}/ack`,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      payload: '{}',
    });

  it('no worker polls: refused at once with a 503 that names the task queue; the update is never sent', async () => {
    const t: Temporal = { pollers: () => [polledAgo(4 * 60_000)], executeUpdate: untilDeadline };
    const { app } = gateway(t);
    const started = Date.now();
    const res = await ack(app);
    expect(Date.now() - started).toBeLessThan(250);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.json()).toEqual({
      error: {
        code: 'WORKER_UNAVAILABLE',
        message: expect.stringContaining(`no worker is polling task queue ${QUEUE}`),
      },
    });
    // Not sent: an update would wait in Temporal and be applied whenever a worker came back.
    expect(t.updatesSent).toEqual([]);
    const show = await app.inject({
      url: `/api/incidents/${ID}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(show.statusCode).toBe(503);
    expect(show.json<{ error: { code: string } }>().error.code).toBe('WORKER_UNAVAILABLE');
  }, 5_000);

  it('a worker that stopped moments ago (still listed as polling): the call gives up at its deadline and says why', async () => {
    const t: Temporal = { pollers: () => [polledAgo(20_000)], executeUpdate: untilDeadline };
    const { incidents } = gateway(t, { operationMs: 300 });
    const started = Date.now();
    const err = await incidents.operate(ID, 'acknowledge', { by: 'alice' }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toBeInstanceOf(WorkerUnavailableError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `incident ${ID} did not answer within 0.3 s: a worker polls task queue ${QUEUE} but did not run it`,
      ),
    );
    expect(t.updatesSent).toHaveLength(1);
  }, 5_000);

  it('Temporal says no poller was seen (a query): WORKER_UNAVAILABLE, not an internal error', async () => {
    const { app } = gateway({
      pollers: () => [polledAgo(10_000)],
      query: () =>
        Promise.reject(
          new ServiceError('Failed to query Workflow', {
            cause: grpcError(
              9,
              'FAILED_PRECONDITION: no poller seen for task queue recently, worker may be down',
            ),
          }),
        ),
    });
    const res = await app.inject({
      url: `/api/incidents/${ID}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: {
        code: 'WORKER_UNAVAILABLE',
        message: expect.stringContaining(`no worker is polling task queue ${QUEUE}`),
      },
    });
  }, 5_000);

  it('a worker that polls answers as before', async () => {
    const { app } = gateway({ pollers: () => [polledAgo(1_000)] });
    expect((await ack(app)).statusCode).toBe(200);
  });

  it('the CLI exits 3 (unreachable) on it', () => {
    const err = toCliError(
      new WorkerUnavailableError(`no worker is polling task queue ${QUEUE}`),
      '127.0.0.1:7233',
    );
    expect(err.exitCode).toBe(3);
  });
});

describe('deploy/k8s: the probes follow the split', () => {
  it('the API pods are ready on /readyz (Temporal), the worker is watched through the gauge, the status page has its own Service', async () => {
    const file = path.resolve(import.meta.dirname, '../../deploy/k8s/incident-response.yaml');
    const docs = parseAllDocuments(await readFile(file, 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> },
    );
    type Container = {
      ports: { name?: string; containerPort: number }[];
      env: { name: string; value?: string }[];
      readinessProbe: { httpGet: { path: string; port: number } };
      livenessProbe: { httpGet: { path: string; port: number } };
    };
    const api = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'incident-api');
    const template = api?.spec['template'] as {
      metadata: { annotations?: Record<string, string> };
      spec: { containers: Container[] };
    };
    const [container] = template.spec.containers;
    expect(container?.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 3000 });
    expect(container?.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 3000 });
    expect(template.metadata.annotations?.['prometheus.io/path']).toBe('/metrics');
    const statusPort = container?.env.find((e) => e.name === 'STATUS_PORT')?.value;
    expect(container?.ports).toContainEqual({ name: 'status', containerPort: Number(statusPort) });
    const status = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'incident-status');
    expect(status?.spec['ports']).toEqual([{ port: 80, targetPort: 'status' }]);
  });
});
