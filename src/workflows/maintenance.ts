import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  addWindowRefusal,
  endWindow,
  endWindowRefusal,
  newWindow,
  pruneWindows,
} from '../domain/maintenance.ts';
import type { MaintenanceWindow } from '../domain/maintenance.ts';
import {
  addMaintenanceWindowUpdate,
  endMaintenanceWindowUpdate,
  maintenanceWindowsQuery,
} from '../contract/maintenance.ts';
import type { MaintenanceWorkflowInput } from '../contract/maintenance.ts';

/** Continue-as-new well before Temporal's history limits; tests force a small value. */
const HISTORY_EVENTS_BEFORE_CONTINUE = 2_000;
/** How often windows that ended long ago are dropped, when nothing else happens. */
const PRUNE_EVERY_MS = 24 * 3_600_000;

/**
 * The operators' maintenance windows (`incident maintenance add|list|end`): a
 * singleton that never completes. Clients read it with the query and change
 * it with updates whose validators share the domain's refusal rules.
 */
export async function maintenanceWindowsWorkflow(input: MaintenanceWorkflowInput): Promise<void> {
  let windows: MaintenanceWindow[] = pruneWindows(input.windows, Date.now());

  const refuse = (reason: string | undefined) => {
    if (reason) throw ApplicationFailure.nonRetryable(reason, 'Refused');
  };
  setHandler(
    addMaintenanceWindowUpdate,
    (request) => {
      // uuid4() is deterministic in a workflow: the id replays the same.
      const window = newWindow(`mw-${uuid4().replaceAll('-', '').slice(0, 8)}`, request);
      windows = [...pruneWindows(windows, Date.now()), window];
      return window;
    },
    { validator: (request) => refuse(addWindowRefusal(request, Date.now())) },
  );
  setHandler(
    endMaintenanceWindowUpdate,
    (request) => {
      const now = Date.now();
      let ended: MaintenanceWindow | undefined;
      windows = windows.map((w) => (w.id === request.id ? (ended = endWindow(w, now, request.by)) : w));
      // The validator ran in the same workflow task, so the window is there.
      if (!ended) throw ApplicationFailure.nonRetryable(`no maintenance window ${request.id}`, 'Refused');
      return ended;
    },
    { validator: (request) => refuse(endWindowRefusal(windows, request, Date.now())) },
  );
  setHandler(maintenanceWindowsQuery, () => windows);

  const limit = input.continueAsNewAfterEvents ?? HISTORY_EVENTS_BEFORE_CONTINUE;
  const continuing = () => workflowInfo().historyLength >= limit || workflowInfo().continueAsNewSuggested;
  for (;;) {
    await condition(continuing, PRUNE_EVERY_MS);
    windows = pruneWindows(windows, Date.now());
    if (continuing()) {
      // Let updates in flight finish first: their windows are part of what is carried.
      await condition(allHandlersFinished);
      await continueAsNew<typeof maintenanceWindowsWorkflow>({ ...input, windows });
    }
  }
}
