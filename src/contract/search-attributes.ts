import { defineSearchAttributeKey } from '@temporalio/common';
import type { SearchAttributePair } from '@temporalio/common';
import type { IncidentState } from '../domain/incident.ts';

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

/** The incident facts the search attributes carry. */
export type SearchableIncident = Pick<
  IncidentState,
  'id' | 'severity' | 'status' | 'service' | 'escalationLevel'
>;

/** The values of {@link incidentSearchAttributes} for an incident: the one place that pairs keys with facts. */
export function searchAttributesOf(incident: SearchableIncident): SearchAttributePair[] {
  return [
    { key: IncidentIdAttribute, value: incident.id },
    { key: IncidentSeverityAttribute, value: incident.severity },
    { key: IncidentStatusAttribute, value: incident.status },
    { key: IncidentServiceAttribute, value: incident.service },
    { key: IncidentEscalationLevelAttribute, value: incident.escalationLevel },
  ];
}
