import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeliveryError } from './errors.ts';
import { truncateText } from './text.ts';
import type { OutboxEntry } from '../../outbox-file.ts';

export type { OutboxEntry };

/** What one line's text is cut to, keeping every append a single write. */
export const OUTBOX_TEXT_MAX = 64 * 1024;

export interface OutboxOptions {
  file: string;
  now?: () => Date;
}

/**
 * The laptop's transport: with no provider configured, every message that
 * would have gone out is appended to a JSON Lines file (`<dataDir>/outbox.jsonl`),
 * which `GET /outbox` and `incident outbox` read back (src/outbox-file.ts,
 * the file's format and reader, shared with those entry points).
 *
 * Each message is one line written by one `appendFile` (O_APPEND, a single
 * write for lines under Node's 512 KiB chunk): concurrent workers append
 * whole lines, never interleaved ones. Texts are capped well below that.
 */
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
