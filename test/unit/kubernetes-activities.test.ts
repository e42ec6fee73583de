/**
 * The pure parts of the playbooks' Kubernetes activities (src/activities/playbooks/kubernetes.ts): quantities,
 * revisions, selectors, template comparison, rollout status, the rollback patch, the cooldown record, where
 * the cluster configuration comes from, and the Role of deploy/k8s/rbac.yaml against what the activities
 * declare they call. The activities themselves run against a real control plane in
 * test/e2e/kube-activities.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  PLAYBOOK_RBAC_RULES,
  canonicalJson,
  labelSelectorToString,
  loadKubeConfig,
  normalizeTemplate,
  parseClaimRecord,
  parseQuantity,
  parseRevision,
  playbookRbacUnion,
  podHealthOf,
  rollbackPatch,
  rolloutStatusOf,
  sameTemplate,
} from '../../src/activities/playbooks/kubernetes.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('parseQuantity', () => {
  it.each([
    ['100m', 0.1],
    ['0.5', 0.5],
    ['2', 2],
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['500M', 5e8],
    ['1e3', 1000],
    ['1E', 1e18],
    ['1024Ki', 2 ** 20],
    ['.5', 0.5],
  ])('%s is %d', (q, value) => {
    expect(parseQuantity(q)).toBeCloseTo(value, 9);
  });

  it.each(['', 'abc', '1Qi', '--1', '1 m'])('%j is not a quantity', (q) => {
    expect(parseQuantity(q)).toBeUndefined();
  });
});

describe('parseRevision', () => {
  it('reads whole numbers and nothing else', () => {
    expect(parseRevision('3')).toBe(3);
    expect(parseRevision(' 12 ')).toBe(12);
    expect(parseRevision(undefined)).toBe(0);
    expect(parseRevision('x')).toBe(0);
    expect(parseRevision('1.5')).toBe(0);
  });
});

describe('labelSelectorToString', () => {
  it('writes matchLabels and every operator as the API reads them', () => {
    expect(
      labelSelectorToString({
        matchLabels: { tier: 'web', app: 'pno' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'canary'] },
          { key: 'track', operator: 'NotIn', values: ['old'] },
          { key: 'owned', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('app=pno,tier=web,env in (canary,prod),track notin (old),owned,!legacy');
    expect(labelSelectorToString(undefined)).toBe('');
  });
});

const template = (image: string, hash?: string): k8s.V1PodTemplateSpec => ({
  metadata: { labels: { app: 'pno', ...(hash ? { 'pod-template-hash': hash } : {}) } },
  spec: { containers: [{ name: 'bench', image, resources: { requests: { cpu: '100m' } } }] },
});

describe('template comparison', () => {
  it('ignores pod-template-hash, key order and null members, and sees any other difference', () => {
    expect(sameTemplate(template('a:1'), template('a:1', '5d8f'))).toBe(true);
    const reordered = {
      spec: { containers: [{ resources: { requests: { cpu: '100m' } }, image: 'a:1', name: 'bench' }] },
      metadata: { labels: { app: 'pno' }, creationTimestamp: null },
    };
    expect(sameTemplate(template('a:1', 'x'), reordered)).toBe(true);
    expect(sameTemplate(template('a:1'), template('a:2'))).toBe(false);
    expect(
      sameTemplate(template('a:1'), { ...template('a:1'), metadata: { labels: { app: 'other' } } }),
    ).toBe(false);
  });

  it('normalizes to plain JSON without the hash label', () => {
    expect(normalizeTemplate(template('a:1', 'abc'))).toEqual(template('a:1'));
    expect(normalizeTemplate({ metadata: { labels: { 'pod-template-hash': 'abc' } } })).toEqual({
      metadata: {},
    });
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });
});

const deployment = (over: {
  replicas?: number;
  generation?: number;
  status?: k8s.V1DeploymentStatus;
}): k8s.V1Deployment => ({
  metadata: {
    name: 'app',
    generation: over.generation ?? 2,
    annotations: { 'deployment.kubernetes.io/revision': '4' },
  },
  spec: { replicas: over.replicas ?? 3, selector: {}, template: template('a:4') },
  status: over.status ?? {},
});

describe('rolloutStatusOf', () => {
  const done = {
    observedGeneration: 2,
    replicas: 3,
    updatedReplicas: 3,
    readyReplicas: 3,
    availableReplicas: 3,
  };

  it('is complete only when every replica is updated and available and no old one is left', () => {
    expect(rolloutStatusOf(deployment({ status: done }))).toEqual({
      deployment: 'app',
      desired: 3,
      updated: 3,
      ready: 3,
      available: 3,
      generation: 2,
      observedGeneration: 2,
      revision: 4,
      images: ['a:4'],
      complete: true,
      failed: false,
      message: 'deployment "app" successfully rolled out',
    });
    const waiting = (status: k8s.V1DeploymentStatus) =>
      rolloutStatusOf(deployment({ status: { ...done, ...status } }));
    expect(waiting({ observedGeneration: 1 })).toMatchObject({
      complete: false,
      message: expect.stringContaining('observed'),
    });
    expect(waiting({ updatedReplicas: 1 })).toMatchObject({
      complete: false,
      message: expect.stringContaining('1 out of 3 new replicas'),
    });
    expect(waiting({ replicas: 4 })).toMatchObject({
      complete: false,
      message: expect.stringContaining('1 old replicas are pending termination'),
    });
    expect(waiting({ availableReplicas: 2 })).toMatchObject({
      complete: false,
      message: expect.stringContaining('2 of 3 updated replicas are available'),
    });
    expect(
      waiting({
        updatedReplicas: 1,
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      }),
    ).toMatchObject({ complete: false, failed: true, message: expect.stringContaining('progress deadline') });
  });

  it('defaults replicas to 1 and counts a Deployment the controller has not seen yet as not complete', () => {
    const fresh = rolloutStatusOf({
      metadata: { name: 'x', generation: 1 },
      spec: { selector: {}, template: {} },
    });
    expect(fresh).toMatchObject({ desired: 1, revision: 0, complete: false, images: [] });
  });
});

describe('podHealthOf', () => {
  it('sums the containers requests and restarts and reads Ready and deletion', () => {
    const pod: k8s.V1Pod = {
      metadata: {
        name: 'p',
        creationTimestamp: new Date('2026-03-02T10:00:00Z'),
        deletionTimestamp: new Date(),
      },
      spec: {
        containers: [
          { name: 'a', resources: { requests: { cpu: '250m', memory: '256Mi' } } },
          { name: 'b', resources: { requests: { cpu: '1', memory: '512M' } } },
          { name: 'c' },
        ],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [
          { name: 'a', restartCount: 2, image: '', imageID: '', ready: true },
          { name: 'b', restartCount: 1, image: '', imageID: '', ready: true },
        ],
      },
    };
    expect(podHealthOf(pod)).toEqual({
      name: 'p',
      phase: 'Running',
      ready: true,
      terminating: true,
      restarts: 3,
      createdAt: '2026-03-02T10:00:00.000Z',
      cpuRequestMillicores: 1250,
      memoryRequestMi: 744.28,
    });
    expect(podHealthOf({ metadata: { name: 'q' }, spec: { containers: [{ name: 'a' }] } })).toEqual({
      name: 'q',
      phase: 'Unknown',
      ready: false,
      terminating: false,
      restarts: 0,
    });
  });
});

describe('rollbackPatch', () => {
  const current: k8s.V1Deployment = {
    metadata: {
      name: 'app',
      resourceVersion: '42',
      annotations: {
        'deployment.kubernetes.io/revision': '3',
        'kubernetes.io/change-cause': 'deploy 3',
        'incident-response.pno.dev/last-run.highErrorRate': '{"runId":"new","at":"2026-03-02T10:00:00Z"}',
        'team.example/owner': 'sre',
      },
    },
    spec: { selector: {}, template: template('a:3') },
  };
  const target: k8s.V1ReplicaSet = {
    metadata: {
      name: 'app-1',
      annotations: {
        'deployment.kubernetes.io/revision': '1',
        'deployment.kubernetes.io/desired-replicas': '3',
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
        'incident-response.pno.dev/last-run.highErrorRate': '{"runId":"old","at":"2026-03-01T10:00:00Z"}',
        'team.example/owner': 'platform',
        'docs/link': 'x~y',
      },
    },
    spec: { selector: {}, template: template('a:1', 'abc') },
  };

  it('restores the template, guarded by the resourceVersion, and copies the annotations kubectl copies', () => {
    expect(rollbackPatch(current, target)).toEqual([
      { op: 'replace', path: '/metadata/resourceVersion', value: '42' },
      { op: 'replace', path: '/spec/template', value: template('a:1') },
      { op: 'add', path: '/metadata/annotations/team.example~1owner', value: 'platform' },
      { op: 'add', path: '/metadata/annotations/docs~1link', value: 'x~y' },
      // The change cause follows the revision (the old one had none).
      { op: 'remove', path: '/metadata/annotations/kubernetes.io~1change-cause' },
    ]);
  });

  it('adds the annotations map when the Deployment has none', () => {
    const bare = { ...current, metadata: { name: 'app', resourceVersion: '7' } };
    expect(rollbackPatch(bare, target)[2]).toEqual({
      op: 'add',
      path: '/metadata/annotations',
      value: { 'team.example/owner': 'platform', 'docs/link': 'x~y' },
    });
  });
});

describe('parseClaimRecord', () => {
  it('reads {runId, at} and treats anything else as no record', () => {
    expect(parseClaimRecord('{"runId":"r","at":"2026-03-02T10:00:00.000Z"}')).toEqual({
      runId: 'r',
      at: '2026-03-02T10:00:00.000Z',
    });
    expect(parseClaimRecord(undefined)).toBeUndefined();
    expect(parseClaimRecord('not json')).toBeUndefined();
    expect(parseClaimRecord('{"runId":"r","at":"yesterday"}')).toBeUndefined();
    expect(parseClaimRecord('{"runId":1,"at":"2026-03-02T10:00:00Z"}')).toBeUndefined();
  });
});

describe('loadKubeConfig', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pno-kubeconfig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const token = 'tOkEn-that-must-not-leak';

  it('uses the KUBECONFIG file first, and never shows its token', () => {
    const file = path.join(dir, 'config.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
        users: [{ name: 'u', user: { token } }],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
    const loaded = loadKubeConfig({ KUBECONFIG: file, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(loaded?.describe).toBe(`kubeconfig ${file} (context ctx, server https://127.0.0.1:6443)`);
    expect(loaded?.config.getCurrentUser()?.token).toBe(token);
    expect(loaded?.describe).not.toContain(token);
    expect(() => loadKubeConfig({ KUBECONFIG: path.join(dir, 'missing.yaml') })).toThrow(/no readable file/);
  });

  it('falls back to the in-cluster service account, then to nothing', () => {
    const sa = path.join(dir, 'sa');
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: '' };
    // No token mounted: no cluster.
    expect(loadKubeConfig(env, { serviceAccountDir: sa })).toBeUndefined();
    mkdirSync(sa, { recursive: true });
    writeFileSync(path.join(sa, 'token'), token);
    const loaded = loadKubeConfig(env, { serviceAccountDir: sa });
    expect(loaded?.describe).toBe('in-cluster service account (server https://10.96.0.1:443)');
    expect(loaded?.config.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
    expect(loadKubeConfig({ KUBERNETES_SERVICE_HOST: '' }, { serviceAccountDir: sa })).toBeUndefined();
    expect(loadKubeConfig({}, { serviceAccountDir: sa })).toBeUndefined();
  });
});

describe('deploy/k8s/rbac.yaml', () => {
  interface Rule {
    apiGroups: string[];
    resources: string[];
    verbs: string[];
    resourceNames?: string[];
  }
  const docs = parseAllDocuments(readFileSync(path.join(root, 'deploy/k8s/rbac.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown },
  );
  const role = docs.find((d) => d.kind === 'Role')!;
  const rules = role['rules'] as Rule[];

  it('grants exactly the union of the calls the activities declare', () => {
    const granted = rules.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
    );
    expect(new Set(granted).size).toBe(granted.length);
    expect(granted.sort()).toEqual(
      playbookRbacUnion()
        .map((u) => `${u.apiGroup}|${u.resource}|${u.verb}`)
        .sort(),
    );
    expect(Object.keys(PLAYBOOK_RBAC_RULES).sort()).toEqual([
      'claimPlaybookRun',
      'deletePods',
      'inspectWorkload',
      'podReadiness',
      'rollbackTo',
      'rolloutHistory',
      'rolloutStatus',
      'scaleTo',
      'setCircuitBreaker',
    ]);
  });

  it('restricts by name every call that names its object, and nothing that cannot be', () => {
    const byName = new Map(
      playbookRbacUnion().map((u) => [`${u.apiGroup}|${u.resource}|${u.verb}`, u.byName]),
    );
    for (const r of rules) {
      for (const verb of r.verbs) {
        const key = `${r.apiGroups[0]}|${r.resources[0]}|${verb}`;
        if (r.resourceNames) expect(byName.get(key), key).toBe(true);
      }
    }
    // Only pods (names change), replicasets (listed) and configmaps create go unnamed.
    const unnamed = rules
      .filter((r) => !r.resourceNames)
      .flatMap((r) => r.verbs.map((v) => `${r.resources[0]} ${v}`));
    expect(unnamed.sort()).toEqual(['configmaps create', 'pods delete', 'pods list', 'replicasets list']);
  });

  it('binds the Role in production to the worker service account, and incident-response.yaml has no Role', () => {
    expect(role.metadata).toEqual({ name: 'incident-remediation', namespace: 'production' });
    expect(docs.find((d) => d.kind === 'ServiceAccount')?.metadata).toEqual({
      name: 'incident-worker',
      namespace: 'incident-response',
    });
    const binding = docs.find((d) => d.kind === 'RoleBinding')!;
    expect(binding.metadata.namespace).toBe('production');
    expect(binding['subjects']).toEqual([
      { kind: 'ServiceAccount', name: 'incident-worker', namespace: 'incident-response' },
    ]);
    expect(binding['roleRef']).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'incident-remediation',
    });
    const deploy = parseAllDocuments(
      readFileSync(path.join(root, 'deploy/k8s/incident-response.yaml'), 'utf8'),
    ).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    const kinds = [...deploy, ...docs].map((d) => `${d.kind}/${d.metadata.name}`);
    expect(deploy.filter((d) => ['Role', 'RoleBinding', 'ClusterRole'].includes(d.kind))).toEqual([]);
    expect(new Set(kinds).size).toBe(kinds.length);
  });
});
