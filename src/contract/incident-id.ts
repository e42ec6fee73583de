/**
 * Incident ids (`INC-` + 8 hex characters): the rule every entry point and the
 * workflow agree on. Pure, so the workflow can mint an id from its
 * deterministic `uuid4()`; workflow ids are in `workflow-ids.ts`.
 */
export const INCIDENT_ID_PATTERN = /^INC-[0-9a-f]{8}$/;

/** Whether `value` is an incident id. */
export function isIncidentId(value: string): boolean {
  return INCIDENT_ID_PATTERN.test(value);
}

/** An incident id from a random hex string (a UUID with or without dashes): its first 8 hex digits. */
export function incidentIdFrom(randomHex: string): string {
  return `INC-${randomHex.replaceAll('-', '').slice(0, 8).toLowerCase()}`;
}
