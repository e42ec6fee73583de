/**
 * Refreshes the committed replay fixtures (test/workflows/histories/*.json)
 * from SCENARIOS. Run deliberately, never by the tests:
 *   npm run histories:record
 * then review and commit the diff.
 */
import { writeFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { loadDefaultPolicy } from '../support/policy.ts';
import { createTimeSkippingEnv } from '../support/temporal.ts';
import { createHarness } from '../support/workflow-env.ts';
import { SCENARIOS } from './scenarios.ts';

const policy = loadDefaultPolicy();
for (const scenario of SCENARIOS) {
  const env = await createTimeSkippingEnv();
  try {
    const harness = await createHarness(env);
    await harness.run(async () => {
      const handle = await scenario.run(env, harness, policy);
      // The first run's history: it holds the most varied events.
      const history = await env.client.workflow
        .getHandle(handle.workflowId, harness.firstRunIds[0])
        .fetchHistory();
      const path = new URL(`./histories/${scenario.name}.json`, import.meta.url);
      const { History, EventType } = {
        History: proto.temporal.api.history.v1.History,
        EventType: proto.temporal.api.enums.v1.EventType,
      };
      // Encoded protobuf keeps the history exact; the event list beside it makes a refresh reviewable in a diff.
      const fixture = {
        workflowId: handle.workflowId,
        events: (history.events ?? []).map((e) => EventType[e.eventType ?? 0]),
        history: Buffer.from(History.encode(History.create(history)).finish()).toString('base64'),
      };
      writeFileSync(path, `${JSON.stringify(fixture, null, 1)}\n`);
      console.log(`recorded ${scenario.name}: ${history.events?.length ?? 0} events`);
    });
  } finally {
    await env.teardown();
  }
}
