import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  alertsReceivedSignal,
  assignCommanderUpdate,
  escalateUpdate,
  postUpdateUpdate,
  recordSecurityEvaluationUpdate,
  resolveUpdate,
} from '../../src/workflows/messages.ts';
import type { Policy } from '../../src/domain/policy.ts';
import type { Harness } from '../support/workflow-env.ts';
import { alertBatch, startAlertIncident } from '../support/workflow-env.ts';

/**
 * Representative incidents, run on the time-skipping server. Their histories
 * are committed (test/workflows/histories) and replayed by every test run, so
 * a change that would break incidents already running fails the build.
 */
export interface Scenario {
  name: string;
  run(env: TestWorkflowEnvironment, harness: Harness, policy: Policy): Promise<WorkflowHandle>;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'p0-full-lifecycle',
    async run(env, h, policy) {
      const { handle } = await startAlertIncident(env, h, policy, [
        { labels: { alertname: 'ServiceDown', severity: 'page' } },
      ]);
      await env.sleep('6 minutes'); // ack_timeout
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(postUpdateUpdate, {
        args: [{ by: 'alice', message: 'rolling back', actions: ['rollback'] }],
      });
      await env.sleep('40 minutes'); // time_based, no_progress
      await handle.executeUpdate(assignCommanderUpdate, { args: [{ by: 'alice', commander: 'carol' }] });
      await handle.executeUpdate(recordSecurityEvaluationUpdate, {
        args: [{ by: 'dave', finding: 'none', related: false }],
      });
      await handle.signal(acknowledgeSignal, { by: 'mallory' }); // rejected
      await handle.executeUpdate(resolveUpdate, {
        args: [{ by: 'carol', rootCause: 'bad deploy', prevention: 'canary' }],
      });
      await handle.result();
      return handle;
    },
  },
  {
    name: 'p2-alerts-clear-auto-resolve',
    async run(env, h, policy) {
      const alert = { labels: { alertname: 'PodCrash', severity: 'warning' } };
      const { handle } = await startAlertIncident(env, h, policy, [alert]);
      await handle.executeUpdate(escalateUpdate, { args: [{ by: 'alice', reason: 'needs the lead' }] });
      await handle.signal(
        alertsReceivedSignal,
        alertBatch(policy, { alerts: [{ ...alert, status: 'resolved' }] }),
      );
      await env.sleep('31 minutes');
      await handle.result();
      return handle;
    },
  },
  {
    name: 'p1-continue-as-new',
    async run(env, h, policy) {
      const { handle } = await startAlertIncident(env, h, policy, [{ labels: { severity: 'critical' } }], {
        continueAsNewAfterEvents: 30,
      });
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: 'alice' }] });
      for (let i = 0; i < 6; i += 1) {
        await handle.signal(
          alertsReceivedSignal,
          alertBatch(policy, {
            alerts: [{ labels: { severity: 'critical' }, fingerprint: `cafe00000000000${i}` }],
          }),
        );
        await env.sleep('10 minutes');
      }
      return handle;
    },
  },
];
