import { z } from 'zod';
import type { IncidentState } from './incident.ts';
import type { Policy } from './policy.ts';
import { OPERATION_NAMES } from './operation-names.ts';
import type { ListedOperation } from './operation-names.ts';
import { forbidden, permissionFor } from './permissions.ts';
import { PLAYBOOK_NAMES } from './playbook.ts';
import { SEVERITIES } from './severity.ts';
import { severityRules } from './severity-rules.ts';

/**
 * What engineers can do to an incident, defined once: each operation's input
 * (a schema the API parses request bodies with and the workflow validates
 * updates and signals with) and its refusal rule (who may do it, in which
 * state). The workflow's update validators and signal handlers, the API's
 * routes and the CLI's commands are all derived from this table and
 * `src/contract/operations.ts`, so adding an operation touches these two files
 * and the lifecycle method that applies it.
 */

/**
 * Input schemas, with the acting engineer `by`. Unknown fields are ignored
 * here (a signal typed in the web UI may carry extras); the API is stricter.
 * Built on first use ({@link operationInputs}), not when the module loads: the
 * workflow bundle evaluates this module for every new workflow run, and only
 * an engineer's operation needs the schemas.
 */
function buildOperationInputs() {
  /** Free text an engineer writes: a non-blank string of at most 10,000 characters. */
  const text = z
    .string()
    .max(10_000, 'at most 10000 characters')
    .refine((value) => value.trim() !== '', 'must not be blank');

  /** A person's handle in the policy (`alice`). */
  const handle = z.string().min(1, 'is required');

  return {
    acknowledge: z.object({ by: handle }),
    postUpdate: z.object({
      by: handle,
      message: text,
      actions: z.array(text).max(100).optional(),
      focus: text.optional(),
      eta: text.optional(),
      public: z.boolean().optional(),
    }),
    escalate: z.object({ by: handle, reason: text }),
    changeSeverity: z.object({ by: handle, severity: z.enum(SEVERITIES), reason: text.optional() }),
    assignCommander: z.object({ by: handle, commander: handle }),
    recordSecurityEvaluation: z.object({ by: handle, finding: text, related: z.boolean().default(false) }),
    mitigate: z.object({ by: handle, note: text.optional() }),
    resolve: z.object({ by: handle, rootCause: text, prevention: text.optional() }),
    runPlaybook: z.object({ by: handle, name: z.enum(PLAYBOOK_NAMES) }),
    cancelPlaybook: z.object({ by: handle, reason: text.optional() }),
    approveAction: z.object({
      by: handle,
      stepId: z.string().min(1, 'is required'),
      approve: z.boolean().default(true),
    }),
  } as const;
}

/** Every operation's input schema, by operation name. */
export type OperationInputs = ReturnType<typeof buildOperationInputs>;
export type OperationName = keyof OperationInputs;

let built: OperationInputs | undefined;

/** The operations' input schemas, built on the first call. */
export function operationInputs(): OperationInputs {
  built ??= buildOperationInputs();
  return built;
}

export { OPERATION_NAMES };
/** An operation of the schemas that {@link OPERATION_NAMES} leaves out (never, as it should be). */
type Unlisted = Exclude<OperationName, ListedOperation>;
// Compile-time: the list has every operation of the schemas (a missing one fails here as "true is not
// assignable to '<its name>'") and nothing else (an unknown one is not an OperationName).
const _everyOperationListed: [Unlisted] extends [never] ? true : Unlisted = true;
const _onlyOperations: readonly OperationName[] = OPERATION_NAMES;

export type OperationInput<K extends OperationName> = z.output<OperationInputs[K]>;

export type AcknowledgeInput = OperationInput<'acknowledge'>;
export type PostUpdateInput = OperationInput<'postUpdate'>;
export type EscalateInput = OperationInput<'escalate'>;
export type ChangeSeverityInput = OperationInput<'changeSeverity'>;
export type AssignCommanderInput = OperationInput<'assignCommander'>;
export type SecurityEvaluationInput = OperationInput<'recordSecurityEvaluation'>;
export type MitigateInput = OperationInput<'mitigate'>;
export type ResolveInput = OperationInput<'resolve'>;
export type RunPlaybookInput = OperationInput<'runPlaybook'>;
export type CancelPlaybookInput = OperationInput<'cancelPlaybook'>;
export type ApproveActionInput = OperationInput<'approveAction'>;

/** Why an engineer's request is refused, or undefined when it is allowed. */
export type Refusal = string | undefined;

/**
 * A refusal and its kind: `forbidden` when the actor's roles do not permit the operation (the policy's
 * `permissions`: the API answers 403), `refused` for everything else (bad input, unknown person, the
 * incident's state: 409).
 */
export interface OperationRefusal {
  kind: 'refused' | 'forbidden';
  reason: string;
}

/** Whether `handle` names a person of the policy (own properties only: `constructor` is nobody). */
export function isPerson(policy: Policy, value: unknown): boolean {
  return typeof value === 'string' && Object.hasOwn(policy.people, value);
}

/**
 * Systems that may act as themselves, and only in these operations: a
 * PagerDuty acknowledgment by someone the policy does not know (no
 * `pagerduty` user id on any person) is recorded as `pagerduty`'s. An
 * integration never resolves, escalates or changes anything else.
 */
export const INTEGRATION_ACTORS: { readonly [K in OperationName]?: readonly string[] } = {
  acknowledge: ['pagerduty'],
};

/** Whether `by` is an integration allowed to do `op` (own properties only, like people). */
export function isIntegrationActor(op: OperationName, by: string): boolean {
  return Object.hasOwn(INTEGRATION_ACTORS, op) && (INTEGRATION_ACTORS[op]?.includes(by) ?? false);
}

/** How long a refusal quotes what it was sent (an actor's name, a field): a huge string is cut. */
const QUOTE_MAX = 80;

function quoted(value: string): string {
  return JSON.stringify(value.length > QUOTE_MAX ? `${value.slice(0, QUOTE_MAX)}…` : value);
}

/** State rules per operation, checked after the input is known to be well formed. */
const STATE_RULES: {
  [K in OperationName]: (policy: Policy, state: IncidentState, input: OperationInput<K>) => Refusal;
} = {
  acknowledge: (_policy, state) =>
    state.acknowledgedAt !== undefined
      ? `incident ${state.id} was already acknowledged by ${state.acknowledgedBy ?? 'someone'}`
      : undefined,
  postUpdate: () => undefined,
  escalate: () => undefined,
  changeSeverity: (_policy, state, input) =>
    input.severity === state.severity ? `incident ${state.id} is already ${state.severity}` : undefined,
  assignCommander: (policy, _state, input) =>
    isPerson(policy, input.commander)
      ? undefined
      : `unknown commander ${quoted(input.commander)}: not a person in the policy`,
  recordSecurityEvaluation: () => undefined,
  mitigate: (_policy, state) =>
    state.status === 'mitigated' ? `incident ${state.id} is already mitigated` : undefined,
  resolve: (policy, state) => {
    const { resolveRequires } = severityRules(policy, state.severity);
    if (resolveRequires.commander && state.commander === undefined) {
      return `a ${state.severity} incident needs an incident commander before it is resolved (incident commander <id> <person>)`;
    }
    if (resolveRequires.securityEvaluation && state.securityEvaluation === undefined) {
      return `a ${state.severity} incident needs a security evaluation before it is resolved (incident security <id> --finding <text>)`;
    }
    return undefined;
  },
  runPlaybook: (policy, state) => {
    if (policy.playbooks?.enabled === false)
      return 'playbooks are disabled by the policy (playbooks.enabled: false): every automatic action is off';
    return state.playbook?.status === 'running'
      ? `playbook ${state.playbook.name} is already running (${state.playbook.runId ?? ''}): cancel it first (incident playbook cancel ${state.id})`
      : undefined;
  },
  cancelPlaybook: (_policy, state) =>
    state.playbook?.status === 'running' ? undefined : `incident ${state.id} has no running playbook`,
  approveAction: (_policy, state, input) => {
    const pending = state.playbook?.status === 'running' ? state.playbook.pendingApproval : undefined;
    if (!pending) return `no playbook step of incident ${state.id} waits for approval`;
    return pending.stepId === input.stepId
      ? undefined
      : `step "${input.stepId}" does not wait for approval; "${pending.stepId}" does (${pending.summary})`;
  },
};

/** The first problem of a schema's parse, as `field: message`. */
function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : 'the argument';
  return `${field}: ${issue?.message ?? 'invalid'}`;
}

/**
 * Why `op` with `input` is refused on `state`, and whether for lack of a
 * permission (undefined when allowed): the one rule that serves the update's
 * validator and the signal handler. The input is untrusted JSON (a signal
 * typed in the web UI). `permissions: false` skips the policy's permissions
 * (a signal to a run that began before they existed: see the workflow).
 */
export function refusalOf(
  policy: Policy,
  state: IncidentState,
  op: OperationName,
  input: unknown,
  options: { permissions?: boolean } = {},
): OperationRefusal | undefined {
  const refused = (reason: string): OperationRefusal => ({ kind: 'refused', reason });
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return refused('the argument must be a JSON object');
  const by = (input as { by?: unknown }).by;
  if (typeof by !== 'string' || by === '') return refused('the acting engineer ("by") is required');
  if (!isPerson(policy, by) && !isIntegrationActor(op, by))
    return refused(`unknown engineer ${quoted(by)}: not a person in the policy`);
  if (state.status === 'resolved') return refused(`incident ${state.id} is already resolved`);
  const parsed = operationInputs()[op].safeParse(input);
  if (!parsed.success) return refused(firstProblem(parsed.error));
  if (options.permissions !== false) {
    const to = op === 'changeSeverity' ? (parsed.data as ChangeSeverityInput).severity : undefined;
    const reason = forbidden(policy, state, permissionFor(op, state, to), by);
    if (reason) return { kind: 'forbidden', reason };
  }
  const reason = (STATE_RULES[op] as (p: Policy, s: IncidentState, i: unknown) => Refusal)(
    policy,
    state,
    parsed.data,
  );
  return reason === undefined ? undefined : refused(reason);
}

/** Why `op` with `input` is refused on `state` (undefined when allowed): {@link refusalOf}'s reason. */
export function refusal(policy: Policy, state: IncidentState, op: OperationName, input: unknown): Refusal {
  return refusalOf(policy, state, op, input)?.reason;
}

/** The operation's input as the lifecycle applies it (defaults filled in), once {@link refusal} allowed it. */
export function parseOperationInput<K extends OperationName>(op: K, input: unknown): OperationInput<K> {
  return operationInputs()[op].parse(input) as OperationInput<K>;
}
