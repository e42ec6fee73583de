import { randomBytes } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { readJsonLines } from './jsonl-file.ts';

/**
 * The dead-letter file: alert deliveries that were valid but could not be ingested (an internal error, a
 * payload Temporal refused), kept so that nothing Alertmanager sent is lost. The webhook answers them 202
 * (`action: "deadlettered"`), because Alertmanager would otherwise retry a 5xx until it drops the group; an
 * operator lists them (`incident deadletter list`) and replays them once the cause is fixed
 * (`incident deadletter replay <id>|--all`), through the same ingestion path. An unreachable Temporal is
 * never a dead letter: that answer stays a 503, which Alertmanager retries.
 *
 * Written by the API, read and marked by the CLI, like the outbox (src/outbox-file.ts): JSON Lines, append
 * only. A letter is one line; replaying it appends an event line for it (`replayed`, or `replay_failed`), so
 * several writers never rewrite each other's lines, and a torn or foreign line is skipped.
 */

/** Which alert webhook a letter came in through: its body is replayed through the same mapping. */
export type DeadLetterSource = 'alertmanager' | 'grafana' | 'generic';
export const DEAD_LETTER_SOURCES: readonly DeadLetterSource[] = ['alertmanager', 'grafana', 'generic'];

/** One delivery that could not be ingested. */
export interface DeadLetter {
  /** `dl-` + time + random hex, sortable by time. */
  id: string;
  /** ISO 8601 time it was received. */
  at: string;
  source: DeadLetterSource;
  /** Where it failed: mapping the body to alerts, or handing the alerts to Temporal. */
  stage: 'mapping' | 'ingest';
  /** The error, as the API saw it. */
  error: string;
  /** The alert group, when it was read (shortened): to find a letter in the list. */
  receiver?: string;
  groupKey?: string;
  workflowId?: string;
  alerts?: number;
  /** The body as received (parsed JSON): what a replay submits again. */
  body: unknown;
}

/** What happened to a letter since: each line names the letter it is about. */
export type DeadLetterEvent =
  | {
      event: 'replayed';
      id: string;
      at: string;
      result: { id: string | null; workflowId: string; action: string };
    }
  | { event: 'replay_failed'; id: string; at: string; error: string };

/** A letter with its events folded in. */
export interface DeadLetterView extends DeadLetter {
  status: 'pending' | 'replayed';
  replayedAt?: string;
  result?: { id: string | null; workflowId: string; action: string };
  /** Failed replays so far, and the last one's error. */
  failedReplays: number;
  lastError?: string;
}

/**
 * The dead-letter file: `INCIDENT_DEADLETTER`, else `deadletter.jsonl` in the data directory
 * (`INCIDENT_DATA_DIR`, default `.data`). Always on: unlike the outbox, production needs it most (put it on a
 * persistent volume there).
 */
export function deadLetterPath(env: Readonly<Record<string, string | undefined>>): string {
  const configured = env['INCIDENT_DEADLETTER']?.trim();
  if (configured) return configured;
  return path.join(env['INCIDENT_DATA_DIR']?.trim() || '.data', 'deadletter.jsonl');
}

export function newDeadLetterId(now: number = Date.now()): string {
  return `dl-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

async function appendLine(file: string, value: object): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await appendFile(file, `${JSON.stringify(value)}\n`, 'utf8');
}

/** Appends a letter; the caller answers 202 only once this resolved. */
export async function appendDeadLetter(file: string, letter: DeadLetter): Promise<void> {
  await appendLine(file, letter);
}

/** Appends what became of a letter (a replay, or a failed one). */
export async function appendDeadLetterEvent(file: string, event: DeadLetterEvent): Promise<void> {
  await appendLine(file, event);
}

/**
 * The letters, oldest first, with their events folded in; optionally only those in one status, at most
 * `limit` (the newest). A missing file is no letters.
 */
export async function readDeadLetters(
  file: string,
  options: { status?: DeadLetterView['status']; limit?: number } = {},
): Promise<DeadLetterView[]> {
  const letters = new Map<string, DeadLetterView>();
  for (const { value: parsed } of await readJsonLines(file)) {
    if (isLetter(parsed)) {
      if (!letters.has(parsed.id)) letters.set(parsed.id, { ...parsed, status: 'pending', failedReplays: 0 });
      continue;
    }
    if (!isEvent(parsed)) continue;
    const letter = letters.get(parsed.id);
    if (!letter) continue;
    if (parsed.event === 'replayed') {
      letter.status = 'replayed';
      letter.replayedAt = parsed.at;
      letter.result = parsed.result;
    } else {
      letter.failedReplays += 1;
      letter.lastError = parsed.error;
    }
  }
  const all = [...letters.values()].filter(
    (l) => options.status === undefined || l.status === options.status,
  );
  return options.limit === undefined ? all : all.slice(Math.max(0, all.length - options.limit));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLetter(value: unknown): value is DeadLetter {
  return (
    isRecord(value) &&
    typeof value['id'] === 'string' &&
    typeof value['at'] === 'string' &&
    (DEAD_LETTER_SOURCES as readonly unknown[]).includes(value['source']) &&
    (value['stage'] === 'mapping' || value['stage'] === 'ingest') &&
    typeof value['error'] === 'string' &&
    Object.hasOwn(value, 'body') &&
    !Object.hasOwn(value, 'event')
  );
}

function isEvent(value: unknown): value is DeadLetterEvent {
  if (!isRecord(value) || typeof value['id'] !== 'string' || typeof value['at'] !== 'string') return false;
  if (value['event'] === 'replay_failed') return typeof value['error'] === 'string';
  return value['event'] === 'replayed' && isRecord(value['result']);
}
