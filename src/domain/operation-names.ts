/**
 * Every engineer operation, in the table's order (the CLI's commands and the API's routes follow it), and the
 * one list the permissions are made from. Listed rather than read off the schemas (./operations.ts) so that it
 * costs nothing to load; operations.ts checks at compile time that it is the schemas' set.
 */
export const OPERATION_NAMES = [
  'acknowledge',
  'postUpdate',
  'escalate',
  'changeSeverity',
  'assignCommander',
  'recordSecurityEvaluation',
  'mitigate',
  'resolve',
  'runPlaybook',
  'cancelPlaybook',
  'approveAction',
] as const;

export type ListedOperation = (typeof OPERATION_NAMES)[number];
