import { mkdir, open } from 'node:fs/promises';
import * as path from 'node:path';
import { isIncidentId } from './contract/incident-id.ts';
import { RECORD_SECTIONS } from './domain/incident-record.ts';
import type { ArchivedEntry } from './domain/incident-record.ts';
import { readJsonLines } from './jsonl-file.ts';

/**
 * The incident record store: what bounded incident runs let go of (src/domain/incident-record.ts), one
 * append-only JSON Lines file per incident in a directory the worker writes and the API and CLI read:
 * `INCIDENT_RECORDS_DIR`, else `records/` in the data directory (`INCIDENT_DATA_DIR`, default `.data`).
 * Always on; in production it is a volume both mount (deploy/k8s/incident-response.yaml).
 *
 * Appends are synced before they are acknowledged (the workflow forgets the entries once the activity
 * succeeds) and may repeat (a retried activity): readers keep each `(section, index)` once.
 */
export function incidentRecordDir(env: Readonly<Record<string, string | undefined>>): string {
  const configured = env['INCIDENT_RECORDS_DIR']?.trim();
  if (configured) return configured;
  return path.join(env['INCIDENT_DATA_DIR']?.trim() || '.data', 'records');
}

export class IncidentRecordFile {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  private fileOf(incidentId: string): string {
    // The id names the file: only a well-formed one (`INC-` + 8 hex) can, so no path escapes the directory.
    if (!isIncidentId(incidentId)) throw new Error(`not an incident id: ${JSON.stringify(incidentId)}`);
    return path.join(this.dir, `${incidentId}.jsonl`);
  }

  /** Appends `entries` to the incident's record, durably (synced) before it resolves. */
  async append(incidentId: string, entries: readonly ArchivedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const file = this.fileOf(incidentId);
    await mkdir(this.dir, { recursive: true });
    // A leading newline ends a line torn by a writer that died mid-append, so this one still parses.
    const text = `\n${entries.map((e) => JSON.stringify(e)).join('\n')}\n`;
    const handle = await open(file, 'a');
    try {
      await handle.appendFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Every entry the incident's runs let go, each `(section, index)` once, in file order. */
  async read(incidentId: string): Promise<ArchivedEntry[]> {
    const seen = new Set<string>();
    const entries: ArchivedEntry[] = [];
    for (const { value } of await readJsonLines(this.fileOf(incidentId))) {
      if (!isArchivedEntry(value)) continue;
      const key = `${value.section}:${value.index}`;
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push(value);
    }
    return entries;
  }
}

function isArchivedEntry(value: unknown): value is ArchivedEntry {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<ArchivedEntry>;
  return (
    typeof v.section === 'string' &&
    (RECORD_SECTIONS as readonly string[]).includes(v.section) &&
    typeof v.index === 'number' &&
    Number.isInteger(v.index) &&
    'value' in v
  );
}
