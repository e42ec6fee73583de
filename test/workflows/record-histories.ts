/**
 * Records the replay fixture (test/workflows/histories/<name>.json) of each
 * scenario that has none yet. Run deliberately, never by the tests:
 *   npm run histories:record                       every scenario without a fixture
 *   npm run histories:record -- <name> [<name>…]   just these (each must be new)
 * then review and commit the new files. A committed history is never
 * re-recorded or edited: it stands for incidents already running, which the
 * workflow code must keep replaying (guard a change with `patched()` instead).
 */
import { existsSync, writeFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { loadDefaultPolicy } from '../support/policy.ts';
import { createTimeSkippingEnv } from '../support/temporal.ts';
import { createHarness } from '../support/workflow-env.ts';
import { SCENARIOS } from './scenarios.ts';

const fixture = (name: string) => new URL(`./histories/${name}.json`, import.meta.url);
const requested = process.argv.slice(2);
for (const name of requested) {
  if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`no scenario named ${name}`);
  if (existsSync(fixture(name))) {
    throw new Error(`${name} has a committed history: it is never re-recorded (add a new scenario instead)`);
  }
}
const toRecord = SCENARIOS.filter((s) =>
  requested.length > 0 ? requested.includes(s.name) : !existsSync(fixture(s.name)),
);
if (toRecord.length === 0) console.log('every scenario has its history; nothing to record');

const policy = loadDefaultPolicy();
for (const scenario of toRecord) {
  const env = await createTimeSkippingEnv();
  try {
    const harness = await createHarness(env);
    await harness.run(async () => {
      const handle = await scenario.run(env, harness, policy);
      // The first run's history: it holds the most varied events.
      // A child workflow (a playbook run) has one run: its own.
      const runId = handle.workflowId === harness.started[0] ? harness.firstRunIds[0] : undefined;
      const history = await env.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
      const path = fixture(scenario.name);
      const { History, EventType } = {
        History: proto.temporal.api.history.v1.History,
        EventType: proto.temporal.api.enums.v1.EventType,
      };
      // Encoded protobuf keeps the history exact; the event list beside it makes a refresh reviewable in a diff.
      const recorded = {
        workflowId: handle.workflowId,
        events: (history.events ?? []).map((e) => EventType[e.eventType ?? 0]),
        history: Buffer.from(History.encode(History.create(history)).finish()).toString('base64'),
      };
      // 'wx': fail rather than replace a history that appeared meanwhile.
      writeFileSync(path, `${JSON.stringify(recorded, null, 1)}\n`, { flag: 'wx' });
      console.log(`recorded ${scenario.name}: ${history.events?.length ?? 0} events`);
    });
  } finally {
    await env.teardown();
  }
}
