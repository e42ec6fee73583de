import { readFileSync, readdirSync } from 'node:fs';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/workflow-env.ts';
import { SCENARIOS } from './scenarios.ts';

const HISTORIES = new URL('./histories/', import.meta.url);

/**
 * Replays the committed histories of representative incidents against the
 * current workflow code: a change that would break incidents already running
 * (non-determinism) fails here. The fixtures are only ever added to: record
 * a new scenario's with `npm run histories:record -- <name>`; an existing one
 * is never re-recorded or edited to make a change pass (guard the change with
 * `patched()`).
 */
describe('replay of recorded incident histories', () => {
  const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));

  it('has a fixture for every scenario', () => {
    expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
  });

  it('replays every history without non-determinism', async () => {
    const histories = files.map((file) => {
      const fixture = JSON.parse(readFileSync(new URL(file, HISTORIES), 'utf8')) as {
        workflowId: string;
        history: string;
      };
      return {
        workflowId: fixture.workflowId,
        history: proto.temporal.api.history.v1.History.decode(Buffer.from(fixture.history, 'base64')),
      };
    });
    const results = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: await workflowBundle() },
      histories,
    )) {
      results.push({ workflowId: result.workflowId, error: result.error ? String(result.error) : undefined });
    }
    expect(results).toHaveLength(SCENARIOS.length);
    expect(results.filter((r) => r.error)).toEqual([]);
  });
});
