import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { loadSettings } from '../../src/config.ts';
import { buildApp, buildStatusApp } from '../../src/starter/api/app.ts';
import { startApi } from '../../src/starter/api/server.ts';
import type { AppDeps } from '../../src/starter/api/app.ts';
import { FakeGateway } from '../support/fake-gateway.ts';
import {
  LISTING_MESSAGE_CHARS,
  LISTING_UPDATES_BYTES,
  listingOf,
  readListing,
} from '../../src/contract/listing.ts';
import { policyFileWith, policyWith } from '../support/policy.ts';
import { childrenNamed, parseXml } from '../support/xml.ts';

const HOUR = 60 * 60 * 1000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

const policy = policyWith({
  statusPage: {
    components: [
      { name: 'Inference API', services: ['pno-physics-bench'] },
      { name: 'Training', services: ['pno-training'] },
      { name: 'Docs', services: ['pno-docs'] },
      { name: 'Billing', services: ['pno-billing'] },
    ],
  },
});

function incident(patch: Partial<IncidentState> & Pick<IncidentState, 'id'>): IncidentState {
  return {
    workflowId: `declared-${patch.id}`,
    title: 'Something broke',
    service: 'pno-physics-bench',
    summary: 'internal summary',
    severity: 'P2',
    impact: 'medium',
    securityRelated: false,
    status: 'triggered',
    createdAt: ago(2 * HOUR),
    escalationLevel: 0,
    mappingRule: 'default',
    notified: [],
    alerts: [],
    truncatedAlerts: 0,
    source: { kind: 'declared', by: 'alice' },
    actionsTaken: [],
    publicUpdates: [],
    postmortemRequired: false,
    timeline: [],
    ...patch,
  };
}

function setup(states: IncidentState[], extra: Partial<AppDeps> = {}) {
  const gateway = new FakeGateway();
  for (const s of states) gateway.incidents.set(s.id, s);
  const app = buildApp({
    policy,
    incidents: gateway,
    webhookToken: 't',
    engineerTokens: new Map(),
    publicUrl: 'https://api.example.com',
    ...extra,
  });
  return { app, gateway };
}

const STATES = [
  incident({
    id: 'INC-00000001',
    title: 'Inference <errors> & "timeouts"',
    severity: 'P1',
    status: 'acknowledged',
    createdAt: ago(3 * HOUR),
    rootCause: 'internal only',
    publicUpdates: [
      { at: ago(2 * HOUR), message: 'We are looking into elevated errors' },
      { at: ago(1 * HOUR), message: 'A fix is rolling out <soon>', eta: '30 min' },
    ],
  }),
  incident({ id: 'INC-00000002', service: 'pno-training', severity: 'P3', createdAt: ago(HOUR) }),
  incident({
    id: 'INC-00000003',
    title: 'Docs were slow',
    service: 'pno-docs',
    status: 'resolved',
    createdAt: ago(48 * HOUR),
    resolvedAt: ago(47 * HOUR),
    rootCause: 'a misconfigured CDN (internal detail)',
    publicUpdates: [{ at: ago(47.5 * HOUR), message: 'Docs are fast again' }],
  }),
  incident({
    id: 'INC-00000004',
    title: 'Quietly fixed',
    status: 'resolved',
    createdAt: ago(30 * HOUR),
    resolvedAt: ago(29 * HOUR),
    rootCause: 'secret root cause',
  }),
  incident({
    id: 'INC-00000005',
    title: 'Long ago',
    status: 'resolved',
    createdAt: ago(10 * 24 * HOUR),
    resolvedAt: ago(8 * 24 * HOUR),
  }),
  incident({
    id: 'INC-0000000a',
    title: 'Credential leak investigation',
    service: 'pno-billing',
    severity: 'P0',
    securityRelated: true,
    publicUpdates: [{ at: ago(HOUR), message: 'security update text' }],
  }),
  incident({
    id: 'INC-0000000b',
    title: 'Old breach',
    securityRelated: true,
    status: 'resolved',
    createdAt: ago(5 * HOUR),
    resolvedAt: ago(4 * HOUR),
  }),
];

/** The policy's rule instead of an engineer's mark: incidents of these severities show without a public update. */
const SHOW_P2_P3 = policyWith({
  statusPage: { components: policy.statusPage.components, publicSeverities: ['P2', 'P3'] },
});

describe('status page', () => {
  it('status.json: the public incidents, open and resolved in the last 7 days, with a public resolution, components', async () => {
    const { app } = setup(STATES, { policy: SHOW_P2_P3 });
    const res = await app.inject({ url: '/status.json' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      operational: boolean;
      components: { name: string; status: string }[];
      incidents: { id: string; update?: { message: string } }[];
      resolved: { id: string; resolution: string }[];
    }>();
    expect(body.operational).toBe(false);
    expect(body.incidents.map((i) => i.id)).toEqual(['INC-00000002', 'INC-00000001']);
    expect(body.incidents[1]?.update?.message).toBe('A fix is rolling out <soon>');
    expect(body.resolved).toEqual([
      expect.objectContaining({ id: 'INC-00000004', resolution: 'Resolved' }),
      expect.objectContaining({ id: 'INC-00000003', resolution: 'Docs are fast again' }),
    ]);
    expect(body.components).toEqual([
      { name: 'Inference API', status: 'partial_outage' },
      { name: 'Training', status: 'degraded_performance' },
      { name: 'Docs', status: 'operational' },
      // The open P0 on billing is security-related: it does not show, not even as a component's status.
      { name: 'Billing', status: 'operational' },
    ]);
    expect(res.body).not.toContain('internal');
    expect(res.body).not.toContain('secret root cause');
  });

  it('shows only what an engineer marked public (a public update), unless the policy makes a severity public', async () => {
    const { app } = setup(STATES);
    for (const url of ['/status', '/status.json', '/status.atom']) {
      const body = (await app.inject({ url })).body;
      // INC-2 (open) and INC-4 (resolved) never had a public update: internal incidents stay internal.
      for (const hidden of ['INC-00000002', 'INC-00000004', 'Quietly fixed'])
        expect(body, `${url} shows ${hidden}`).not.toContain(hidden);
      expect(body).toContain('INC-00000001');
      expect(body).toContain('INC-00000003');
    }
    const json = (await app.inject({ url: '/status.json' })).json<{
      incidents: { id: string }[];
      resolved: { id: string }[];
      components: { name: string; status: string }[];
    }>();
    expect(json.incidents.map((i) => i.id)).toEqual(['INC-00000001']);
    expect(json.resolved.map((i) => i.id)).toEqual(['INC-00000003']);
    // An internal incident does not show through its component either.
    expect(json.components).toContainEqual({ name: 'Training', status: 'operational' });

    // `statusPage.publicSeverities` shows a severity's incidents from their opening ("Investigating")…
    const bySeverity = setup(STATES, { policy: SHOW_P2_P3 });
    const all = (await bySeverity.app.inject({ url: '/status.json' })).json<{
      incidents: { id: string }[];
    }>();
    expect(all.incidents.map((i) => i.id)).toContain('INC-00000002');
    // …but never a security-related one, whatever the severity and however public its updates.
    const everything = setup(STATES, {
      policy: policyWith({ statusPage: { publicSeverities: ['P0', 'P1', 'P2', 'P3'] } }),
    });
    const body = (await everything.app.inject({ url: '/status.json' })).body;
    expect(body).not.toContain('INC-0000000a');
    expect(body).not.toContain('INC-0000000b');
  });

  it('reads visibility (the listing memo), never the workflows: one list, no query, also while no worker runs', async () => {
    const { app, gateway } = setup(STATES);
    gateway.getIncident = (id: string) => {
      gateway.queried.push(id);
      return Promise.reject(new Error(`no worker to answer the query of ${id}`));
    };
    for (const url of ['/status', '/status.json', '/status.atom'])
      expect((await app.inject({ url })).statusCode).toBe(200);
    expect(gateway.queried).toEqual([]);
    const json = (await app.inject({ url: '/status.json' })).json<{ incidents: { id: string }[] }>();
    expect(json.incidents.map((i) => i.id)).toEqual(['INC-00000001']);
  });

  it('a run from before the listing memo is read from its state (and left out when that fails)', async () => {
    const { app, gateway } = setup(STATES);
    gateway.withoutListing.add('INC-00000001');
    gateway.withoutListing.add('INC-0000000a');
    const json = (await app.inject({ url: '/status.json' })).json<{ incidents: { id: string }[] }>();
    expect(json.incidents.map((i) => i.id)).toEqual(['INC-00000001']);
    expect(gateway.queried.sort()).toEqual(['INC-00000001', 'INC-0000000a']);
  });

  it('the listing memo stays small: the latest public updates that fit, each message cut', () => {
    const state = incident({
      id: 'INC-000000f0',
      publicUpdates: Array.from({ length: 40 }, (_, i) => ({
        at: ago((40 - i) * 60_000),
        message: `${i} ${'é'.repeat(3_000)}`,
      })),
    });
    const listing = listingOf(state);
    expect(listing.publicUpdateCount).toBe(40);
    expect(listing.publicUpdates.at(-1)?.message.startsWith('39 ')).toBe(true);
    expect(listing.publicUpdates.every((u) => u.message.length <= LISTING_MESSAGE_CHARS)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(listing))).toBeLessThan(LISTING_UPDATES_BYTES + 1_024);
    expect(readListing({ listing }, 'INC-000000f0')).toEqual(listing);
    // Another incident's memo (carried by a run that continued as new) is not this one's.
    expect(readListing({ listing }, 'INC-000000f1')).toBeUndefined();
  });

  it('a P0 on a component is a major outage', async () => {
    const { app } = setup([
      incident({ id: 'INC-000000c0', severity: 'P0', publicUpdates: [{ at: ago(HOUR), message: 'Down' }] }),
    ]);
    const body = (await app.inject({ url: '/status.json' })).json<{ components: { status: string }[] }>();
    expect(body.components[0]?.status).toBe('major_outage');
  });

  it('security-related incidents never appear on any of the three', async () => {
    const { app } = setup(STATES);
    for (const url of ['/status', '/status.json', '/status.atom']) {
      const body = (await app.inject({ url })).body;
      for (const leak of [
        'INC-0000000a',
        'INC-0000000b',
        'Credential leak',
        'security update text',
        'Old breach',
      ])
        expect(body, `${url} shows ${leak}`).not.toContain(leak);
    }
  });

  it('an incident whose state cannot be read is left out (it might be security-related)', async () => {
    const { app, gateway } = setup(
      [
        incident({
          id: 'INC-000000d0',
          title: 'Unreadable',
          publicUpdates: [{ at: ago(HOUR), message: 'x' }],
        }),
      ],
      { policy: SHOW_P2_P3 },
    );
    gateway.withoutListing.add('INC-000000d0');
    gateway.getIncident = (id: string) => Promise.reject(new Error(`cannot read ${id}`));
    const body = (await app.inject({ url: '/status.json' })).json<{ incidents: unknown[] }>();
    expect(body.incidents).toEqual([]);
  });

  it('the HTML page escapes titles and updates and lists the resolved ones', async () => {
    const { app } = setup(STATES);
    const page = (await app.inject({ url: '/status' })).body;
    expect(page).toContain('Inference &lt;errors&gt; &amp; &quot;timeouts&quot;');
    expect(page).not.toContain('<errors>');
    expect(page).toContain('Resolved in the last 7 days');
    expect(page).toContain('Docs are fast again');
    expect(page).toContain('Partial outage');
    expect(page).not.toContain('Long ago');
  });

  it('status.atom is well-formed Atom with one entry per public update, opening and resolution', async () => {
    const { app } = setup(STATES, { policy: SHOW_P2_P3 });
    const res = await app.inject({ url: '/status.atom' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/atom\+xml/);
    const feed = parseXml(res.body);
    expect(feed.name).toBe('feed');
    expect(feed.attributes['xmlns']).toBe('http://www.w3.org/2005/Atom');
    for (const required of ['id', 'title', 'updated', 'author'])
      expect(childrenNamed(feed, required), required).toHaveLength(1);
    expect(childrenNamed(feed, 'link')[0]?.attributes['href']).toBe('https://api.example.com/status.atom');
    const entries = childrenNamed(feed, 'entry').map((e) => ({
      id: childrenNamed(e, 'id')[0]?.text,
      title: childrenNamed(e, 'title')[0]?.text,
      updated: childrenNamed(e, 'updated')[0]?.text ?? '',
      content: childrenNamed(e, 'content')[0]?.text,
    }));
    // INC-1: opened + 2 updates; INC-2: opened; INC-3: opened + 1 update + resolved; INC-4: opened + resolved.
    expect(entries).toHaveLength(3 + 1 + 3 + 2);
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
    expect(entries.map((e) => e.updated)).toEqual([...entries.map((e) => e.updated)].sort().reverse());
    expect(entries).toContainEqual(
      expect.objectContaining({
        title: 'INC-00000001 Update: Inference <errors> & "timeouts"',
        content: 'A fix is rolling out <soon> (ETA 30 min)',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({
        title: 'INC-00000003 Resolved: Docs were slow',
        content: 'Docs are fast again',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ title: 'INC-00000004 Resolved: Quietly fixed', content: 'Resolved' }),
    );
  });

  it('the feed stays well-formed with hostile text (control characters, lone surrogates, markup)', async () => {
    const { app } = setup([
      incident({
        id: 'INC-000000e0',
        title: 'bad \u0001 title \ud800 ]]> <![CDATA[ x',
        publicUpdates: [{ at: ago(HOUR), message: '</content></entry><entry>&nbsp;' }],
      }),
    ]);
    const feed = parseXml((await app.inject({ url: '/status.atom' })).body);
    const contents = childrenNamed(feed, 'entry').map((e) => childrenNamed(e, 'content')[0]?.text);
    expect(contents).toContain('</content></entry><entry>&nbsp;');
  });

  it('the checker itself refuses what is not well-formed', () => {
    expect(() => parseXml('<a><b></a></b>')).toThrow();
    expect(() => parseXml('<a>x & y</a>')).toThrow();
    expect(() => parseXml('<a>&nbsp;</a>')).toThrow();
    expect(() => parseXml('<a x=1></a>')).toThrow();
    expect(() => parseXml('<a></a><b></b>')).toThrow();
    expect(() => parseXml('<a>')).toThrow();
    expect(parseXml('<?xml version="1.0"?><a k="&lt;v&gt;">t&amp;<b/></a>')).toMatchObject({
      name: 'a',
      attributes: { k: '<v>' },
      text: 't&',
      children: [{ name: 'b' }],
    });
  });
});

describe('GET /outbox', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function outboxFile(lines: object[]): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'outbox-route-'));
    const file = join(dir, 'outbox.jsonl');
    await writeFile(file, lines.map((l) => `${JSON.stringify(l)}\n`).join('') + '{torn line\n');
    return file;
  }

  const MESSAGES = [
    {
      at: '2025-03-06T10:00:00.000Z',
      channel: 'pager',
      target: 'INC-00000001:on-call-engineer',
      text: 'P1 page',
      incidentId: 'INC-00000001',
    },
    {
      at: '2025-03-06T10:00:01.000Z',
      channel: 'email',
      target: 'alice@pno.example',
      subject: '[P1] <b>x</b>',
      text: 'mail <script>alert(1)</script>',
      incidentId: 'INC-00000001',
    },
    {
      at: '2025-03-06T10:00:02.000Z',
      channel: 'slack',
      target: '#pno-incidents',
      text: '🚨 INCIDENT & more',
      incidentId: 'INC-00000001',
    },
  ];

  it('lists every message newest first as JSON (?format=json or Accept)', async () => {
    const { app } = setup([], { outboxFile: await outboxFile(MESSAGES) });
    const byQuery = await app.inject({ url: '/outbox?format=json' });
    expect(byQuery.statusCode).toBe(200);
    const { messages } = byQuery.json<{
      messages: { channel: string; target: string; text: string; at: string }[];
    }>();
    expect(messages.map((m) => m.channel)).toEqual(['slack', 'email', 'pager']);
    expect(messages[1]).toMatchObject({
      target: 'alice@pno.example',
      text: 'mail <script>alert(1)</script>',
    });
    const byAccept = await app.inject({ url: '/outbox', headers: { accept: 'application/json' } });
    expect(byAccept.json()).toEqual(byQuery.json());
    const oneChannel = await app.inject({ url: '/outbox?format=json&channel=email' });
    expect(oneChannel.json<{ messages: unknown[] }>().messages).toHaveLength(1);
  });

  it('shows them as an escaped HTML page', async () => {
    const { app } = setup([], { outboxFile: await outboxFile(MESSAGES) });
    const res = await app.inject({ url: '/outbox', headers: { accept: 'text/html' } });
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('mail &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(res.body).toContain('[P1] &lt;b&gt;x&lt;/b&gt;');
    expect(res.body).not.toContain('<script>');
    expect(res.body.indexOf('#pno-incidents')).toBeLessThan(
      res.body.indexOf('INC-00000001:on-call-engineer'),
    );
  });

  it('an outbox with no file yet is empty', async () => {
    const { app } = setup([], { outboxFile: '/nonexistent/dir/outbox.jsonl' });
    expect((await app.inject({ url: '/outbox?format=json' })).json()).toEqual({ messages: [] });
  });

  it('is 404 when INCIDENT_OUTBOX is unset (production)', async () => {
    const { app } = setup([]);
    const res = await app.inject({ url: '/outbox' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'the outbox is off (production configuration)' },
    });
  });
});

describe('the status page on its own port (STATUS_PORT, statusPage.port)', () => {
  const STATUS_URLS = ['/status', '/status.json', '/status.atom'];

  it('is read from STATUS_PORT, else the policy; unset, the main listener serves it', () => {
    expect(loadSettings({}).statusPage).toBeUndefined();
    expect(loadSettings({ STATUS_PORT: '3001' }).statusPage).toEqual({ host: '127.0.0.1', port: 3001 });
    expect(
      loadSettings({ STATUS_PORT: '3001', HOST: '10.0.0.5', STATUS_HOST: '0.0.0.0' }).statusPage,
    ).toEqual({
      host: '0.0.0.0',
      port: 3001,
    });
    const file = policyFileWith({ statusPage: { port: 3002 } });
    expect(loadSettings({ INCIDENT_CONFIG: file }).statusPage?.port).toBe(3002);
    expect(loadSettings({ INCIDENT_CONFIG: file, STATUS_PORT: '3003' }).statusPage?.port).toBe(3003);
    expect(() => loadSettings({ STATUS_PORT: 'public' })).toThrow(/STATUS_PORT: expected a port number/);
  });

  it('the API listens on both: the public one serves the status page and nothing else, the main one no longer serves it', async () => {
    const env = {
      PORT: '0',
      STATUS_PORT: '0',
      ALERTMANAGER_WEBHOOK_TOKEN: 'am-token',
      // Nothing is asked of Temporal here.
      TEMPORAL_ADDRESS: '127.0.0.1:9',
      LOG_LEVEL: 'silent',
    };
    const { app, address, statusAddress } = await startApi(loadSettings(env), env);
    try {
      expect(statusAddress).toBeDefined();
      expect(statusAddress).not.toBe(address);
      for (const url of STATUS_URLS) expect((await fetch(`${address}${url}`)).status, url).toBe(404);
      expect((await fetch(`${address}/healthz`)).status).toBe(200);
      for (const url of [
        '/webhooks/alertmanager',
        '/api/incidents',
        '/metrics',
        '/readyz',
        '/outbox',
        '/healthz',
      ]) {
        const res = await fetch(`${statusAddress}${url}`, {
          method: url.startsWith('/webhooks') ? 'POST' : 'GET',
        });
        expect(res.status, url).toBe(404);
      }
    } finally {
      await app.close();
    }
    // Closing the API closes the status listener too.
    await expect(fetch(`${statusAddress}/status`)).rejects.toThrow();
  });

  it('the status listener answers with the same page', async () => {
    const gateway = new FakeGateway();
    for (const s of STATES) gateway.incidents.set(s.id, s);
    const status = buildStatusApp({ policy, incidents: gateway, publicUrl: 'https://status.example.com' });
    const json = (await status.inject({ url: '/status.json' })).json<{ incidents: { id: string }[] }>();
    expect(json.incidents.map((i) => i.id)).toEqual(['INC-00000001']);
    expect((await status.inject({ url: '/status.atom' })).body).toContain(
      'https://status.example.com/status.atom',
    );
    const main = buildApp({
      policy,
      incidents: gateway,
      webhookToken: 't',
      engineerTokens: new Map(),
      serveStatusPage: false,
    });
    for (const url of STATUS_URLS) expect((await main.inject({ url })).statusCode, url).toBe(404);
  });
});
