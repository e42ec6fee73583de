import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type {
  EndMaintenanceWindowInput,
  MaintenanceWindow,
  MaintenanceWindowInput,
} from '../domain/maintenance.ts';

/**
 * The operators' maintenance windows live in one long-running workflow per
 * namespace (workflow id {@link MAINTENANCE_WORKFLOW_ID}), started by the first
 * `incident maintenance add` (update-with-start). Its updates' validators apply
 * the rules of `src/domain/maintenance.ts`, so a bad window never enters
 * history; the query answers every window it holds (active, upcoming, and
 * those that ended in the last week).
 */

export const MAINTENANCE_WORKFLOW_TYPE = 'maintenanceWindowsWorkflow';
export const MAINTENANCE_WORKFLOW_ID = 'maintenance-windows';

export interface MaintenanceWorkflowInput {
  /** Carried over by continue-as-new. */
  windows: MaintenanceWindow[];
  /** History length after which the run continues as new (tests force a small value). */
  continueAsNewAfterEvents?: number;
}

/** Adds a window; answers it with its new id (`mw-<8 hex>`). */
export const addMaintenanceWindowUpdate = defineUpdate<MaintenanceWindow, [MaintenanceWindowInput]>(
  'addMaintenanceWindow',
);
/** Ends a window now; answers it as ended. */
export const endMaintenanceWindowUpdate = defineUpdate<MaintenanceWindow, [EndMaintenanceWindowInput]>(
  'endMaintenanceWindow',
);
/** Every window held, in the order they were added. */
export const maintenanceWindowsQuery = defineQuery<MaintenanceWindow[]>('maintenanceWindows');
