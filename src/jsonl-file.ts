import { readFile } from 'node:fs/promises';

/**
 * The records of a JSON Lines file in file order, each parsed line with its index. A missing file has
 * none; a blank, torn or non-JSON line is skipped (the files are append-only, written by several
 * processes). Shared by the outbox (src/outbox-file.ts) and the dead letters (src/deadletter-file.ts).
 */
export async function readJsonLines(file: string): Promise<{ value: unknown; line: number }[]> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const records: { value: unknown; line: number }[] = [];
  for (const [line, text] of content.split('\n').entries()) {
    if (text.trim() === '') continue;
    try {
      records.push({ value: JSON.parse(text) as unknown, line });
    } catch {
      // a torn line (a writer that died mid-append) or a foreign one
    }
  }
  return records;
}
