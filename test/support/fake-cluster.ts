/**
 * An in-memory model of the protected service for the playbook workflows' time-skipping tests: a
 * Deployment with revisions, pods, an optional HPA and circuit-breaker flag, the cooldown record, and
 * the Prometheus answers and health probes the test scripts. It keeps Kubernetes' semantics the
 * playbooks rely on (scale to an absolute count, undo to a revision's template makes a new revision,
 * deleted pods are replaced by Ready ones), counts every call, and can refuse one (403) or fail it
 * transiently. The real activities are tested against a real control plane and a real Prometheus in
 * test/e2e; here only the workflows' decisions are under test.
 */
import { playbookActivities } from '../../src/activities/playbooks/index.ts';
import type {
  ClusterActivities,
  MonitoringActivities,
  PlaybookActivities,
} from '../../src/activities/playbooks/index.ts';
import { playbookFailure } from '../../src/activities/playbooks/errors.ts';
import type { PodHealth, Revision } from '../../src/domain/cluster.ts';

type Method = keyof ClusterActivities | keyof MonitoringActivities;

export interface FakeClusterOptions {
  replicas?: number;
  /** Pods not Running (Pending) besides the replicas. */
  stuckPods?: number;
  /** Ages of the revisions in minutes, oldest first (default: one revision, 3 days old). */
  revisionAgesMinutes?: number[];
  hpa?: { min: number; max: number };
  /** Whether the cluster is configured at all (false: the playbooks run dry). */
  cluster?: boolean;
  prometheus?: boolean;
  /** Requests per pod, for the resource-pressure check. */
  cpuRequestMillicores?: number;
  memoryRequestMi?: number;
}

export class FakeCluster implements ClusterActivities, MonitoringActivities {
  replicas: number;
  hpa: { min: number; max: number } | undefined;
  revisions: Revision[];
  /** The revision whose template the Deployment runs. */
  currentTemplate: number;
  pods: PodHealth[];
  breaker: string | undefined;
  readonly claims = new Map<string, { runId: string; at: string }>();
  readonly calls: { method: Method; arg: unknown }[] = [];
  /** Answers of the error-rate query, in order; the last repeats. Undefined: no data. */
  errorRates: (number | undefined)[] = [0.03];
  /** Answers of the latency query (ms), in order; the last repeats. */
  latencies: (number | undefined)[] = [800];
  /** Health probe answers, in order; the last repeats. */
  health: boolean[] = [false];
  /** CPU/memory per pod as a share of its requests. */
  usageShare = { cpu: 0.5, memory: 0.5 };
  firing: { alertname: string; severity: string; labels: Record<string, string> }[] = [];
  /** Pods deleted come back Ready (false: they stay Pending). */
  replacementsReady = true;
  private readonly refusals = new Map<Method, string>();
  private readonly transient = new Map<Method, number>();
  private readonly options: Required<Pick<FakeClusterOptions, 'cluster' | 'prometheus'>> & FakeClusterOptions;
  private podCount = 0;
  private errorIndex = 0;
  private latencyIndex = 0;
  private healthIndex = 0;

  constructor(options: FakeClusterOptions = {}) {
    this.options = { cluster: true, prometheus: true, ...options };
    this.replicas = options.replicas ?? 3;
    this.hpa = options.hpa;
    const now = Date.now();
    const ages = options.revisionAgesMinutes ?? [3 * 24 * 60];
    this.revisions = ages.map((age, i) => ({
      revision: i + 1,
      replicaSet: `pno-physics-bench-rs${i + 1}`,
      createdAt: new Date(now - age * 60_000).toISOString(),
      images: [`registry.example/pno-physics-bench:1.${i}.0`],
      replicas: i === ages.length - 1 ? this.replicas : 0,
    }));
    this.currentTemplate = this.revisions.length;
    this.pods = [];
    for (let i = 0; i < this.replicas; i++) this.pods.push(this.pod('Running'));
    for (let i = 0; i < (options.stuckPods ?? 0); i++) this.pods.push(this.pod('Pending'));
  }

  /** The activities the worker registers: this model, or "no cluster" / "no Prometheus". */
  activities(): PlaybookActivities {
    return playbookActivities({
      ...(this.options.cluster ? { cluster: this } : {}),
      monitoring: this,
      prometheus: this.options.prometheus,
      describe: ['fake cluster'],
    });
  }

  /** The next calls of `method` answer 403 (not retried). */
  refuse(method: Method, message = `User "playbook" cannot ${method} in namespace "production"`): void {
    this.refusals.set(method, message);
  }

  /** The next `times` calls of `method` fail with a 503 (retried). */
  failTransiently(method: Method, times: number): void {
    this.transient.set(method, times);
  }

  count(method: Method): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  private pod(phase: string): PodHealth {
    this.podCount += 1;
    return {
      name: `pno-physics-bench-${phase === 'Running' ? 'ok' : 'stuck'}-${this.podCount}`,
      phase,
      ready: phase === 'Running',
      terminating: false,
      restarts: 0,
      ...(this.options.cpuRequestMillicores
        ? { cpuRequestMillicores: this.options.cpuRequestMillicores }
        : {}),
      ...(this.options.memoryRequestMi ? { memoryRequestMi: this.options.memoryRequestMi } : {}),
    };
  }

  private enter(method: Method, arg: unknown): void {
    this.calls.push({ method, arg });
    const refusal = this.refusals.get(method);
    if (refusal) throw playbookFailure('Forbidden', `forbidden: ${refusal}`);
    const left = this.transient.get(method) ?? 0;
    if (left > 0) {
      this.transient.set(method, left - 1);
      throw new Error(`${method}: the apiserver answered 503 Service Unavailable`);
    }
  }

  private next<T>(list: T[], index: 'errorIndex' | 'latencyIndex' | 'healthIndex'): T {
    const value = list[Math.min(this[index], list.length - 1)] as T;
    this[index] += 1;
    return value;
  }

  private status() {
    const ready = this.pods.filter((p) => p.ready && p.phase === 'Running').length;
    const desired = this.replicas;
    return {
      deployment: 'pno-physics-bench',
      desired,
      updated: desired,
      ready: Math.min(ready, desired),
      available: Math.min(ready, desired),
      generation: this.revisions.length,
      observedGeneration: this.revisions.length,
      revision: this.revisions.at(-1)?.revision ?? 0,
      images: this.revisions.find((r) => r.revision === this.currentTemplate)?.images ?? [],
      complete: ready >= desired,
      failed: false,
      message: '',
    };
  }

  // ---- Kubernetes ---------------------------------------------------------------------------------

  inspectWorkload: ClusterActivities['inspectWorkload'] = (ref) => {
    this.enter('inspectWorkload', ref);
    return Promise.resolve({
      pods: this.pods.map((p) => ({ ...p })),
      deployment: this.status(),
      service: { name: 'pno-service', type: 'ClusterIP', ports: ['80/TCP'] },
      ingress: { name: 'pno-ingress', hosts: ['api.pno-physics-bench.com'] },
      hpa: this.hpa
        ? {
            name: 'pno-hpa',
            minReplicas: this.hpa.min,
            maxReplicas: this.hpa.max,
            currentReplicas: this.replicas,
            desiredReplicas: this.replicas,
            conditions: [],
          }
        : null,
    });
  };

  rolloutStatus: ClusterActivities['rolloutStatus'] = (a) => {
    this.enter('rolloutStatus', a);
    return Promise.resolve(this.status());
  };

  rolloutHistory: ClusterActivities['rolloutHistory'] = (a) => {
    this.enter('rolloutHistory', a);
    return Promise.resolve(this.revisions.map((r) => ({ ...r })));
  };

  podReadiness: ClusterActivities['podReadiness'] = (a) => {
    this.enter('podReadiness', a);
    const live = this.pods.filter((p) => !p.terminating);
    return Promise.resolve({
      total: live.length,
      ready: live.filter((p) => p.ready).length,
      notReady: live.filter((p) => !p.ready).map((p) => p.name),
    });
  };

  deletePods: ClusterActivities['deletePods'] = (a) => {
    this.enter('deletePods', a);
    const deleted: string[] = [];
    const alreadyGone: string[] = [];
    for (const name of a.names) {
      const i = this.pods.findIndex((p) => p.name === name);
      if (i < 0) {
        alreadyGone.push(name);
        continue;
      }
      this.pods.splice(i, 1);
      deleted.push(name);
      // A stuck pod of its own (no controller) is gone for good; the Deployment's are replaced.
      if (this.pods.filter((p) => p.phase === 'Running').length < this.replicas)
        this.pods.push(this.pod(this.replacementsReady ? 'Running' : 'Pending'));
    }
    return Promise.resolve({ deleted, alreadyGone });
  };

  scaleTo: ClusterActivities['scaleTo'] = (a) => {
    this.enter('scaleTo', a);
    const before = this.replicas;
    const hpaBefore = this.hpa?.min;
    if (this.hpa && a.hpa) this.hpa.min = Math.max(this.hpa.min, a.replicas);
    if (this.replicas < a.replicas || !this.hpa) this.replicas = a.replicas;
    while (this.pods.filter((p) => p.phase === 'Running').length < this.replicas)
      this.pods.push(this.pod('Running'));
    const via = this.hpa && a.hpa ? ('hpa' as const) : ('scale' as const);
    return Promise.resolve({
      object: via === 'hpa' ? 'hpa/pno-hpa' : 'deployment/pno-physics-bench',
      before: via === 'hpa' ? `minReplicas ${hpaBefore}` : `replicas ${before}`,
      after: via === 'hpa' ? `minReplicas ${this.hpa?.min}` : `replicas ${this.replicas}`,
      changed: before !== this.replicas || hpaBefore !== this.hpa?.min,
      via,
      replicasBefore: before,
      replicasAfter: this.replicas,
    });
  };

  rollbackTo: ClusterActivities['rollbackTo'] = (a) => {
    this.enter('rollbackTo', a);
    const target = this.revisions.find((r) => r.revision === a.revision);
    if (!target) throw playbookFailure('NotFound', `revision ${a.revision} not found`);
    const current = this.revisions.find((r) => r.revision === this.currentTemplate);
    const imagesBefore = current?.images ?? [];
    if (current?.images.join() === target.images.join()) {
      return Promise.resolve({
        object: 'deployment/pno-physics-bench',
        before: imagesBefore.join(','),
        after: target.images.join(','),
        changed: false,
        fromRevision: this.revisions.at(-1)?.revision ?? 0,
        toRevision: a.revision,
        imagesBefore,
        imagesAfter: target.images,
      });
    }
    // As Kubernetes does: the old ReplicaSet comes back under a new, higher revision number.
    const from = this.revisions.at(-1)?.revision ?? 0;
    this.revisions = this.revisions.filter((r) => r !== target);
    const revived = { ...target, revision: from + 1, createdAt: new Date().toISOString() };
    this.revisions.push(revived);
    this.currentTemplate = revived.revision;
    return Promise.resolve({
      object: 'deployment/pno-physics-bench',
      before: imagesBefore.join(','),
      after: target.images.join(','),
      changed: true,
      fromRevision: from,
      toRevision: a.revision,
      imagesBefore,
      imagesAfter: target.images,
    });
  };

  setCircuitBreaker: ClusterActivities['setCircuitBreaker'] = (a) => {
    this.enter('setCircuitBreaker', a);
    const before = this.breaker ?? '(unset)';
    this.breaker = a.breaker.value;
    return Promise.resolve({
      object: 'configmap/pno-flags circuit-breaker',
      before,
      after: a.breaker.value,
      changed: before !== a.breaker.value,
    });
  };

  claimPlaybookRun: ClusterActivities['claimPlaybookRun'] = (a) => {
    this.enter('claimPlaybookRun', a);
    const key = `${a.namespace}/${a.deployment}/${a.playbook}`;
    const previous = this.claims.get(key);
    if (previous?.runId === a.runId) return Promise.resolve({ granted: true, previous });
    if (previous && Date.parse(a.at) - Date.parse(previous.at) < a.cooldownMs)
      return Promise.resolve({ granted: false, previous });
    this.claims.set(key, { runId: a.runId, at: a.at });
    return Promise.resolve({ granted: true, ...(previous ? { previous } : {}) });
  };

  // ---- Prometheus and HTTP --------------------------------------------------------------------------

  queryPrometheus: MonitoringActivities['queryPrometheus'] = (a) => {
    this.enter('queryPrometheus', a);
    if (a.query.includes('by (status)')) {
      return Promise.resolve([
        { labels: { status: '500' }, value: 4 },
        { labels: { status: '503' }, value: 1 },
      ]);
    }
    const value = a.query.includes('histogram_quantile')
      ? this.next(this.latencies, 'latencyIndex')
      : this.next(this.errorRates, 'errorIndex');
    return Promise.resolve(value === undefined ? [] : [{ labels: {}, value }]);
  };

  firingAlerts: MonitoringActivities['firingAlerts'] = (a) => {
    this.enter('firingAlerts', a);
    return Promise.resolve(this.firing.map((f) => ({ ...f, state: 'firing' })));
  };

  podUsage: MonitoringActivities['podUsage'] = (a) => {
    this.enter('podUsage', a);
    return Promise.resolve(
      a.pods.map((pod) => ({
        pod,
        cpuMillicores: (this.options.cpuRequestMillicores ?? 1000) * this.usageShare.cpu,
        memoryMi: (this.options.memoryRequestMi ?? 1000) * this.usageShare.memory,
      })),
    );
  };

  probe: MonitoringActivities['probe'] = (a) => {
    this.enter('probe', a);
    const ok = this.next(this.health, 'healthIndex');
    return Promise.resolve({ url: a.url, ok, status: ok ? 200 : 503, ms: 12 });
  };
}
