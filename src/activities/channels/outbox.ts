import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeliveryError } from './errors.ts';
import { truncateText } from './text.ts';

/**
 * The laptop's transport: with no provider configured, every message that
 * would have gone out is appended to a JSON Lines file (`<dataDir>/outbox.jsonl`),
 * which `GET /outbox` and `incident outbox` read back.
 *
 * Each message is one line written by one `appendFile` (O_APPEND, a single
 * write for lines under Node's 512 KiB chunk): concurrent workers append
 * whole lines, never interleaved ones. Texts are capped well below that.
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

/** What one line's text is cut to, keeping every append a single write. */
export const OUTBOX_TEXT_MAX = 64 * 1024;

export interface OutboxOptions {
  file: string;
  now?: () => Date;
}

export class Outbox {
  private readonly file: string;
  private readonly now: () => Date;

  constructor(options: OutboxOptions) {
    this.file = options.file;
    this.now = options.now ?? (() => new Date());
  }

  /** Appends one message; answers the entry as written. */
  async append(message: Omit<OutboxEntry, 'at'> & { at?: string }): Promise<OutboxEntry> {
    const entry: OutboxEntry = {
      at: message.at ?? this.now().toISOString(),
      channel: message.channel,
      target: message.target,
      ...(message.subject !== undefined ? { subject: truncateText(message.subject, 1000) } : {}),
      text: truncateText(message.text, OUTBOX_TEXT_MAX),
      incidentId: message.incidentId,
    };
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await appendFile(this.file, `${JSON.stringify(entry)}\n`, { encoding: 'utf8', flag: 'a' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const message = `Outbox could not write ${this.file}: ${err instanceof Error ? err.message : String(err)}`;
      // A full disk may clear; a missing permission or a directory in the way will not.
      throw code === 'ENOSPC' || code === 'EMFILE' || code === 'EAGAIN'
        ? DeliveryError.transient('outbox', message, { code })
        : DeliveryError.refused('outbox', message, code ? { code } : {});
    }
    return entry;
  }
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
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: { entry: OutboxEntry; line: number }[] = [];
  for (const [line, text] of content.split('\n').entries()) {
    if (text.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue;
    }
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
