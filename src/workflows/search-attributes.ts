import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes every incident workflow carries, so engineers can find
 * incidents in the Temporal web UI (`IncidentSeverity = "P1"`) and the CLI can
 * look up closed incidents by id. Every server the project starts registers
 * exactly this list.
 */
export const IncidentIdAttribute = defineSearchAttributeKey('IncidentId', 'KEYWORD');
export const IncidentSeverityAttribute = defineSearchAttributeKey('IncidentSeverity', 'KEYWORD');
export const IncidentStatusAttribute = defineSearchAttributeKey('IncidentStatus', 'KEYWORD');
export const IncidentServiceAttribute = defineSearchAttributeKey('IncidentService', 'KEYWORD');
export const IncidentEscalationLevelAttribute = defineSearchAttributeKey('IncidentEscalationLevel', 'INT');

export const incidentSearchAttributes = [
  IncidentIdAttribute,
  IncidentSeverityAttribute,
  IncidentStatusAttribute,
  IncidentServiceAttribute,
  IncidentEscalationLevelAttribute,
] as const;
