import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { MaintenanceWindowRef } from '../../domain/lifecycle.ts';
import { activeWindow, policyWindows, stateAt } from '../../domain/maintenance.ts';
import type {
  MaintenanceState,
  MaintenanceWindow,
  MaintenanceWindowInput,
} from '../../domain/maintenance.ts';
import type { Policy } from '../../domain/policy.ts';
import {
  MAINTENANCE_WORKFLOW_ID,
  MAINTENANCE_WORKFLOW_TYPE,
  addMaintenanceWindowUpdate,
  endMaintenanceWindowUpdate,
  maintenanceWindowsQuery,
} from '../../contract/maintenance.ts';
import type { MaintenanceWorkflowInput } from '../../contract/maintenance.ts';
import { MaintenanceNotFoundError, MaintenanceRefusedError } from './errors.ts';

export { MaintenanceNotFoundError, MaintenanceRefusedError };

/** A window as `incident maintenance list` shows it: where it comes from and where it stands. */
export interface MaintenanceWindowView extends MaintenanceWindow {
  source: 'policy' | 'operator';
  state: MaintenanceState;
}

/**
 * What starting an incident needs: the window covering its service now, if any.
 * Never throws: an unreachable maintenance store means "no window", so paging
 * is never blocked because the store is down.
 */
export interface MaintenanceLookup {
  activeFor(service: string, at: number): Promise<MaintenanceWindowRef | undefined>;
}

/** What the CLI needs; tests substitute their own. */
export interface MaintenanceStore extends MaintenanceLookup {
  add(input: MaintenanceWindowInput): Promise<MaintenanceWindow>;
  list(at?: number): Promise<MaintenanceWindowView[]>;
  end(id: string, by?: string): Promise<MaintenanceWindow>;
}

/** No windows at all (tests, and a gateway that must not look). */
export const NO_MAINTENANCE: MaintenanceLookup = { activeFor: () => Promise.resolve(undefined) };

export interface TemporalMaintenanceOptions {
  /** How long the operators' windows are reused for lookups (the webhook looks for every new incident). */
  cacheMs?: number;
  /** Bound on one lookup: past it, the incident opens as if no window held. */
  lookupTimeoutMs?: number;
  now?: () => number;
  /** Told when a lookup fails and is treated as "no window". */
  onLookupError?: (err: unknown) => void;
}

/**
 * The policy's windows and the operators' ones (the `maintenance-windows` workflow), as the CLI and
 * the incident gateway use them. `add` is update-with-start, so the workflow exists on first use.
 */
export class TemporalMaintenance implements MaintenanceStore {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly policyWindows: MaintenanceWindow[];
  private readonly cacheMs: number;
  private readonly lookupTimeoutMs: number;
  private readonly now: () => number;
  private readonly onLookupError: (err: unknown) => void;
  private cached: { at: number; windows: Promise<MaintenanceWindow[]> } | undefined;

  constructor(client: Client, taskQueue: string, policy: Policy, options: TemporalMaintenanceOptions = {}) {
    this.client = client;
    this.taskQueue = taskQueue;
    // A snapshot taken before `maintenance` was a policy key has none.
    this.policyWindows = policyWindows((policy as Partial<Policy>).maintenance);
    this.cacheMs = options.cacheMs ?? 5_000;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? 500;
    this.now = options.now ?? Date.now;
    this.onLookupError = options.onLookupError ?? (() => undefined);
  }

  async add(input: MaintenanceWindowInput): Promise<MaintenanceWindow> {
    const start = new WithStartWorkflowOperation(MAINTENANCE_WORKFLOW_TYPE, {
      workflowId: MAINTENANCE_WORKFLOW_ID,
      taskQueue: this.taskQueue,
      args: [{ windows: [] } satisfies MaintenanceWorkflowInput],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: 'Maintenance windows (incident maintenance add|list|end)',
    });
    try {
      return await this.client.workflow.executeUpdateWithStart(addMaintenanceWindowUpdate, {
        args: [input],
        startWorkflowOperation: start,
      });
    } catch (err) {
      throw refused(err);
    } finally {
      this.cached = undefined;
    }
  }

  async end(id: string, by?: string): Promise<MaintenanceWindow> {
    if (this.policyWindows.some((w) => w.id === id))
      throw new MaintenanceRefusedError(
        `maintenance window ${id} is defined in the policy file: edit its maintenance list`,
      );
    try {
      return await this.client.workflow
        .getHandle(MAINTENANCE_WORKFLOW_ID)
        .executeUpdate(endMaintenanceWindowUpdate, { args: [{ id, ...(by ? { by } : {}) }] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new MaintenanceNotFoundError(id);
      const cause = refused(err);
      if (cause instanceof MaintenanceRefusedError && cause.message === `no maintenance window ${id}`)
        throw new MaintenanceNotFoundError(id);
      throw cause;
    } finally {
      this.cached = undefined;
    }
  }

  /** Every window, the policy's first, each with its state at `at`. Errors reach the caller. */
  async list(at: number = this.now()): Promise<MaintenanceWindowView[]> {
    const operators = await this.operatorWindows();
    return [
      ...this.policyWindows.map((w) => ({ ...w, source: 'policy' as const, state: stateAt(w, at) })),
      ...operators.map((w) => ({ ...w, source: 'operator' as const, state: stateAt(w, at) })),
    ];
  }

  async activeFor(service: string, at: number): Promise<MaintenanceWindowRef | undefined> {
    const operators = await this.cachedOperatorWindows();
    return activeWindow([...this.policyWindows, ...operators], service, at);
  }

  /**
   * The operators' windows, reused for `cacheMs`, then asked again (at most `lookupTimeoutMs`, so a window
   * added with the CLI holds for incidents a few seconds later). A failed lookup keeps the last known windows
   * (none, if it never answered) for the period, so a storm of alerts while Temporal is down costs no more
   * than one short lookup per period, and paging is never blocked.
   */
  private cachedOperatorWindows(): Promise<MaintenanceWindow[]> {
    const now = this.now();
    if (!this.cached || now - this.cached.at >= this.cacheMs) {
      const previous = this.cached?.windows ?? Promise.resolve([]);
      const windows = this.client
        .withDeadline(now + this.lookupTimeoutMs, () => this.operatorWindows())
        .catch((err: unknown) => {
          this.onLookupError(err);
          return previous;
        });
      this.cached = { at: now, windows };
    }
    return this.cached.windows;
  }

  private async operatorWindows(): Promise<MaintenanceWindow[]> {
    try {
      return await this.client.workflow.getHandle(MAINTENANCE_WORKFLOW_ID).query(maintenanceWindowsQuery);
    } catch (err) {
      // Nobody has added a window yet.
      if (err instanceof WorkflowNotFoundError) return [];
      throw err;
    }
  }
}

function refused(err: unknown): unknown {
  if (err instanceof WorkflowUpdateFailedError)
    return new MaintenanceRefusedError(err.cause instanceof Error ? err.cause.message : err.message);
  return err;
}
