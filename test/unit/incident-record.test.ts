import { mkdtemp, appendFile, readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AlertBatch } from '../../src/domain/alert-mapping.ts';
import { toAlertBatch } from '../../src/domain/alert-mapping.ts';
import { webhookPayloadSchema } from '../../src/domain/alertmanager.ts';
import {
  STATE_BOUNDS,
  answerOf,
  fullIncident,
  isAnswer,
  missingFromRecord,
  serialisedBytes,
} from '../../src/domain/incident-record.ts';
import type { ArchivedEntry } from '../../src/domain/incident-record.ts';
import type { IncidentState } from '../../src/domain/incident.ts';
import { IncidentLifecycle } from '../../src/domain/lifecycle.ts';
import type { LifecycleBehaviour } from '../../src/domain/lifecycle.ts';
import { IncidentRecordFile, incidentRecordDir } from '../../src/incident-record-file.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import type { TestAlert } from '../support/alerts.ts';
import { policyWith } from '../support/policy.ts';

/*
 * The bounded state's rules, driven directly (the workflow tests in test/workflows/bounded-state.test.ts run
 * them on Temporal): what a run keeps, what it lets go, and that the two together are the whole incident.
 */

const M = 60_000;
const T0 = Date.parse('2026-03-03T10:00:00Z');
const policy = policyWith({ playbooks: { enabled: false } });

function batch(alerts: TestAlert[]): AlertBatch {
  return toAlertBatch(
    policy,
    webhookPayloadSchema.parse(alertmanagerPayload({ alerts, groupKey: 'g' })),
    1000,
  );
}

const pod = (i: number, status: 'firing' | 'resolved' = 'firing'): TestAlert => ({
  status,
  fingerprint: `cafe${i.toString(16).padStart(12, '0')}`,
  labels: { alertname: 'KubePodCrashLooping', severity: 'warning', pod: `pod-${i}` },
});

function lifecycle(behaviour: Partial<LifecycleBehaviour> = {}, carried?: IncidentState) {
  return new IncidentLifecycle(
    {
      incidentId: 'INC-0000beef',
      ...(carried
        ? { carried: { state: carried, runtime: { escalation: { level: 0, fired: [], notified: [] } } } }
        : {}),
    },
    policy,
    { workflowId: 'alertgroup-1', namespace: 'default', behaviour },
  );
}

/** Feeds `n` distinct pods in batches of 100, archiving after each as the workflow's dispatch does. */
function feed(run: IncidentLifecycle, n: number, archived: ArchivedEntry[], now = T0): void {
  for (let start = 0; start < n; start += 100) {
    run.receiveAlerts(batch(Array.from({ length: Math.min(100, n - start) }, (_, j) => pod(start + j))), now);
    archived.push(...run.takeArchive());
  }
}

describe('bounded incident state', () => {
  it('keeps counts, every alert’s status and the latest entries; what it lets go makes the whole incident again', () => {
    const run = lifecycle();
    const archived: ArchivedEntry[] = [];
    feed(run, 2_000, archived);
    const state = run.state as IncidentState;
    expect(state.record?.counts).toMatchObject({ alerts: 2_000, firing: 2_000 });
    expect(Object.keys(state.record?.alertIndex ?? {})).toHaveLength(2_000);
    expect(state.alerts.length).toBeLessThanOrEqual(STATE_BOUNDS.alerts + STATE_BOUNDS.slack);
    expect(state.timeline.length).toBeLessThanOrEqual(STATE_BOUNDS.timeline + STATE_BOUNDS.slack);
    // Indexes are consecutive per section: nothing lost, nothing twice.
    const timelineIndexes = archived.filter((e) => e.section === 'timeline').map((e) => e.index);
    expect(timelineIndexes).toEqual(timelineIndexes.map((_, i) => i));
    const full = fullIncident(state, archived);
    expect(full.alerts.map((a) => a.labels['pod'])).toEqual(
      Array.from({ length: 2_000 }, (_, i) => `pod-${i}`),
    );
    expect(full.timeline).toHaveLength(state.record?.counts.timeline ?? -1);
    // Resolving them all is told by the counts, though most are no longer in the state.
    run.receiveAlerts(
      batch(Array.from({ length: 2_000 }, (_, i) => pod(i, 'resolved')).slice(0, 1000)),
      T0 + M,
    );
    run.receiveAlerts(batch(Array.from({ length: 2_000 }, (_, i) => pod(i, 'resolved')).slice(1000)), T0 + M);
    expect(state.record?.counts.firing).toBe(0);
    expect(state.status).toBe('mitigated');
  });

  it('a run that keeps everything (before the patch) lets nothing go', () => {
    const run = lifecycle({ boundedState: false });
    const archived: ArchivedEntry[] = [];
    feed(run, 500, archived);
    expect(archived).toHaveLength(0);
    expect(run.state?.alerts).toHaveLength(500);
    expect(run.state?.record).toBeUndefined();
  });

  it('a state carried from a run that kept everything is indexed and bounded from then on', () => {
    const old = lifecycle({ boundedState: false });
    feed(old, 500, []);
    old.receiveAlerts(batch([pod(7, 'resolved')]), T0 + M);
    const run = lifecycle({}, structuredClone(old.state as IncidentState));
    const state = run.state as IncidentState;
    expect(state.record?.counts).toMatchObject({ alerts: 500, firing: 499 });
    expect(state.record?.alertIndex?.[`cafe${(7).toString(16).padStart(12, '0')}`]).toBe('resolved');
    const archived = run.takeArchive();
    expect(archived.filter((e) => e.section === 'alerts')).toHaveLength(500 - STATE_BOUNDS.alerts);
    expect(fullIncident(state, archived).alerts).toHaveLength(500);
  });

  /** Feeds 450 alerts one per batch; the sizes of the alert batches let go. */
  const alertArchives = (run: IncidentLifecycle): number[] => {
    const calls: number[] = [];
    run.receiveAlerts(batch([pod(0)]), T0);
    for (let i = 1; i < 450; i++) {
      run.receiveAlerts(batch([pod(i)]), T0 + i * 1_000);
      const out = run.takeArchive().filter((e) => e.section === 'alerts');
      if (out.length > 0) calls.push(out.length);
    }
    return calls;
  };

  it('runs before `alerts-let-go-in-batches` keep letting alerts go one at a time (their histories replay)', () => {
    expect(alertArchives(lifecycle({ alertsInBatches: false }))).toHaveLength(350);
  });

  it('lets alerts go in batches, not one activity per new alert', () => {
    const run = lifecycle();
    const calls = alertArchives(run);
    // 450 alerts, 100 kept: 350 let go in a few batches of about `slack`, never one by one.
    expect(calls.reduce((a, b) => a + b, 0)).toBe(450 - (run.state?.alerts.length ?? 0));
    expect(calls.length).toBeLessThanOrEqual(4);
    expect(Math.min(...calls)).toBeGreaterThan(STATE_BOUNDS.slack / 2);
  });

  it('a full read says how much of what was let go the store lacks, section by section', () => {
    const run = lifecycle();
    const archived: ArchivedEntry[] = [];
    feed(run, 1_000, archived);
    const state = run.state as IncidentState;
    expect(missingFromRecord(state, archived)).toEqual({});
    // A store that is not the worker's (or an append on its way): counted, so the full read refuses to guess.
    const of = (section: string) => archived.filter((e) => e.section === section);
    const timeline = of('timeline');
    expect(timeline.length).toBeGreaterThan(0);
    expect(of('alerts').length).toBe(state.record?.counts.alertsArchived);
    expect(missingFromRecord(state, [])).toEqual({
      timeline: timeline.length,
      alerts: of('alerts').length,
    });
    expect(
      missingFromRecord(
        state,
        archived.filter((e) => !(e.section === 'timeline' && e.index === 3)),
      ),
    ).toEqual({ timeline: 1 });
    // Alert snapshots let go count too: a store with the whole timeline but not the alerts is not whole.
    expect(
      missingFromRecord(
        state,
        archived.filter((e) => e.section !== 'alerts'),
      ),
    ).toEqual({
      alerts: of('alerts').length,
    });
    // A retried append repeats entries: still complete.
    expect(missingFromRecord(state, [...archived, ...timeline.slice(0, 10)])).toEqual({});
  });

  it('alerts with large labels are kept by size too', () => {
    const run = lifecycle();
    const big = (i: number): TestAlert => ({ ...pod(i), annotations: { description: 'x'.repeat(60_000) } });
    run.receiveAlerts(batch(Array.from({ length: 20 }, (_, i) => big(i))), T0);
    run.takeArchive();
    expect(serialisedBytes(run.state?.alerts)).toBeLessThanOrEqual(STATE_BOUNDS.alertBytes);
    expect(run.state?.alerts.length).toBeGreaterThan(0);
  });

  it('large alerts arriving one at a time go in batches too: down to three quarters of the byte budget', () => {
    const run = lifecycle();
    // 60 KB each: the 256 KiB budget holds four; one archive per new alert without the batch target.
    const big = (i: number): TestAlert => ({ ...pod(i), annotations: { description: 'x'.repeat(60_000) } });
    const calls: number[] = [];
    for (let i = 0; i < 40; i++) {
      run.receiveAlerts(batch([big(i)]), T0 + i * 1_000);
      const out = run.takeArchive().filter((e) => e.section === 'alerts');
      if (out.length > 0) {
        calls.push(out.length);
        expect(serialisedBytes(run.state?.alerts)).toBeLessThanOrEqual(
          Math.floor(STATE_BOUNDS.alertBytes * 0.75),
        );
      }
    }
    expect(calls.reduce((a, b) => a + b, 0)).toBe(40 - (run.state?.alerts.length ?? 0));
    // Each archive lets go of at least two (the room of a quarter of the budget): never one activity per alert.
    expect(Math.min(...calls)).toBeGreaterThanOrEqual(2);
  });

  it('before continuing as new, a state over the budget lets go of more until it fits', () => {
    const run = lifecycle();
    feed(run, 3_000, []);
    const before = serialisedBytes(run.state);
    const extra = run.takeArchive(STATE_BOUNDS, 128 * 1024);
    expect(extra.length).toBeGreaterThan(0);
    expect(serialisedBytes(run.state)).toBeLessThanOrEqual(128 * 1024);
    expect(serialisedBytes(run.state)).toBeLessThan(before);
    // Firing alerts are never forgotten by the index, so the counts stay right.
    expect(run.state?.record?.counts.firing).toBe(3_000);
  });

  it('the alert index forgets the oldest resolved fingerprints past its bound, never a firing one', () => {
    const run = lifecycle();
    feed(run, 300, []);
    run.receiveAlerts(
      batch(Array.from({ length: 300 }, (_, i) => pod(i, i < 200 ? 'resolved' : 'firing'))),
      T0 + M,
    );
    run.takeArchive({ ...STATE_BOUNDS, alertIndex: 150 });
    const index = run.state?.record?.alertIndex ?? {};
    expect(Object.keys(index)).toHaveLength(150);
    expect(Object.values(index).filter((s) => s === 'firing')).toHaveLength(100);
    expect(run.state?.record?.counts.forgottenAlerts).toBe(150);
  });

  it('an update answers a small summary, told apart from a state', () => {
    const run = lifecycle();
    feed(run, 1_000, []);
    const answer = answerOf(run.state as IncidentState);
    expect(isAnswer(answer)).toBe(true);
    expect(isAnswer(run.state as IncidentState)).toBe(false);
    expect(serialisedBytes(answer)).toBeLessThan(1_024);
  });
});

describe('flap damping', () => {
  const flap = (status: 'firing' | 'resolved'): TestAlert => ({ ...pod(1, status) });
  const mitigatedPosts = (run: IncidentLifecycle) =>
    run.outbox.filter((o) => o.kind === 'post' && o.purpose === 'mitigated notice').length;

  it('tells the channels of a flapping alert’s mitigation once per alerts.flapDamping, and records every flap', () => {
    const run = lifecycle();
    run.receiveAlerts(batch([flap('firing')]), T0);
    // 60 flaps, one a minute: 6 notices in the hour with the default 10 minutes, not 60.
    for (let i = 0; i < 60; i++) {
      run.receiveAlerts(batch([flap('resolved')]), T0 + i * M + 30_000);
      run.receiveAlerts(batch([flap('firing')]), T0 + (i + 1) * M);
    }
    expect(mitigatedPosts(run)).toBe(6);
    expect(run.state?.record?.counts.damped).toBe(54);
    expect(run.state?.timeline.filter((t) => t.kind === 'mitigated')).toHaveLength(60);
  });

  it('an engineer’s mitigation is always told', () => {
    const run = lifecycle();
    run.receiveAlerts(batch([flap('firing')]), T0);
    run.receiveAlerts(batch([flap('resolved')]), T0 + M);
    run.receiveAlerts(batch([flap('firing')]), T0 + 2 * M);
    run.apply('mitigate', { by: 'alice' }, T0 + 3 * M);
    expect(mitigatedPosts(run)).toBe(2);
  });

  it('runs before the patch post every flap', () => {
    const run = lifecycle({ boundedState: false });
    run.receiveAlerts(batch([flap('firing')]), T0);
    for (let i = 0; i < 10; i++) {
      run.receiveAlerts(batch([flap('resolved')]), T0 + i * M + 30_000);
      run.receiveAlerts(batch([flap('firing')]), T0 + (i + 1) * M);
    }
    expect(mitigatedPosts(run)).toBe(10);
  });
});

describe('incident record file', () => {
  it('appends durably, reads each entry once (a retried append repeats), survives a torn line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'records-'));
    const file = new IncidentRecordFile(dir);
    const entries: ArchivedEntry[] = [
      { section: 'timeline', index: 0, value: { at: 'a', kind: 'opened', actor: 'x', message: 'm' } },
      { section: 'alerts', index: 0, value: { fingerprint: 'f' } },
    ];
    await file.append('INC-0000beef', entries);
    await appendFile(path.join(dir, 'INC-0000beef.jsonl'), '{"section":"timeline","ind');
    // The first append after a torn line must not be swallowed by it (a new entry: nothing else holds it).
    await file.append('INC-0000beef', [{ section: 'timeline', index: 1, value: 'second' }]);
    await file.append('INC-0000beef', entries);
    expect(await file.read('INC-0000beef')).toEqual([
      ...entries,
      { section: 'timeline', index: 1, value: 'second' },
    ]);
    expect(await readFile(path.join(dir, 'INC-0000beef.jsonl'), 'utf8')).toContain('"index":1');
    expect(await file.read('INC-00000000')).toEqual([]);
  });

  it('names files only by well-formed incident ids', async () => {
    const file = new IncidentRecordFile(await mkdtemp(path.join(tmpdir(), 'records-')));
    await expect(file.read('../../etc/passwd')).rejects.toThrow('not an incident id');
    await expect(file.append('INC-../x', [{ section: 'timeline', index: 0, value: 1 }])).rejects.toThrow(
      'not an incident id',
    );
  });

  it('lives in INCIDENT_RECORDS_DIR, else records/ in the data directory', () => {
    expect(incidentRecordDir({ INCIDENT_RECORDS_DIR: '/srv/records' })).toBe('/srv/records');
    expect(incidentRecordDir({ INCIDENT_DATA_DIR: '/srv/data' })).toBe(path.join('/srv/data', 'records'));
    expect(incidentRecordDir({})).toBe(path.join('.data', 'records'));
  });
});

describe('deploy/k8s: the worker and the API share the record store', () => {
  it('both mount the same claim at the data directory they are told', async () => {
    const file = path.resolve(import.meta.dirname, '../../deploy/k8s/incident-response.yaml');
    const docs = parseAllDocuments(await readFile(file, 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> },
    );
    const claim = docs.find((d) => d.kind === 'PersistentVolumeClaim');
    expect(claim?.spec['accessModes']).toEqual(['ReadWriteMany']);
    for (const name of ['incident-worker', 'incident-api']) {
      const deployment = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === name);
      const pod = (
        deployment?.spec['template'] as {
          spec: {
            volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
            containers: {
              env: { name: string; value?: string }[];
              volumeMounts: { name: string; mountPath: string }[];
            }[];
          };
        }
      ).spec;
      const container = pod.containers[0];
      const dataDir = container?.env.find((e) => e.name === 'INCIDENT_DATA_DIR')?.value;
      const mount = container?.volumeMounts.find((m) => m.mountPath === dataDir);
      expect(mount, name).toBeDefined();
      const volume = pod.volumes.find((v) => v.name === mount?.name);
      expect(volume?.persistentVolumeClaim?.claimName, name).toBe(claim?.metadata.name);
    }
  });
});
