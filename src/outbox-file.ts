import { readJsonLines } from './jsonl-file.ts';

/**
 * The local outbox's file format, shared by the side that writes it (the
 * worker's `Outbox` transport, src/activities/channels/outbox.ts) and the
 * entry points that read it back (`GET /outbox`, `incident outbox`), which
 * may not import activity code: JSON Lines, one message per line.
 */
export interface OutboxEntry {
  /** ISO 8601 time the message was written. */
  at: string;
  /** The channel it stands in for: `slack`, `email`, `pager`, `sms`, `phone`, `webhook`. */
  channel: string;
  /** Who or where it would have gone: a Slack channel, an address, a number, a dedup key. */
  target: string;
  subject?: string;
  text: string;
  incidentId: string;
}

/**
 * The outbox's messages, newest first (by `at`, then by position in the
 * file), at most `limit`, optionally of one channel or incident. A missing
 * file is an empty outbox; a torn or foreign line is skipped.
 */
export async function readOutbox(
  file: string,
  options: { limit?: number; channel?: string; incidentId?: string } = {},
): Promise<OutboxEntry[]> {
  const entries: { entry: OutboxEntry; line: number }[] = [];
  for (const { value: parsed, line } of await readJsonLines(file)) {
    if (!isEntry(parsed)) continue;
    if (options.channel !== undefined && parsed.channel !== options.channel) continue;
    if (options.incidentId !== undefined && parsed.incidentId !== options.incidentId) continue;
    entries.push({ entry: parsed, line });
  }
  entries.sort((a, b) => (a.entry.at === b.entry.at ? b.line - a.line : a.entry.at < b.entry.at ? 1 : -1));
  const limit = options.limit ?? entries.length;
  return entries.slice(0, Math.max(0, limit)).map((e) => e.entry);
}

function isEntry(value: unknown): value is OutboxEntry {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.at === 'string' &&
    typeof v.channel === 'string' &&
    typeof v.target === 'string' &&
    typeof v.text === 'string' &&
    typeof v.incidentId === 'string' &&
    (v.subject === undefined || typeof v.subject === 'string')
  );
}
