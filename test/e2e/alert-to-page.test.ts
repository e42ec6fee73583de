import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { ALICE_ALSO_LEADS, policyFileWith } from '../support/policy.ts';
import { startStack } from '../support/stack.ts';
import type { Stack } from '../support/stack.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const run = promisify(execFile);

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let stack: Stack;

beforeAll(async () => {
  server = await startTestDevServer();
  stack = await startStack({
    address: server.address,
    name: 'e2e-page',
    workflowBundle: await workflowBundle(),
    slackChannels: ['#pno-incidents', '#pno-leadership', '#pno-critical-alerts'],
    // Alice resolves a P1 here: she is also the engineering lead (the policy's permissions).
    env: { INCIDENT_CONFIG: policyFileWith(ALICE_ALSO_LEADS) },
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
});

async function postAlert(payload: unknown) {
  const res = await stack.postAlerts(payload);
  return {
    status: res.status,
    body: (await res.json()) as { incidents: { id: string; workflowId: string; action: string }[] },
  };
}

async function incidentCli(...args: string[]) {
  return run('bin/incident', args, { env: stack.env, encoding: 'utf8' });
}

describe('alert to page, on a real Temporal dev server', () => {
  it('an Alertmanager webhook creates a durable incident that pages Slack and shows in the CLI and web UI search', async () => {
    const groupKey = `{}:{alertname="HighErrorRate",run="${randomUUID()}"}`;
    const first = await postAlert(alertmanagerPayload({ groupKey }));
    expect(first.status).toBe(202);
    const [incident] = first.body.incidents;
    expect(incident).toMatchObject({ action: 'started', id: expect.stringMatching(/^INC-[0-9a-f]{8}$/) });

    // The Slack stand-in receives the initial report with the Slack API's request shape.
    const posts = await stack.slack.waitForPosts(2);
    const report = posts.find((p) => p.channel === '#pno-incidents');
    expect(report?.token).toBe(stack.slackToken);
    expect(report?.text).toContain('🚨 INCIDENT ALERT - P1');
    expect(report?.text).toContain(incident?.id);

    // Redelivery lands in the same workflow.
    const second = await postAlert(alertmanagerPayload({ groupKey }));
    expect(second.body.incidents[0]).toMatchObject({
      action: 'signalled',
      id: incident?.id,
      workflowId: incident?.workflowId,
    });

    // `incident show --json` reads the workflow's state.
    const shown = JSON.parse(
      (await incidentCli('show', incident?.id ?? '', '--json')).stdout,
    ) as IncidentState;
    expect(shown).toMatchObject({
      id: incident?.id,
      severity: 'P1',
      status: 'triggered',
      workflowId: incident?.workflowId,
    });
    expect(shown.alerts).toHaveLength(1);
    expect(shown.timeline.some((t) => t.kind === 'notified')).toBe(true);

    const listed = JSON.parse((await incidentCli('list', '--json')).stdout) as {
      id: string;
      title: string;
    }[];
    expect(listed.find((i) => i.id === incident?.id)).toMatchObject({
      title: 'HighErrorRate on pno-physics-bench',
    });

    // The web UI finds it by severity (visibility search attribute) and shows the static summary.
    const client = stack.client;
    {
      const found: string[] = [];
      for await (const w of client.workflow.list({
        query: `IncidentSeverity = 'P1' AND IncidentId = '${incident?.id}'`,
      })) {
        found.push(w.workflowId);
      }
      expect(found).toEqual([incident?.workflowId]);
      const description = await client.workflow.getHandle(incident?.workflowId ?? '').describe();
      expect(await description.staticSummary()).toBe('P1 HighErrorRate on pno-physics-bench');
    }
  });

  it('a group that fires again after its incident was resolved opens a new incident linked to the previous one', async () => {
    const groupKey = `{}:{alertname="HighErrorRate",refire="${randomUUID()}"}`;
    const first = (await postAlert(alertmanagerPayload({ groupKey }))).body.incidents[0];
    await incidentCli('resolve', first?.id ?? '', '--by', 'alice', '--root-cause', 'restarted the pods');
    // Whether this lands in the closing run (signalled) or a new run (started), it opens a new incident.
    const again = (await postAlert(alertmanagerPayload({ groupKey }))).body.incidents[0];
    expect(again?.workflowId).toBe(first?.workflowId);
    let next: { id: string; workflowId: string } | undefined;
    for (let i = 0; i < 50 && !next; i += 1) {
      const listed = JSON.parse((await incidentCli('list', '--json')).stdout) as {
        id: string;
        workflowId: string;
      }[];
      next = listed.find((n) => n.workflowId === first?.workflowId && n.id !== first?.id);
      if (!next) await new Promise((r) => setTimeout(r, 200));
    }
    let state: IncidentState | undefined;
    for (let i = 0; i < 50 && state?.previousIncidentId === undefined; i += 1) {
      state = JSON.parse((await incidentCli('show', next?.id ?? '', '--json')).stdout) as IncidentState;
      if (state.previousIncidentId === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    expect(state).toMatchObject({ previousIncidentId: first?.id, status: 'triggered' });
    expect(state?.alerts).toHaveLength(1);
    // The resolved one is still readable.
    const old = JSON.parse((await incidentCli('show', first?.id ?? '', '--json')).stdout) as IncidentState;
    expect(old).toMatchObject({ status: 'resolved', rootCause: 'restarted the pods' });
  });

  it('a payload whose alerts are all resolved never starts an incident', async () => {
    const groupKey = `{}:{alertname="HighErrorRate",quiet="${randomUUID()}"}`;
    const res = await postAlert(alertmanagerPayload({ groupKey, alerts: [{ status: 'resolved' }] }));
    expect(res.status).toBe(202);
    expect(res.body.incidents[0]).toMatchObject({ action: 'ignored', id: null });
  });

  it('an unknown id exits 1; readyz is 200 with a worker polling', async () => {
    const err = await incidentCli('show', 'INC-00000000').catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('no incident INC-00000000');
    const ready = await fetch(`${stack.api.address}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('a malformed webhook is a 400 and starts nothing', async () => {
    const before = JSON.parse((await incidentCli('list', '--json')).stdout) as unknown[];
    const res = await stack.postAlerts({
      ...alertmanagerPayload({ groupKey: 'bad' }),
      alerts: [{ status: 'firing' }],
    });
    expect(res.status).toBe(400);
    const after = JSON.parse((await incidentCli('list', '--json')).stdout) as unknown[];
    expect(after).toHaveLength(before.length);
  });
});
