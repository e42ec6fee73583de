/**
 * The monitoring activities against local HTTP servers answering like Prometheus' API (no Prometheus): how
 * results become samples, alerts and pod usage, and how each failure maps to a retryable or a
 * non-retryable error. The real Prometheus is in test/e2e/monitoring-activities.test.ts.
 */
import type { ServerResponse } from 'node:http';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPlaybookHttp } from '../../src/activities/playbooks/http.ts';
import { Monitoring, podUsageQueries, redactUrl } from '../../src/activities/playbooks/monitoring.ts';
import { NON_RETRYABLE_PLAYBOOK_ERRORS } from '../../src/domain/cluster.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { HttpStandIn, answerFailure } from '../support/stand-in.ts';
import type { InjectedFailure, ReceivedRequest } from '../support/stand-in.ts';
import { startServiceStandIn } from '../support/service-stand-in.ts';
import type { ServiceStandIn } from '../support/service-stand-in.ts';

/** A JSON (object) or text (string) answer, or `hang`: none. */
type Answer = InjectedFailure;

/** Answers each request with what `answer` returns for it. */
class FakePrometheus extends HttpStandIn {
  answer: (request: ReceivedRequest, query: URLSearchParams) => Answer = () => ({
    status: 404,
    body: 'no answer set',
  });

  protected handle(request: ReceivedRequest, res: ServerResponse): void {
    answerFailure(res, this.answer(request, new URL(request.path, 'http://x').searchParams));
  }

  /** The `query` parameters Prometheus received, in order. */
  get queries(): string[] {
    return this.requests.items.map((r) => new URL(r.path, 'http://x').searchParams.get('query') ?? '');
  }
}

const vector = (result: { metric: Record<string, string>; value: string }[]) => ({
  status: 200,
  body: {
    status: 'success',
    data: {
      resultType: 'vector',
      result: result.map((r) => ({ metric: r.metric, value: [1700000000.1, r.value] })),
    },
  },
});
const scalar = (value: string) => ({
  status: 200,
  body: { status: 'success', data: { resultType: 'scalar', result: [1700000000.1, value] } },
});
const promError = (status: number, errorType: string, error: string) => ({
  status,
  body: { status: 'error', errorType, error },
});

/** The failure's type and whether it is retried; `plain` for an ordinary Error. */
async function failureOf(
  promise: Promise<unknown>,
): Promise<{ kind: string; retried: boolean; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApplicationFailure)
      return { kind: err.type ?? 'ApplicationFailure', retried: !err.nonRetryable, message: err.message };
    if (err instanceof Error) return { kind: 'plain', retried: true, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

let prom: FakePrometheus;
let monitoring: Monitoring;
const http = createPlaybookHttp({ timeoutMs: 2_000 });

beforeAll(async () => {
  prom = new FakePrometheus();
  await prom.listen();
  monitoring = new Monitoring({ prometheusUrl: prom.baseUrl, http });
});

afterAll(async () => {
  await prom?.stop();
});

describe('createPlaybookHttp', () => {
  it('judges no status itself, sends its User-Agent, and ignores proxies from the environment', async () => {
    const instance = createPlaybookHttp();
    expect(instance.defaults.timeout).toBe(10_000);
    expect(instance.defaults.proxy).toBe(false);
    expect(instance.defaults.maxRedirects).toBeLessThanOrEqual(5);
    expect(instance.defaults.validateStatus?.(503)).toBe(true);
    expect(() => createPlaybookHttp({ timeoutMs: 0 })).toThrow(RangeError);

    const saved = { http: process.env['HTTP_PROXY'], lower: process.env['http_proxy'] };
    process.env['HTTP_PROXY'] = process.env['http_proxy'] = `http://127.0.0.1:${await freePort()}`;
    try {
      prom.answer = () => scalar('1');
      const before = prom.requests.length;
      await expect(monitoring.queryPrometheus({ query: '1' })).resolves.toEqual([{ labels: {}, value: 1 }]);
      expect(prom.requests.items[before]?.headers['user-agent']).toBe('pno-incident-response');
    } finally {
      for (const [name, value] of [
        ['HTTP_PROXY', saved.http],
        ['http_proxy', saved.lower],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('Monitoring as activities', () => {
  it('exposes exactly its four activities as own properties, so `{ ...monitoring }` registers them', () => {
    expect(Object.keys({ ...monitoring }).sort()).toEqual([
      'firingAlerts',
      'podUsage',
      'probe',
      'queryPrometheus',
    ]);
    for (const activity of Object.values({ ...monitoring })) expect(typeof activity).toBe('function');
  });

  it('says where Prometheus is for the start-up line, without credentials', () => {
    expect(monitoring.describe()).toBe(`prometheus ${prom.baseUrl}`);
    expect(Monitoring.describe(undefined)).toBe('prometheus: not configured (PROMETHEUS_URL)');
    expect(Monitoring.describe('  ')).toBe('prometheus: not configured (PROMETHEUS_URL)');
    expect(Monitoring.describe('https://ops:hunter22@prom.example:9090/')).toBe(
      'prometheus https://prom.example:9090',
    );
    expect(Monitoring.describe('ftp://prom.example')).toMatch(
      /^prometheus: not configured \(PROMETHEUS_URL is not/,
    );
    expect(new Monitoring({ http }).prometheusConfigured).toBe(false);
    expect(monitoring.prometheusConfigured).toBe(true);
  });
});

describe('queryPrometheus', () => {
  afterEach(() => {
    prom.answer = () => ({ status: 404, body: 'no answer set' });
  });

  it('sends the query as given to /api/v1/query and turns a vector into samples', async () => {
    const query =
      'sum by (status) (rate(http_requests_total{job="pno-physics-bench",status=~"5.."}[5m])) + 0';
    prom.answer = (req, q) =>
      req.method === 'GET' && req.path.startsWith('/api/v1/query?') && q.get('query') === query
        ? vector([
            { metric: { status: '500' }, value: '4' },
            { metric: { status: '503' }, value: '1.5' },
          ])
        : promError(400, 'bad_data', `unexpected ${req.path}`);
    await expect(monitoring.queryPrometheus({ query })).resolves.toEqual([
      { labels: { status: '500' }, value: 4 },
      { labels: { status: '503' }, value: 1.5 },
    ]);
  });

  it('gives a scalar as one sample without labels', async () => {
    prom.answer = () => scalar('0.05');
    await expect(monitoring.queryPrometheus({ query: 'scalar(x)' })).resolves.toEqual([
      { labels: {}, value: 0.05 },
    ]);
  });

  it('leaves NaN and ±Inf out: no sample is no data', async () => {
    prom.answer = () =>
      vector([
        { metric: { pod: 'a' }, value: 'NaN' },
        { metric: { pod: 'b' }, value: '+Inf' },
        { metric: { pod: 'c' }, value: '-Inf' },
        { metric: { pod: 'd' }, value: '2' },
      ]);
    await expect(monitoring.queryPrometheus({ query: 'x' })).resolves.toEqual([
      { labels: { pod: 'd' }, value: 2 },
    ]);
    prom.answer = () => scalar('NaN');
    await expect(monitoring.queryPrometheus({ query: '0/0' })).resolves.toEqual([]);
    prom.answer = () => vector([]);
    await expect(monitoring.queryPrometheus({ query: 'absent_metric' })).resolves.toEqual([]);
  });

  it('refuses a range vector or an empty query as Invalid', async () => {
    prom.answer = () => ({
      status: 200,
      body: { status: 'success', data: { resultType: 'matrix', result: [] } },
    });
    expect(await failureOf(monitoring.queryPrometheus({ query: 'up[5m]' }))).toMatchObject({
      kind: 'Invalid',
      retried: false,
      message: expect.stringContaining('range vector'),
    });
    expect(await failureOf(monitoring.queryPrometheus({ query: ' ' }))).toMatchObject({
      kind: 'Invalid',
      retried: false,
    });
  });

  it("maps 400 and 422 to Invalid with Prometheus' error text", async () => {
    prom.answer = () => promError(400, 'bad_data', '1:5: parse error: unclosed left parenthesis');
    expect(await failureOf(monitoring.queryPrometheus({ query: 'sum(' }))).toEqual({
      kind: 'Invalid',
      retried: false,
      message: 'Prometheus rejected the query sum(: bad_data: 1:5: parse error: unclosed left parenthesis',
    });
    prom.answer = () => promError(422, 'execution', 'many-to-many matching not allowed');
    expect(await failureOf(monitoring.queryPrometheus({ query: 'a / b' }))).toMatchObject({
      kind: 'Invalid',
      retried: false,
      message: expect.stringContaining('many-to-many matching not allowed'),
    });
  });

  it('maps 401/403 to Forbidden and 404 to NotFound', async () => {
    prom.answer = () => ({ status: 401, body: 'Unauthorized' });
    expect(await failureOf(monitoring.queryPrometheus({ query: 'up' }))).toMatchObject({
      kind: 'Forbidden',
      retried: false,
    });
    prom.answer = () => ({ status: 403, body: 'Forbidden' });
    expect(await failureOf(monitoring.queryPrometheus({ query: 'up' }))).toMatchObject({ kind: 'Forbidden' });
    prom.answer = () => ({ status: 404, body: '404 page not found' });
    expect(await failureOf(monitoring.queryPrometheus({ query: 'up' }))).toMatchObject({
      kind: 'NotFound',
      retried: false,
      message: expect.stringContaining('is PROMETHEUS_URL the base URL'),
    });
  });

  it('leaves 5xx, 503, 429 and a non-JSON 200 to the retry policy as plain errors', async () => {
    for (const answer of [
      promError(503, 'timeout', 'query timed out in expression evaluation'),
      promError(500, 'internal', 'boom'),
      { status: 502, body: '<html>Bad Gateway</html>' },
      { status: 429, body: 'slow down' },
      { status: 200, body: '<html>login</html>' },
    ]) {
      prom.answer = () => answer;
      const failure = await failureOf(monitoring.queryPrometheus({ query: 'up' }));
      expect(failure, JSON.stringify(answer)).toMatchObject({ kind: 'plain', retried: true });
      expect(failure.message).toContain(`HTTP ${answer.status}`);
    }
  });

  it('fails retryably when Prometheus does not answer in time or refuses the connection', async () => {
    prom.answer = () => 'hang';
    const slow = new Monitoring({
      prometheusUrl: prom.baseUrl,
      http: createPlaybookHttp({ timeoutMs: 300 }),
    });
    const started = Date.now();
    expect(await failureOf(slow.queryPrometheus({ query: 'up' }))).toMatchObject({
      kind: 'plain',
      message: expect.stringContaining('no answer within 300 ms'),
    });
    expect(Date.now() - started).toBeLessThan(3_000);

    const down = new Monitoring({ prometheusUrl: `http://127.0.0.1:${await freePort()}`, http });
    expect(await failureOf(down.queryPrometheus({ query: 'up' }))).toMatchObject({
      kind: 'plain',
      message: expect.stringMatching(/unreachable .*connection refused \(.*ECONNREFUSED/),
    });
  });

  it('fails NotConfigured without PROMETHEUS_URL, or with one that is not http(s)', async () => {
    for (const prometheusUrl of [undefined, '', 'ftp://prom.example', 'not a url']) {
      const none = new Monitoring({ prometheusUrl, http });
      const failure = await failureOf(none.queryPrometheus({ query: 'up' }));
      expect(failure).toMatchObject({ kind: 'NotConfigured', retried: false });
      expect(failure.message).toMatch(/^PROMETHEUS_URL is not/);
      expect(await failureOf(none.firingAlerts({}))).toMatchObject({ kind: 'NotConfigured' });
      expect(await failureOf(none.podUsage({ namespace: 'production', pods: ['a'] }))).toMatchObject({
        kind: 'NotConfigured',
      });
    }
  });

  it('keeps a path prefix, sends URL credentials as basic auth and never shows them', async () => {
    const secret = 'pa55-w0rd';
    const withAuth = new Monitoring({
      prometheusUrl: `${prom.baseUrl.replace('//', `//ops:${secret}@`)}/prometheus/`,
      http,
    });
    prom.answer = () => promError(503, 'unavailable', 'try later');
    const before = prom.requests.length;
    const failure = await failureOf(withAuth.queryPrometheus({ query: 'up' }));
    const request = prom.requests.items[before];
    expect(request?.path).toBe('/prometheus/api/v1/query?query=up');
    expect(request?.headers.authorization).toBe(`Basic ${Buffer.from(`ops:${secret}`).toString('base64')}`);
    expect(failure.message).not.toContain(secret);
    expect(failure.message).toContain(`${prom.baseUrl}/prometheus`);
    expect(withAuth.describe()).toBe(`prometheus ${prom.baseUrl}/prometheus`);

    const down = new Monitoring({
      prometheusUrl: `http://ops:${secret}@127.0.0.1:${await freePort()}`,
      http,
    });
    try {
      await down.queryPrometheus({ query: 'up' });
      expect.unreachable();
    } catch (err) {
      const text = JSON.stringify(err, Object.getOwnPropertyNames(err)) + String((err as Error).cause);
      expect(text).not.toContain(secret);
    }
  });

  it('only counts non-retryable the types the workflows stop on', () => {
    expect([...NON_RETRYABLE_PLAYBOOK_ERRORS].sort()).toEqual([
      'Forbidden',
      'Invalid',
      'NotConfigured',
      'NotFound',
    ]);
  });
});

describe('firingAlerts', () => {
  it('returns the firing alerts whose labels include the asked ones', async () => {
    prom.answer = (req) =>
      req.path === '/api/v1/alerts'
        ? {
            status: 200,
            body: {
              status: 'success',
              data: {
                alerts: [
                  {
                    labels: {
                      alertname: 'HighErrorRate',
                      severity: 'critical',
                      service: 'pno-physics-bench',
                    },
                    annotations: { summary: 'Error rate above 5%', description: '…' },
                    state: 'firing',
                    activeAt: '2025-01-01T00:00:00Z',
                    value: '1e-01',
                  },
                  {
                    labels: { alertname: 'ServiceDown', severity: 'page', service: 'pno-physics-bench' },
                    annotations: {},
                    state: 'pending',
                    activeAt: '2025-01-01T00:00:01Z',
                    value: '0',
                  },
                  {
                    labels: { alertname: 'DiskFull', service: 'other' },
                    annotations: {},
                    state: 'firing',
                    value: '1',
                  },
                ],
              },
            },
          }
        : { status: 404, body: 'not found' };
    await expect(monitoring.firingAlerts({ labels: { service: 'pno-physics-bench' } })).resolves.toEqual([
      {
        alertname: 'HighErrorRate',
        severity: 'critical',
        state: 'firing',
        labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'pno-physics-bench' },
        activeAt: '2025-01-01T00:00:00Z',
        summary: 'Error rate above 5%',
      },
    ]);
    expect((await monitoring.firingAlerts({})).map((a) => a.alertname)).toEqual([
      'HighErrorRate',
      'DiskFull',
    ]);
    expect((await monitoring.firingAlerts({})).find((a) => a.alertname === 'DiskFull')).toEqual({
      alertname: 'DiskFull',
      severity: '',
      state: 'firing',
      labels: { alertname: 'DiskFull', service: 'other' },
    });
    await expect(monitoring.firingAlerts({ labels: { service: 'nope' } })).resolves.toEqual([]);
  });
});

describe('podUsage', () => {
  it('builds the kubectl-top queries from cAdvisor series with the pod names regex-escaped', () => {
    expect(podUsageQueries('production', ['pno-physics-bench-7d9f-abcde', 'web.1'], '5m')).toEqual({
      cpu:
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="production",' +
        'pod=~"pno-physics-bench-7d9f-abcde|web\\\\.1",container!="",container!="POD"}[5m])) * 1000',
      memory:
        'sum by (pod) (container_memory_working_set_bytes{namespace="production",' +
        'pod=~"pno-physics-bench-7d9f-abcde|web\\\\.1",container!="",container!="POD"}) / 1048576',
    });
    expect(podUsageQueries('a"b', ['x'], '30s').cpu).toContain('namespace="a\\"b"');
  });

  it('reads CPU and memory per pod, in the order asked, leaving out pods without both', async () => {
    prom.answer = (_req, q) => {
      const query = q.get('query') ?? '';
      if (query.includes('container_cpu_usage_seconds_total'))
        return vector([
          { metric: { pod: 'b' }, value: '1500.4' },
          { metric: { pod: 'a' }, value: '249.6' },
          { metric: { pod: 'new' }, value: 'NaN' },
        ]);
      return vector([
        { metric: { pod: 'a' }, value: '512.2' },
        { metric: { pod: 'b' }, value: '3199.7' },
        { metric: { pod: 'new' }, value: '100' },
      ]);
    };
    const before = prom.requests.length;
    await expect(
      monitoring.podUsage({ namespace: 'production', pods: ['a', 'b', 'new', 'gone', 'a'], window: '10s' }),
    ).resolves.toEqual([
      { pod: 'a', cpuMillicores: 250, memoryMi: 512 },
      { pod: 'b', cpuMillicores: 1500, memoryMi: 3200 },
    ]);
    const queries = prom.queries.slice(before);
    expect(queries).toHaveLength(2);
    expect(queries.find((q) => q.includes('rate('))).toContain('pod=~"a|b|new|gone",');
    expect(queries.find((q) => q.includes('rate('))).toContain('[10s]');
  });

  it('answers [] for no pods without asking, and refuses a bad window as Invalid', async () => {
    const before = prom.requests.length;
    await expect(monitoring.podUsage({ namespace: 'production', pods: [] })).resolves.toEqual([]);
    await expect(new Monitoring({ http }).podUsage({ namespace: 'production', pods: [] })).resolves.toEqual(
      [],
    );
    expect(prom.requests.length).toBe(before);
    expect(
      await failureOf(monitoring.podUsage({ namespace: 'production', pods: ['a'], window: '5 minutes' })),
    ).toMatchObject({
      kind: 'Invalid',
      retried: false,
    });
    expect(await failureOf(monitoring.podUsage({ namespace: '', pods: ['a'] }))).toMatchObject({
      kind: 'Invalid',
    });
  });
});

describe('probe', () => {
  let service: ServiceStandIn;
  let healthy = true;

  beforeAll(async () => {
    service = await startServiceStandIn({ health: () => Promise.resolve(healthy) });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('is ok for 2xx, not for 503, with the status and elapsed ms', async () => {
    healthy = true;
    const ok = await monitoring.probe({ url: service.healthUrl });
    expect(ok).toEqual({ url: service.healthUrl, ok: true, status: 200, ms: expect.any(Number) });
    expect(ok.ms).toBeGreaterThanOrEqual(0);
    healthy = false;
    await expect(monitoring.probe({ url: service.healthUrl })).resolves.toEqual({
      url: service.healthUrl,
      ok: false,
      status: 503,
      ms: expect.any(Number),
    });
    await expect(monitoring.probe({ url: `${service.url}/nope` })).resolves.toMatchObject({
      ok: false,
      status: 404,
    });
    expect(service.healthChecks.at(-1)?.headers['user-agent']).toBe('pno-incident-response');
  });

  it('follows a redirect like curl -L would, to the final answer', async () => {
    prom.answer = () => ({ status: 200, body: 'never' });
    const redirector = new (class extends HttpStandIn {
      protected handle(_r: ReceivedRequest, res: ServerResponse): void {
        res.writeHead(301, { location: service.healthUrl }).end();
      }
    })();
    await redirector.listen();
    try {
      healthy = true;
      await expect(monitoring.probe({ url: `${redirector.baseUrl}/health` })).resolves.toMatchObject({
        ok: true,
        status: 200,
      });
    } finally {
      await redirector.stop();
    }
  });

  it('reports a timeout, a refused connection and an unknown host as findings, not errors', async () => {
    healthy = true;
    service.setLatencyMs(5_000);
    try {
      const slow = await monitoring.probe({ url: service.healthUrl, timeoutMs: 300 });
      expect(slow).toEqual({
        url: service.healthUrl,
        ok: false,
        ms: expect.any(Number),
        error: 'no answer within 300 ms',
      });
      expect(slow.ms).toBeGreaterThanOrEqual(250);
      expect(slow.ms).toBeLessThan(2_000);
    } finally {
      service.setLatencyMs(0);
    }
    const refusedUrl = `http://127.0.0.1:${await freePort()}/health`;
    const refused = await monitoring.probe({ url: refusedUrl });
    expect(refused).toMatchObject({
      url: refusedUrl,
      ok: false,
      error: expect.stringMatching(/^connection refused/),
    });
    expect(refused.status).toBeUndefined();
    const unknown = await monitoring.probe({ url: 'http://no-such-host.invalid/health', timeoutMs: 5_000 });
    expect(unknown).toMatchObject({ ok: false, error: expect.any(String) });
    expect(unknown.status).toBeUndefined();
  });

  it('refuses URLs that are not http(s) as Invalid, and hides credentials of the URL', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://example.com/health', 'example.com/health', '']) {
      expect(await failureOf(monitoring.probe({ url })), url).toMatchObject({
        kind: 'Invalid',
        retried: false,
      });
    }
    expect(await failureOf(monitoring.probe({ url: 'gopher://me:t0psecret@example.com' }))).toMatchObject({
      kind: 'Invalid',
      message: expect.not.stringContaining('t0psecret'),
    });
    const withAuth = service.healthUrl.replace('//', '//probe:t0psecret@');
    const result = await monitoring.probe({ url: withAuth });
    expect(result).toMatchObject({ url: service.healthUrl, ok: true });
    expect(service.healthChecks.at(-1)?.headers.authorization).toMatch(/^Basic /);
    const refused = await monitoring.probe({
      url: `http://probe:t0psecret@127.0.0.1:${await freePort()}/health`,
    });
    expect(JSON.stringify(refused)).not.toContain('t0psecret');
    expect(redactUrl('https://a:b@host/x?y=1')).toBe('https://host/x?y=1');
  });
});
