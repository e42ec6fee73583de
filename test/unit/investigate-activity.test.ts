/**
 * The `investigate` activity keeps heartbeating while a read runs: one read against a hung API server (two
 * calls of up to 15 s) and its backoffs outlast the 30 s heartbeat timeout, and an activity that went quiet
 * would be timed out and retried from the start, losing what it had read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { investigateActivity } from '../../src/activities/playbooks/investigate.ts';
import type { Investigation } from '../../src/domain/investigation-plan.ts';
import { playbookTarget } from '../../src/domain/playbook.ts';
import { playbookSettings } from '../../src/domain/playbook-settings.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const policy = loadDefaultPolicy();

describe('the investigate activity', () => {
  it('heartbeats every third of its heartbeat timeout while a slow read runs', async () => {
    const cluster = new FakeCluster({ revisionAgesMinutes: [60] });
    const reads = cluster.activities();
    const investigate = investigateActivity({
      ...reads,
      // The API server takes 1 s to answer (ten times the 100 ms heartbeat interval of a 300 ms timeout).
      rolloutHistory: async (a) => {
        await sleep(1_000);
        return reads.rolloutHistory(a);
      },
    });
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 300 });
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    const found: Investigation = await env.run(investigate, {
      incidentId: 'INC-0000beef',
      incidentWorkflowId: 'alertgroup-x',
      target: playbookTarget(policy),
      settings: playbookSettings(policy),
      runId: 'investigation-INC-0000beef',
    });
    expect(found.incomplete).toBeUndefined();
    expect(found.summary).toContain('rollout history: rev 1');
    // Once when the read starts, then about every 100 ms of its second: before, once per read only.
    expect(beats.filter((b) => b === 'recent_deployments').length).toBeGreaterThanOrEqual(5);
  });
});
