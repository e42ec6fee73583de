/**
 * Issue 11: the policy is passed once per run, by content hash, and people's phone numbers and e-mail
 * addresses stay out of workflow input. What a new incident's start carries (the API's signal-with-start,
 * a declaration), the snapshot a workflow runs on, how a worker finds a policy by hash, and what the
 * deliveries the workflow schedules hold.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { describe, expect, it, vi } from 'vitest';
import type { IncidentInput } from '../../src/contract/messages.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import { deliveriesFor } from '../../src/domain/delivery.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import type { Policy } from '../../src/domain/policy.ts';
import { canonicalJson, withoutContacts } from '../../src/domain/workflow-policy.ts';
import {
  PolicySnapshots,
  policyRefOf,
  policySnapshot,
  policySnapshotDir,
  writePolicySnapshot,
} from '../../src/policy-snapshots.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const policy = loadDefaultPolicy();

/** Every e-mail address and phone number of the policy's people (and their PagerDuty ids). */
const contactsOf = (p: Policy): string[] =>
  Object.values(p.people).flatMap((person) =>
    [person.email, person.phone, person.pagerduty].filter((c): c is string => Boolean(c)),
  );

/** Fails naming the first contact detail found in `value`'s JSON. */
function expectNoContacts(value: unknown, of: Policy = policy): void {
  const json = JSON.stringify(value);
  const found = contactsOf(of).filter((c) => json.includes(c));
  expect(found, 'contact details in workflow data').toEqual([]);
  expect(json).not.toMatch(/@pno\.example|\+1555/);
}

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'pno-policies-'));

describe('the policy a workflow sees', () => {
  it('has no e-mail address, phone number or PagerDuty id; names, roles and Slack users stay', () => {
    expect(contactsOf(policy).length).toBeGreaterThan(10);
    const snapshot = withoutContacts(policy);
    expectNoContacts(snapshot);
    expect(snapshot.people['alice']).toEqual({
      name: 'Alice Oncall',
      roles: ['on-call-engineer'],
      slack: 'U0ALICE',
    });
    // Everything else is the policy as loaded.
    expect({ ...snapshot, people: undefined }).toEqual({ ...policy, people: undefined });
  });

  it('is named by the sha256 of its canonical JSON: key order does not matter, contents do', () => {
    const { ref, json } = policySnapshot(policy);
    expect(ref.hash).toMatch(/^[0-9a-f]{64}$/);
    const reversed = JSON.parse(canonicalJson(policy), (_key, value: unknown) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).reverse())
        : value,
    ) as Policy;
    expect(Object.keys(reversed)[0]).not.toBe(Object.keys(policy)[0]);
    expect(policyRefOf(reversed)).toEqual(ref);
    // As a workflow receives it (JSON through the payload converter): the same hash.
    expect(policyRefOf(JSON.parse(json) as Policy)).toEqual(ref);
    expect(policyRefOf(policyWith({ escalation: { acknowledgeWithin: { P0: '6m' } } }))).not.toEqual(ref);
    // A new phone number is not a new policy for workflows (the activity reads it when it sends).
    expect(policyRefOf(policyWith({ people: { alice: { phone: '+15550199999' } } }))).toEqual(ref);
  });
});

describe('policy snapshots by hash', () => {
  it('a worker on another policy file finds the API’s policy in the snapshot directory, without contacts', async () => {
    const dir = tempDir();
    const apiPolicy = policyWith({ escalation: { acknowledgeWithin: { P0: '7m' } } });
    const ref = await writePolicySnapshot(dir, apiPolicy);
    const file = readFileSync(path.join(dir, `${ref.hash}.json`), 'utf8');
    expect(contactsOf(apiPolicy).filter((c) => file.includes(c))).toEqual([]);
    // Written once: a second write of the same policy leaves the file alone.
    expect(await writePolicySnapshot(dir, apiPolicy)).toEqual(ref);

    const worker = new PolicySnapshots({ current: policy, dir });
    expect(worker.current).not.toEqual(ref);
    const obtained = await worker.obtain(ref.hash);
    expect(obtained.missing).toBeUndefined();
    expect(obtained.hash).toBe(ref.hash);
    expect(obtained.policy.escalation.acknowledgeWithin.P0).toBe(7 * 60_000);
    expectNoContacts(obtained.policy);
    // The worker's own policy needs no file; contacts are looked up in it by handle.
    expect(await worker.obtain(worker.current.hash)).toEqual({
      policy: withoutContacts(policy),
      hash: worker.current.hash,
    });
    expect(worker.person('alice')?.phone).toBe('+15550100001');
    expect(worker.person('constructor')).toBeUndefined();
  });

  it('an unknown, tampered or malformed hash gets the worker’s current policy, and says why', async () => {
    const dir = tempDir();
    const worker = new PolicySnapshots({ current: policy, dir });
    const unknown = 'a'.repeat(64);
    expect(await worker.obtain(unknown)).toEqual({
      policy: withoutContacts(policy),
      hash: worker.current.hash,
      missing: {
        requested: unknown,
        reason: `not this worker’s policy, and no snapshot ${path.join(dir, `${unknown}.json`)}`,
      },
    });

    const other = policyWith({ escalation: { acknowledgeWithin: { P0: '9m' } } });
    const ref = await writePolicySnapshot(dir, other);
    const file = path.join(dir, `${ref.hash}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('540000', '1'));
    const tampered = await worker.obtain(ref.hash);
    expect(tampered.hash).toBe(worker.current.hash);
    expect(tampered.missing?.reason).toContain('does not hold the policy of its name');

    const malformed = await worker.obtain('../../etc/passwd');
    expect(malformed.missing).toEqual({
      requested: '../../etc/passwd',
      reason: 'not a policy hash (64 hex digits)',
    });
    const noDir = await new PolicySnapshots({ current: policy }).obtain(unknown);
    expect(noDir.missing?.reason).toBe('not this worker’s policy, and no snapshot directory');
  });

  it('lives in INCIDENT_POLICY_DIR, else policies/ in the data directory', () => {
    expect(policySnapshotDir({})).toBe(path.join('.data', 'policies'));
    expect(policySnapshotDir({ INCIDENT_DATA_DIR: '/var/lib/pno' })).toBe('/var/lib/pno/policies');
    expect(policySnapshotDir({ INCIDENT_DATA_DIR: '/x', INCIDENT_POLICY_DIR: '/shared/p' })).toBe(
      '/shared/p',
    );
  });
});

/** A client that records what the gateway starts, and answers as Temporal would. */
function recordingClient() {
  const converter = loadDataConverter();
  const started: { kind: 'signalWithStart' | 'start'; input: IncidentInput; bytes: number }[] = [];
  const client = {
    options: { loadedDataConverter: converter, namespace: 'default', identity: 'test' },
    withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    workflowService: {
      signalWithStartWorkflowExecution: (request: {
        input: { payloads: { data: Uint8Array; metadata: Record<string, Uint8Array> }[] };
      }) => {
        const payload = request.input.payloads[0]!;
        started.push({
          kind: 'signalWithStart',
          input: converter.payloadConverter.fromPayload<IncidentInput>(payload),
          bytes: payload.data.byteLength,
        });
        return Promise.resolve({ runId: 'run-1', started: true });
      },
      describeTaskQueue: () => Promise.resolve({ pollers: [{}] }),
    },
    workflow: {
      start: (_type: string, options: { workflowId: string; args: [IncidentInput] }) => {
        const payload = converter.payloadConverter.toPayload(options.args[0]);
        started.push({ kind: 'start', input: options.args[0], bytes: payload.data?.byteLength ?? 0 });
        return Promise.resolve({ workflowId: options.workflowId });
      },
      getHandle: () => ({ query: () => Promise.resolve({ id: 'INC-00000001' }) }),
    },
  } as unknown as Client;
  return { client, started };
}

describe('what a new incident’s start carries', () => {
  it('the webhook’s signal-with-start and a declaration name the policy by hash; its snapshot is written first', async () => {
    const dir = tempDir();
    const { client, started } = recordingClient();
    const incidents = new TemporalIncidents(client, 'q', policy, {
      maintenance: { activeFor: () => Promise.resolve(undefined) },
      policySnapshotDir: dir,
    });
    const batch = toAlertBatch(
      policy,
      webhookPayloadSchema.parse(alertmanagerPayload({ alerts: [{ labels: { severity: 'page' } }] })),
      1000,
    );
    expect(await incidents.ingestAlerts(batch)).toMatchObject({ action: 'started' });
    await incidents.declare({ by: 'alice', severity: 'P1', title: 'Checkout down' });

    const ref = policyRefOf(policy);
    expect(started.map((s) => s.kind)).toEqual(['signalWithStart', 'start']);
    for (const { input, bytes } of started) {
      expect(input.policy).toBeUndefined();
      expect(input.policyRef).toEqual(ref);
      expectNoContacts(input);
      // The whole policy was 11 KB and more of every signal-with-start; the reference is a few dozen bytes.
      expect(bytes).toBeLessThan(400);
    }
    expect(Buffer.byteLength(JSON.stringify({ incidentId: 'INC-00000001', policy }))).toBeGreaterThan(10_000);
    // The worker, whatever its own policy, finds it by that hash.
    const worker = new PolicySnapshots({ current: policyWith({ links: { webUi: 'http://x' } }), dir });
    expect((await worker.obtain(ref.hash)).missing).toBeUndefined();
  });
});

describe('a snapshot write that hangs', () => {
  it('delays the first start by the wait at most, later ones not at all; the incident starts, by hash, and it is said once', async () => {
    const { client, started } = recordingClient();
    let writes = 0;
    const incidents = new TemporalIncidents(client, 'q', policy, {
      maintenance: { activeFor: () => Promise.resolve(undefined) },
      policySnapshotDir: tempDir(),
      policyWriteWaitMs: 200,
      // A stalled network volume: the write never ends.
      writePolicy: () => {
        writes += 1;
        return new Promise(() => undefined);
      },
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const batch = toAlertBatch(
        policy,
        webhookPayloadSchema.parse(alertmanagerPayload({ alerts: [{ labels: { severity: 'page' } }] })),
        1000,
      );
      // Unbounded, this start would wait for ever (the test would time out).
      expect(await incidents.ingestAlerts(batch)).toMatchObject({ action: 'started' });
      expect(started[0]?.input.policyRef).toEqual(policyRefOf(policy));
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('still being written'));
      // The next start neither waits for that write again nor starts a second one.
      await incidents.declare({ by: 'alice', severity: 'P1', title: 'Checkout down' });
      expect(started).toHaveLength(2);
      expect(writes).toBe(1);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('what the workflow hands the deliver activity', () => {
  it('names people by handle, never with their e-mail address or phone number', () => {
    // The lifecycle over the policy a run sees, and over an old run's snapshot that still has contacts.
    for (const seen of [withoutContacts(policy), policy]) {
      const run = new IncidentLifecycle({ incidentId: 'INC-0000beef' }, seen, {
        workflowId: 'alertgroup-1',
        namespace: 'default',
      });
      run.receiveAlerts(
        toAlertBatch(
          seen,
          webhookPayloadSchema.parse(
            alertmanagerPayload({ alerts: [{ labels: { severity: 'page', alertname: 'ServiceDown' } }] }),
          ),
          1000,
        ),
        0,
      );
      run.apply('escalate', { by: 'alice', reason: 'need more hands' }, 1000);
      const state = run.state as IncidentState;
      const outgoing = run.outbox.splice(0);
      const deliveries = deliveriesFor(seen, state, outgoing, 'http://ui');
      const notify = deliveries.filter((d) => d.kind === 'notify');
      expect(notify.map((d) => d.contacts.handle)).toContain('alice');
      expect(notify.find((d) => d.contacts.handle === 'alice')?.contacts).toEqual({
        handle: 'alice',
        name: 'Alice Oncall',
        slack: 'U0ALICE',
      });
      expectNoContacts(deliveries);
      // What comes back (receipts name the person by handle) and the state it becomes.
      outgoing.forEach((out, i) =>
        run.delivered(out, deliveries[i], 2000, {
          ok: true,
          detail: 'sent',
          receipts: [{ channel: 'sms', target: 'alice', ok: true, detail: 'twilio message SM1' }],
        }),
      );
      expectNoContacts(run.state);
    }
  });
});
