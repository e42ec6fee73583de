// The worker's workflow bundle entry: every workflow type the task queue runs.
export { incidentWorkflow } from './incident.ts';
export { maintenanceWindowsWorkflow } from './maintenance.ts';
export { watchdogWorkflow } from './watchdog.ts';
export * from './playbooks/index.ts';
