import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TemporalFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { PlaybookActivities } from '../../activities/playbooks/index.ts';
import { NON_RETRYABLE_PLAYBOOK_ERRORS } from '../../domain/cluster.ts';
import type { PlaybookEnvironment } from '../../domain/cluster.ts';
import { APPROVABLE_STEPS } from '../../domain/playbook-settings.ts';
import type { PlaybooksPolicy } from '../../domain/policy.ts';
import { PLAYBOOK_ESCALATION } from '../../domain/playbook.ts';
import type {
  ApprovalDecision,
  PendingApproval,
  PlaybookInput,
  PlaybookOutcome,
  PlaybookResult,
  PlaybookStep,
  PlaybookTarget,
  StepKind,
} from '../../domain/playbook.ts';
import {
  approvalSignal,
  playbookFinishedSignal,
  playbookStepSignal,
  playbookStepsQuery,
  playbookStepsSignal,
} from '../../contract/playbooks.ts';
import type { PlaybookStepReport } from '../../contract/playbooks.ts';
import { decodeArgument, rawSignal } from '../signal-arguments.ts';
import { canRead, couldNotRun, notReadSummary, readOnlySummary } from '../../domain/investigation-plan.ts';
import type { Source } from '../../domain/investigation-plan.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Runs that began after this change call their activities as local activities (a marker in the run's
 * history each, no task round trip through the server) and report their steps to the incident in
 * batches, one signal after the other so they arrive in order (signals sent in one workflow task are
 * separate commands the server may deliver in any order): before each wait, and with the outcome. A
 * fraction of the workflow tasks, which are most of a playbook's time when its waits are short. Reads
 * only: the actions stay activities ({@link ACTIONS}). Runs begun before replay (and go on) with
 * activities and a signal a step.
 */
const FAST_PATH = 'playbook-local-activities-batched-reports';

/**
 * The activities that change the cluster go through the server even on the fast path. A local activity's
 * result is recorded (a marker) only when its workflow task completes: a worker that dies after a local
 * action ran, before that, leaves no record of the action nor of the reads its target was computed from,
 * and the next worker reads again and computes a new target from the changed cluster (test/e2e/
 * playbook-crash.test.ts saw 3 → 5, then 5 → 7). Scheduling the action as an activity completes the
 * workflow task: the reads' markers and the action's input (its absolute target) are recorded together
 * before it runs, and a retry after a crash repeats that target.
 */
const ACTIONS: ReadonlySet<string> = new Set<keyof PlaybookActivities>([
  'claimPlaybookRun',
  'deletePods',
  'scaleTo',
  'rollbackTo',
  'setCircuitBreaker',
]);

/** Ends a run early with an outcome: a false alarm found, an escalation, a step that could not run. */
export class PlaybookStop extends Error {
  readonly outcome: Exclude<PlaybookOutcome, 'cancelled'>;
  readonly reason: string;
  constructor(outcome: Exclude<PlaybookOutcome, 'cancelled'>, reason: string) {
    super(reason);
    this.name = 'PlaybookStop';
    this.outcome = outcome;
    this.reason = reason;
  }
}

/** An action's plan: which object changes how (computed once, before it runs, and recorded). */
export interface ActionPlan {
  kind: Exclude<StepKind, 'read' | 'wait' | 'decision' | 'approval' | 'claim'>;
  summary: string;
  object: string;
  before: string;
  after: string;
}

type RunInput = Pick<PlaybookInput, 'incidentId' | 'incidentWorkflowId' | 'target' | 'settings'> & {
  name: string;
};

type StepInit = Omit<PlaybookStep, 'at' | 'id'> & { id: string };

/**
 * One playbook run's machinery, shared by the three playbooks and the investigation: step records (each
 * signalled to the incident at once), reads that say what they could not read, actions that honour the
 * dry run, the approval list, the cooldown and the replica ceiling, bounded waits on durable timers, and
 * activity failures turned into outcomes. Every target is computed by the playbook before the action and
 * recorded in the step, so a retried or replayed step never acts twice.
 */
export class PlaybookRun {
  readonly steps: PlaybookStep[] = [];
  readonly runId: string;
  readonly settings: PlaybooksPolicy;
  readonly target: PlaybookTarget;
  /** Actions recorded as planned but not applied (dry run). */
  planned = 0;
  dryRun: boolean;
  environment: PlaybookEnvironment = { cluster: false, prometheus: false, describe: [] };
  readonly activities: PlaybookActivities;
  private readonly ids = new Map<string, number>();
  private readonly decisions = new Map<string, ApprovalDecision>();
  private claimed = false;
  private readonly reports: Promise<void>[] = [];
  /** Local activities and batched, ordered reports ({@link FAST_PATH}). */
  private readonly fast: boolean;
  /** The last batch sent or queued. */
  private sent: Promise<void> = Promise.resolve();
  private readonly unreported: PlaybookStepReport[] = [];

  readonly input: RunInput;

  constructor(input: RunInput) {
    this.input = input;
    this.runId = workflowInfo().workflowId;
    this.settings = input.settings;
    this.target = input.target;
    this.dryRun = input.settings.dryRun;
    this.fast = patched(FAST_PATH);
    const options: ActivityOptions = {
      startToCloseTimeout: '1 minute',
      retry: {
        initialInterval: '1 second',
        backoffCoefficient: 2,
        maximumInterval: '20 seconds',
        maximumAttempts: input.settings.attempts,
        nonRetryableErrorTypes: [...NON_RETRYABLE_PLAYBOOK_ERRORS],
      },
    };
    const actions = proxyActivities<PlaybookActivities>(options);
    const reads = this.fast ? proxyLocalActivities<PlaybookActivities>(options) : actions;
    this.activities = new Proxy(actions, {
      get: (_target, name) =>
        (typeof name === 'string' && ACTIONS.has(name) ? actions : reads)[name as keyof PlaybookActivities],
    });
    setHandler(playbookStepsQuery, () => this.steps);
    // Untrusted like every signal (anyone with Temporal access can send one): a malformed one is logged
    // and ignored, never allowed to fail the run's task.
    setHandler(rawSignal(approvalSignal), (raw) => {
      const decision = decodeArgument(raw) as Partial<ApprovalDecision> | null;
      if (
        typeof decision?.stepId !== 'string' ||
        typeof decision.approve !== 'boolean' ||
        typeof decision.by !== 'string'
      ) {
        log.warn('malformed approval ignored', { runId: this.runId });
        return;
      }
      this.decisions.set(decision.stepId, decision as ApprovalDecision);
    });
  }

  /** Learns what the worker can reach; without a cluster the run is a dry run (DESIGN: "playbooks run dry"). */
  async start(options: { readOnly?: boolean } = {}): Promise<void> {
    this.environment = await this.activities.playbookEnvironment();
    if (!this.environment.cluster) this.dryRun = true;
    const mode = this.dryRun
      ? `dry run (${this.settings.dryRun ? 'playbooks.dryRun is true' : 'no cluster configured: KUBECONFIG unset and not in a cluster'}): changes are planned and recorded, nothing is touched`
      : 'live';
    this.record({
      id: 'start',
      kind: 'decision',
      status: 'done',
      summary: options.readOnly
        ? readOnlySummary(this.input.name, this.input, this.environment)
        : `${this.input.name} on ${this.target.namespace}/${this.target.deployment}: ${mode}`,
    });
  }

  /** Records a step and reports it to the incident. */
  record(init: StepInit, pendingApproval?: PendingApproval | null): PlaybookStep {
    const step: PlaybookStep = { ...init, id: this.uniqueId(init.id), at: iso(Date.now()) };
    this.steps.push(step);
    this.report(step, pendingApproval);
    return step;
  }

  private uniqueId(id: string): string {
    const n = (this.ids.get(id) ?? 0) + 1;
    this.ids.set(id, n);
    return n === 1 ? id : `${id}_${n}`;
  }

  private report(step: PlaybookStep, pendingApproval?: PendingApproval | null): void {
    const report = { runId: this.runId, step, ...(pendingApproval !== undefined ? { pendingApproval } : {}) };
    if (this.fast) {
      this.unreported.push(report);
      return;
    }
    this.reports.push(
      getExternalWorkflowHandle(this.input.incidentWorkflowId)
        .signal(playbookStepSignal, report)
        .catch((err: unknown) => {
          log.warn('the incident did not take a step report', { error: String(err) });
        }),
    );
  }

  /** Sends the steps not reported yet in one signal, after the batches before it; not waited for. */
  flush(): void {
    if (this.unreported.length === 0) return;
    const batch = this.unreported.splice(0);
    const send = () =>
      getExternalWorkflowHandle(this.input.incidentWorkflowId)
        .signal(playbookStepsSignal, batch)
        .catch((err: unknown) => {
          log.warn('the incident did not take step reports', { error: String(err) });
        });
    // Never cancelled with the run: a cancelled run's steps (and its `cancelled` step) are still reported.
    this.sent = this.sent.then(() => CancellationScope.nonCancellable(send));
    this.reports.push(this.sent);
  }

  /** Resolves once every step recorded so far has reached the incident (or failed to). */
  async reported(): Promise<void> {
    this.flush();
    await Promise.all(this.reports);
  }

  /** The steps not reported yet, to travel with an outcome (one signal instead of two). */
  private takeReports(): { reports?: PlaybookStepReport[] } {
    return this.unreported.length > 0 ? { reports: this.unreported.splice(0) } : {};
  }

  /**
   * A read through an activity. Without the source (no cluster, no Prometheus) it is recorded as not read
   * and gives undefined; a failure that retrying cannot fix (403, bad query) or that outlasts the retries
   * stops the run as `failed`.
   */
  async read<T>(
    id: string,
    source: Source,
    call: () => Promise<T>,
    describe: (value: T) => Omit<StepInit, 'id' | 'kind' | 'status'>,
  ): Promise<T | undefined> {
    if (!this.available(source)) {
      this.record({ id, kind: 'read', status: 'planned', summary: notReadSummary(source) });
      return undefined;
    }
    const value = await this.attempt(id, 'read', call);
    this.record({ id, kind: 'read', status: 'done', ...describe(value) });
    return value;
  }

  available(source: Source): boolean {
    return canRead(this.environment, source);
  }

  /**
   * An action on the cluster: planned only in a dry run; after an engineer's approval when its kind is in
   * `requireApproval` (refused → skipped); after the cooldown claim for the first live action. Undefined
   * when it did not run.
   */
  async act<T>(
    id: string,
    plan: ActionPlan,
    call: () => Promise<T>,
    changed: (value: T) => ActionPlan,
  ): Promise<T | undefined> {
    const changedOf = (p: ActionPlan) => ({ object: p.object, before: p.before, after: p.after });
    if (this.dryRun) {
      this.planned += 1;
      this.record({
        id,
        kind: plan.kind,
        status: 'planned',
        summary: `would ${plan.summary} (dry run)`,
        changed: changedOf(plan),
      });
      return undefined;
    }
    if (
      (APPROVABLE_STEPS as readonly string[]).includes(plan.kind) &&
      this.settings.requireApproval.includes(plan.kind as never)
    ) {
      const approved = await this.approval(id, plan);
      if (!approved) return undefined;
    }
    await this.claim();
    const value = await this.attempt(id, plan.kind, call);
    const done = changed(value);
    this.record({ id, kind: plan.kind, status: 'done', summary: done.summary, changed: changedOf(done) });
    return value;
  }

  /** Waits for an engineer's decision on the step; nobody answering in time stops the run as `failed`. */
  private async approval(id: string, plan: ActionPlan): Promise<boolean> {
    const now = Date.now();
    const timeout = this.settings.approvalTimeout;
    const pending: PendingApproval = {
      stepId: id,
      kind: plan.kind,
      summary: plan.summary,
      requestedAt: iso(now),
      until: iso(now + timeout),
    };
    this.record(
      {
        id: `approval_${id}`,
        kind: 'approval',
        status: 'awaiting_approval',
        summary: `waiting for approval to ${plan.summary} (incident approve ${this.input.incidentId} ${id} [--reject]; escalates after ${Math.round(timeout / 60_000)} min)`,
        changed: { object: plan.object, before: plan.before, after: plan.after },
      },
      pending,
    );
    this.flush();
    const answered = await condition(() => this.decisions.has(id), timeout);
    if (!answered) {
      this.record(
        {
          id: `approval_${id}`,
          kind: 'approval',
          status: 'failed',
          summary: `nobody approved "${plan.summary}" within ${Math.round(timeout / 60_000)} min`,
        },
        null,
      );
      throw new PlaybookStop(
        'failed',
        `nobody approved step ${id} (${plan.summary}) within ${Math.round(timeout / 60_000)} min`,
      );
    }
    const decision = this.decisions.get(id) as ApprovalDecision;
    this.record(
      {
        id: `approval_${id}`,
        kind: 'approval',
        status: decision.approve ? 'done' : 'skipped',
        summary: `${decision.approve ? 'approved' : 'rejected'} by ${decision.by}: ${plan.summary}`,
      },
      null,
    );
    return decision.approve;
  }

  /** The cooldown: one run of a playbook acts on a Deployment at most once per `playbooks.cooldown`. */
  private async claim(): Promise<void> {
    if (this.claimed) return;
    const at = iso(Date.now());
    const claim = await this.attempt('cooldown', 'claim', () =>
      this.activities.claimPlaybookRun({
        namespace: this.target.namespace,
        deployment: this.target.deployment,
        playbook: this.input.name,
        runId: this.runId,
        at,
        cooldownMs: this.settings.cooldown,
      }),
    );
    if (!claim.granted) {
      const previous = claim.previous ? ` by ${claim.previous.runId} at ${claim.previous.at}` : '';
      this.record({
        id: 'cooldown',
        kind: 'claim',
        status: 'failed',
        summary: `cooldown: ${this.input.name} already acted on ${this.target.namespace}/${this.target.deployment}${previous}`,
      });
      throw new PlaybookStop(
        'failed',
        `cooldown: ${this.input.name} acted on ${this.target.namespace}/${this.target.deployment}${previous}, less than ${Math.round(this.settings.cooldown / 60_000)} min ago`,
      );
    }
    this.claimed = true;
    this.record({
      id: 'cooldown',
      kind: 'claim',
      status: 'done',
      summary: `cooldown claimed on deployment/${this.target.deployment}${claim.previous ? ` (previous run ${claim.previous.runId} at ${claim.previous.at})` : ''}`,
    });
  }

  /** A durable wait, recorded (planned only in a dry run once something was planned). */
  async wait(id: string, ms: number, why: string): Promise<void> {
    this.record({ id, kind: 'wait', status: 'done', summary: `wait ${seconds(ms)}: ${why}` });
    if (this.fast && ms <= 0) return;
    this.flush();
    await sleep(ms);
  }

  /**
   * Polls `check` every `playbooks.pollEvery` until it says done or `boundMs` has passed; the last
   * value and whether it finished are returned. Every wait has a bound.
   */
  async waitUntil<T>(
    id: string,
    boundMs: number,
    check: () => Promise<T>,
    done: (value: T) => boolean,
  ): Promise<{ value: T; finished: boolean; waitedMs: number }> {
    const started = Date.now();
    for (;;) {
      const value = await this.attempt(id, 'wait', check);
      const waitedMs = Date.now() - started;
      if (done(value)) return { value, finished: true, waitedMs };
      if (waitedMs >= boundMs) return { value, finished: false, waitedMs };
      this.flush();
      await sleep(Math.min(this.settings.pollEvery, boundMs - waitedMs));
    }
  }

  /** Runs an activity; failures become a `failed` outcome that says which step and why. */
  private async attempt<T>(id: string, kind: StepKind, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isCancellation(err)) throw err;
      // An activity's failure wraps its cause; a local activity's arrives as the cause itself.
      const cause =
        err instanceof ActivityFailure ? err.cause : err instanceof ApplicationFailure ? err : undefined;
      // A local activity that timed out arrives as a TimeoutFailure; anything else is a bug.
      if (!cause && !(err instanceof TemporalFailure)) throw err;
      const type = cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
      const message = cause?.message ?? (err as Error).message;
      const summary = couldNotRun(id, type, message, this.settings.attempts);
      this.record({ id: `${id}_failed`, kind, status: 'failed', summary });
      throw new PlaybookStop('failed', summary);
    }
  }

  /** Ends a dry run that planned changes: nothing was applied, so people must act (the run escalates). */
  endDryRunIfPlanned(name: keyof typeof PLAYBOOK_ESCALATION): void {
    if (!this.dryRun || this.planned === 0) return;
    throw new PlaybookStop(
      'escalated',
      `dry run: ${this.planned} change(s) planned, none applied; apply them by hand or run the playbook live (${PLAYBOOK_ESCALATION[name].reason})`,
    );
  }

  /** Reports an outcome while the run goes on (`monitoring`); the final one follows. */
  async interim(outcome: 'monitoring', reason: string): Promise<void> {
    const result: PlaybookResult = {
      runId: this.runId,
      name: this.input.name as PlaybookResult['name'],
      outcome,
      reason,
      dryRun: this.dryRun,
      interim: true,
      ...this.takeReports(),
    };
    await this.sendOutcome(result, this.fast);
  }

  /** The result of a finished run, reported to the incident. */
  async finish(result: Omit<PlaybookResult, 'runId' | 'dryRun'>): Promise<PlaybookResult> {
    const full: PlaybookResult = { ...result, runId: this.runId, dryRun: this.dryRun, ...this.takeReports() };
    await CancellationScope.nonCancellable(() => this.sendOutcome(full, true));
    return full;
  }

  /** An outcome after every report before it (with the last steps in it, on the fast path). */
  private async sendOutcome(result: PlaybookResult, afterReports: boolean): Promise<void> {
    if (afterReports) await Promise.all(this.reports);
    await getExternalWorkflowHandle(this.input.incidentWorkflowId)
      .signal(playbookFinishedSignal, result)
      .catch((err: unknown) => log.warn('the incident did not take the outcome', { error: String(err) }));
  }
}

export function seconds(ms: number): string {
  if (ms <= 0) return '0 s';
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000} min`;
  return `${Math.round(ms / 100) / 10} s`;
}

/**
 * Runs a playbook's body and turns however it ends into one result, reported to the incident: a
 * `PlaybookStop` is its outcome, an engineer's cancellation is `cancelled`, anything else is `failed`.
 */
export async function runPlaybook(
  input: PlaybookInput,
  body: (
    run: PlaybookRun,
  ) => Promise<{ outcome: 'recovered' | 'monitoring' | 'escalated' | 'false_alarm'; reason: string }>,
): Promise<PlaybookResult> {
  const run = new PlaybookRun(input);
  const escalation = PLAYBOOK_ESCALATION[input.name];
  const ending = (outcome: PlaybookOutcome, reason: string) =>
    run.finish({
      name: input.name,
      outcome,
      reason,
      ...(outcome === 'escalated' || outcome === 'failed' ? { escalateTo: escalation.severity } : {}),
    });
  try {
    await run.start();
    const { outcome, reason } = await body(run);
    return await ending(outcome, reason);
  } catch (err) {
    if (err instanceof PlaybookStop) return await ending(err.outcome, err.reason);
    if (isCancellation(err)) {
      return await CancellationScope.nonCancellable(async () => {
        run.record(
          { id: 'cancelled', kind: 'decision', status: 'done', summary: 'cancelled by an engineer' },
          null,
        );
        return await ending('cancelled', 'cancelled by an engineer');
      });
    }
    // A bug: the workflow task fails and is retried, visibly, until a fixed worker is deployed.
    throw err;
  }
}
