import { defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type { z } from 'zod';
import type { IncidentState } from '../domain/incident.ts';
import type { OperationAnswer } from '../domain/incident-record.ts';
import { OPERATION_NAMES, operationInputs } from '../domain/operations.ts';
import type { OperationInputs, OperationName } from '../domain/operations.ts';

/**
 * How each engineer operation of `src/domain/operations.ts` appears on every
 * interface: the Temporal update (and, for the four DESIGN names, the signal)
 * under the operation's own name, the verb that is both the CLI command and
 * the API path (`incident ack`, `POST /api/incidents/:id/ack`), and the CLI's
 * arguments. The workflow registers its handlers, the API its routes and the
 * CLI its commands by walking {@link OPERATIONS}.
 */

/** An operation's argument as a client sends it (defaults not yet applied). */
export type OperationArgs<K extends OperationName> = z.input<OperationInputs[K]>;

/** One input field as the CLI takes it: an option (`--message <text>`, `--public`) or a positional argument. */
export interface CliField {
  field: string;
  /** Commander option syntax; a boolean flag has no `<value>`. */
  option?: string;
  /** Commander argument syntax (`<person>`), for a positional argument after the incident id. */
  argument?: string;
  description: string;
  required?: boolean;
  /** The option may be given several times; the field is a list. */
  repeatable?: boolean;
  /** A boolean flag that sets its field to false (`--reject` → `approve: false`). */
  inverts?: boolean;
}

export interface OperationSpec<K extends OperationName> {
  name: K;
  verb: string;
  summary: string;
  update: UpdateDefinition<IncidentState | OperationAnswer, [OperationArgs<K>], K>;
  /** Signals exist for what engineers send without our tools (web UI, `temporal workflow signal`). */
  signal: SignalDefinition<[OperationArgs<K>], K> | undefined;
  cli: readonly CliField[];
  /** The CLI command's words (`['playbook', 'run']`); default `[verb]`. */
  command: readonly string[];
  /** The API route: method and path after `/api/incidents/:id/`; default `POST <verb>`. */
  http: { method: 'POST' | 'DELETE'; path: string };
}

type SignalOf<K extends OperationName, S extends boolean> = S extends true
  ? SignalDefinition<[OperationArgs<K>], K>
  : undefined;

function operation<K extends OperationName, S extends boolean = false>(
  name: K,
  spec: {
    verb: string;
    summary: string;
    signal?: S;
    cli?: readonly CliField[];
    command?: readonly string[];
    http?: OperationSpec<K>['http'];
  },
): Omit<OperationSpec<K>, 'signal'> & { signal: SignalOf<K, S> } {
  const signal = spec.signal ? defineSignal<[OperationArgs<K>], K>(name) : undefined;
  return {
    name,
    verb: spec.verb,
    summary: spec.summary,
    update: defineUpdate<IncidentState | OperationAnswer, [OperationArgs<K>], K>(name),
    signal: signal as SignalOf<K, S>,
    cli: spec.cli ?? [],
    command: spec.command ?? [spec.verb],
    http: spec.http ?? { method: 'POST', path: spec.verb },
  };
}

export const OPERATIONS = {
  acknowledge: operation('acknowledge', { verb: 'ack', summary: 'acknowledge the incident', signal: true }),
  postUpdate: operation('postUpdate', {
    verb: 'update',
    summary: 'post a progress update (resets the no-progress deadline)',
    signal: true,
    cli: [
      {
        field: 'message',
        option: '--message <text>',
        description: 'what happened since the last update',
        required: true,
      },
      {
        field: 'actions',
        option: '--action <text>',
        description: 'an action taken (repeatable)',
        repeatable: true,
      },
      { field: 'focus', option: '--focus <text>', description: 'the current focus' },
      { field: 'eta', option: '--eta <text>', description: 'estimated resolution' },
      { field: 'public', option: '--public', description: 'show this update on the public status page' },
    ],
  }),
  escalate: operation('escalate', {
    verb: 'escalate',
    summary: 'escalate one level now',
    signal: true,
    cli: [{ field: 'reason', option: '--reason <text>', description: 'why', required: true }],
  }),
  changeSeverity: operation('changeSeverity', {
    verb: 'severity',
    summary: 'change the severity (raising it escalates)',
    cli: [
      { field: 'severity', argument: '<severity>', description: 'P0, P1, P2 or P3', required: true },
      { field: 'reason', option: '--reason <text>', description: 'why' },
    ],
  }),
  assignCommander: operation('assignCommander', {
    verb: 'commander',
    summary: 'assign the incident commander',
    cli: [
      { field: 'commander', argument: '<person>', description: "the commander's handle", required: true },
    ],
  }),
  recordSecurityEvaluation: operation('recordSecurityEvaluation', {
    verb: 'security',
    summary: 'record the security evaluation',
    cli: [
      {
        field: 'finding',
        option: '--finding <text>',
        description: 'what the evaluation found',
        required: true,
      },
      { field: 'related', option: '--related', description: 'the incident is security-related' },
    ],
  }),
  mitigate: operation('mitigate', {
    verb: 'mitigate',
    summary: 'mark the incident mitigated',
    cli: [{ field: 'note', option: '--note <text>', description: 'how it was mitigated' }],
  }),
  resolve: operation('resolve', {
    verb: 'resolve',
    summary: 'resolve the incident',
    signal: true,
    cli: [
      { field: 'rootCause', option: '--root-cause <text>', description: 'the root cause', required: true },
      { field: 'prevention', option: '--prevention <text>', description: 'prevention measures' },
    ],
  }),
  runPlaybook: operation('runPlaybook', {
    verb: 'playbook',
    summary: 'run a remediation playbook now',
    command: ['playbook', 'run'],
    http: { method: 'POST', path: 'playbook' },
    cli: [
      {
        field: 'name',
        argument: '<name>',
        description: 'serviceOutage, highErrorRate or performanceDegradation',
        required: true,
      },
    ],
  }),
  cancelPlaybook: operation('cancelPlaybook', {
    verb: 'playbook-cancel',
    summary: 'cancel the running playbook',
    command: ['playbook', 'cancel'],
    http: { method: 'DELETE', path: 'playbook' },
    cli: [{ field: 'reason', option: '--reason <text>', description: 'why' }],
  }),
  approveAction: operation('approveAction', {
    verb: 'approve',
    summary: "approve (or --reject) the playbook step that waits for an engineer's approval",
    cli: [
      { field: 'stepId', argument: '<step>', description: 'the step id the playbook names', required: true },
      { field: 'approve', option: '--reject', description: 'refuse the step instead', inverts: true },
    ],
  }),
} as const satisfies { [K in OperationName]: OperationSpec<K> };

/**
 * The failure type an update's validator refuses with: `Forbidden` when the actor's roles do not permit
 * the operation (the policy's `permissions`; the API answers 403), `Refused` for anything else (409).
 */
export const REFUSAL_FAILURE_TYPES = { refused: 'Refused', forbidden: 'Forbidden' } as const;

/** Every operation, in the table's order. */
export const OPERATION_LIST: readonly OperationSpec<OperationName>[] = OPERATION_NAMES.map(
  (name) => OPERATIONS[name] as OperationSpec<OperationName>,
);

/** The operation a verb names (`ack` → acknowledge), or undefined. */
export function operationByVerb(verb: string): OperationSpec<OperationName> | undefined {
  return OPERATION_LIST.find((op) => op.verb === verb);
}

export { operationInputs };
export type { OperationName };
