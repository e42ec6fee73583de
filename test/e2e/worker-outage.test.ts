/**
 * The worker goes away while the API and Temporal stay up (issue 11, "Readiness and self-monitoring" and
 * the public status page), on a real dev server:
 * - the status page, on its own port (STATUS_PORT), shows only the incidents an engineer marked public and
 *   never a security-related one, read from visibility: it keeps answering while no worker runs;
 * - `/readyz` stays 200 (the API still takes alerts durably: the webhook answers 202), while
 *   `/healthz/worker` turns 503 and `incident_workers_polling` 0;
 * - an engineer's call answers a prompt 503 `WORKER_UNAVAILABLE` naming the task queue (the CLI exits 3)
 *   instead of waiting for a worker for ever.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { ALICE_ALSO_LEADS, policyFileWith } from '../support/policy.ts';
import { readMetric } from '../support/prometheus.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);
const TOKENS = { alice: `alice-${randomUUID()}`, dave: `dave-${randomUUID()}` };

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;
let statusAddress: string;

beforeAll(async () => {
  server = await startTestDevServer();
  stack = await startStack({
    address: server.address,
    name: 'e2e-worker-outage',
    workflowBundle: await workflowBundle(),
    env: {
      INCIDENT_TOKEN_ALICE: TOKENS.alice,
      INCIDENT_TOKEN_DAVE: TOKENS.dave,
      INCIDENT_CONFIG: policyFileWith(ALICE_ALSO_LEADS),
      STATUS_PORT: '0',
    },
  });
  statusAddress = (stack.api as { statusAddress?: string }).statusAddress ?? '';
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
});

async function call(method: string, path: string, token: string, body?: unknown) {
  const started = Date.now();
  const res = await fetch(`${stack.api.address}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  return {
    status: res.status,
    ms: Date.now() - started,
    body: (await res.json()) as { id: string; error?: { code: string; message: string } },
  };
}

interface StatusJson {
  incidents: { id: string; title: string; update?: { message: string } }[];
  components: { name: string; status: string }[];
}
const statusJson = async () =>
  (await (
    await fetch(`${statusAddress}/status.json`, { signal: AbortSignal.timeout(15_000) })
  ).json()) as StatusJson;
const get = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(15_000) })).status;

describe('the worker stops; the API, the status page and the engineers’ answers do not', () => {
  it('public incidents only, from visibility, on their own port; /readyz up, the worker probe down, prompt 503s', async () => {
    expect(statusAddress).toMatch(/^http:\/\//);
    // Public: an engineer posts a public update. Security-related: never shown. Internal: no public update.
    const shown = await call('POST', '/api/incidents', TOKENS.alice, {
      title: 'Checkout is slow',
      severity: 'P2',
    });
    expect(shown.status).toBe(201);
    await call('POST', `/api/incidents/${shown.body.id}/update`, TOKENS.alice, {
      message: 'We are investigating slow checkouts',
      public: true,
    });
    const secret = await call('POST', '/api/incidents', TOKENS.alice, {
      title: 'Token misuse',
      severity: 'P1',
      securityRelated: true,
    });
    await call('POST', `/api/incidents/${secret.body.id}/update`, TOKENS.alice, {
      message: 'security text for customers',
      public: true,
    });
    const internal = await call('POST', '/api/incidents', TOKENS.alice, {
      title: 'Docs build red',
      severity: 'P3',
    });
    expect(internal.status).toBe(201);

    const page = await eventually(
      'the public update on the status page',
      async () => {
        const s = await statusJson();
        return s.incidents[0]?.update ? s : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(page.incidents.map((i) => i.id)).toEqual([shown.body.id]);
    expect(page.incidents[0]?.update?.message).toBe('We are investigating slow checkouts');
    for (const url of ['/status', '/status.json', '/status.atom']) {
      const body = await (await fetch(`${statusAddress}${url}`)).text();
      for (const hidden of [
        secret.body.id,
        'Token misuse',
        'security text',
        internal.body.id,
        'Docs build red',
      ])
        expect(body, `${url} shows ${hidden}`).not.toContain(hidden);
      // The main listener no longer serves it; the status listener serves nothing else.
      expect(await get(`${stack.api.address}${url}`)).toBe(404);
    }
    expect(await get(`${statusAddress}/api/incidents`)).toBe(404);
    expect(await get(`${stack.api.address}/readyz`)).toBe(200);
    expect(await get(`${stack.api.address}/healthz/worker`)).toBe(200);
    expect(
      await readMetric(`${stack.api.address}/metrics`, 'incident_workers_polling'),
    ).toBeGreaterThanOrEqual(1);

    // The worker stops.
    stack.worker.shutdown();
    await stack.workerDone;

    // The API stays ready: it takes an alert durably (202) with no worker to run it yet.
    expect(await get(`${stack.api.address}/readyz`)).toBe(200);
    const alert = await stack.postAlerts(alertmanagerPayload({ groupKey: `{}:{probe="${randomUUID()}"}` }));
    expect(alert.status).toBe(202);
    // Temporal lists a stopped worker's poller for minutes; the probe counts only recent polls (90 s).
    await eventually(
      '/healthz/worker 503',
      async () => ((await get(`${stack.api.address}/healthz/worker`)) === 503 ? true : undefined),
      { timeoutMs: 150_000, intervalMs: 2_000 },
    );
    expect(await readMetric(`${stack.api.address}/metrics`, 'incident_workers_polling')).toBe(0);
    expect(await get(`${stack.api.address}/readyz`)).toBe(200);

    // The status page still answers, from visibility.
    const during = await statusJson();
    expect(during.incidents.map((i) => i.id)).toEqual([shown.body.id]);

    // Engineers hear at once why nothing can happen.
    const ack = await call('POST', `/api/incidents/${shown.body.id}/ack`, TOKENS.alice, {});
    expect(ack.status).toBe(503);
    expect(ack.body.error).toMatchObject({
      code: 'WORKER_UNAVAILABLE',
      message: expect.stringContaining(
        `no worker is polling task queue ${stack.settings.temporal.taskQueue}`,
      ),
    });
    expect(ack.ms).toBeLessThan(5_000);
    const show = await call('GET', `/api/incidents/${shown.body.id}`, TOKENS.alice);
    expect(show.status).toBe(503);
    expect(show.body.error?.code).toBe('WORKER_UNAVAILABLE');
    expect(show.ms).toBeLessThan(5_000);

    // The CLI (talking to Temporal) exits 3, promptly.
    const started = Date.now();
    const cli = await run('bin/incident', ['ack', shown.body.id, '--by', 'alice', '--json'], {
      env: stack.env,
      encoding: 'utf8',
      timeout: 60_000,
    }).then(
      () => ({ code: 0 }),
      (err: { code?: number }) => ({ code: err.code }),
    );
    expect(cli.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 300_000);
});
