import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { ObtainedPolicy, PolicyRef } from './contract/messages.ts';
import type { Person, Policy } from './domain/policy.ts';
import { canonicalJson, withoutContacts } from './domain/workflow-policy.ts';

/**
 * Policies by content hash. A new incident names its policy by `policyRef: {hash}` instead of carrying
 * it in every signal-with-start; its run obtains the policy once, at its start, from the worker
 * (`incidentPolicy`, a local activity), and carries it through continue-as-new.
 *
 * The hash is the sha256 of the canonical JSON of the policy without contacts (what workflows see,
 * src/domain/workflow-policy.ts), after the environment's overrides. Whoever starts incidents (the API,
 * the CLI's `declare`) writes that snapshot to `<dir>/<hash>.json` when it first starts one, and the
 * worker writes its own when it starts; the worker answers a hash from its own policy, else from that
 * directory (its content checked against its name). A hash found nowhere (a worker and an API on
 * different policy files, without a shared directory) gets the worker's current policy, and the
 * incident's timeline says so: never silently.
 *
 * The directory: `INCIDENT_POLICY_DIR`, else `policies/` in the data directory (`INCIDENT_DATA_DIR`,
 * default `.data`). Snapshots hold no contact details and no secrets (those stay `${VAR}` references).
 */

const HASH = /^[0-9a-f]{64}$/;

/** The policy's snapshot for workflows (no contacts) and its content hash. */
export function policySnapshot(policy: Policy): { ref: PolicyRef; policy: Policy; json: string } {
  const stripped = withoutContacts(policy);
  const json = canonicalJson(stripped);
  return { ref: { hash: sha256(json) }, policy: stripped, json };
}

/** The content hash of the policy's snapshot for workflows. */
export function policyRefOf(policy: Policy): PolicyRef {
  return policySnapshot(policy).ref;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Where policy snapshots are kept: `INCIDENT_POLICY_DIR`, else `<INCIDENT_DATA_DIR or .data>/policies`. */
export function policySnapshotDir(env: Readonly<Record<string, string | undefined>>): string {
  const configured = env['INCIDENT_POLICY_DIR']?.trim();
  if (configured) return configured;
  return path.join(env['INCIDENT_DATA_DIR']?.trim() || '.data', 'policies');
}

/**
 * Writes the policy's snapshot as `<dir>/<hash>.json`, unless it is there already (content-addressed: an
 * existing file of that name holds the same policy); a write is a temporary file renamed into place, so a
 * reader never sees half a file. Answers the policy's reference.
 */
export async function writePolicySnapshot(dir: string, policy: Policy): Promise<PolicyRef> {
  const { ref, json } = policySnapshot(policy);
  const file = path.join(dir, `${ref.hash}.json`);
  if (await exists(file)) return ref;
  await mkdir(dir, { recursive: true });
  const temporary = path.join(dir, `.${ref.hash}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, `${json}\n`, 'utf8');
    await rename(temporary, file);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
  return ref;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The worker's policies: its own (whose people's contacts the `deliver` activity reads), those it has
 * found by hash, and the snapshot directory. `obtain` never throws for a policy it cannot find: it answers
 * the worker's current policy, and says why.
 */
export class PolicySnapshots {
  private readonly full: Policy;
  private readonly currentSnapshot: { ref: PolicyRef; policy: Policy };
  private readonly dir: string | undefined;
  private readonly known = new Map<string, Policy>();

  constructor(options: { current: Policy; dir?: string }) {
    this.full = options.current;
    const { ref, policy } = policySnapshot(options.current);
    this.currentSnapshot = { ref, policy };
    this.known.set(ref.hash, policy);
    this.dir = options.dir;
  }

  /** The worker's current policy's reference. */
  get current(): PolicyRef {
    return this.currentSnapshot.ref;
  }

  /** A person of the worker's current policy, with their contacts; own properties only. */
  person(handle: string): Person | undefined {
    return Object.hasOwn(this.full.people, handle) ? this.full.people[handle] : undefined;
  }

  /** Makes a policy known in memory (a process that both starts incidents and runs them, tests). */
  add(policy: Policy): PolicyRef {
    const { ref, policy: stripped } = policySnapshot(policy);
    this.known.set(ref.hash, stripped);
    return ref;
  }

  /** Writes the worker's own snapshot to the directory, so that every process sharing it finds it. */
  async publish(): Promise<PolicyRef | undefined> {
    if (!this.dir) return undefined;
    return writePolicySnapshot(this.dir, this.full);
  }

  /** The policy of that hash, else the worker's current one with the reason it was not found. */
  async obtain(hash: string): Promise<ObtainedPolicy> {
    const requested = HASH.test(hash) ? hash : printable(hash);
    if (!HASH.test(hash)) return this.fallback(requested, 'not a policy hash (64 hex digits)');
    const cached = this.known.get(hash);
    if (cached) return { policy: cached, hash };
    if (!this.dir) return this.fallback(requested, 'not this worker’s policy, and no snapshot directory');
    const file = path.join(this.dir, `${hash}.json`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return this.fallback(
        requested,
        code === 'ENOENT'
          ? `not this worker’s policy, and no snapshot ${file}`
          : `snapshot ${file} unreadable: ${code ?? String(err)}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.fallback(requested, `snapshot ${file} is not JSON`);
    }
    if (!isObject(parsed) || !isObject(parsed['people']))
      return this.fallback(requested, `snapshot ${file} is not a policy`);
    const found = policySnapshot(parsed as Policy);
    if (found.ref.hash !== hash)
      return this.fallback(requested, `snapshot ${file} does not hold the policy of its name`);
    this.known.set(hash, found.policy);
    return { policy: found.policy, hash };
  }

  private fallback(requested: string, reason: string): ObtainedPolicy {
    return {
      policy: this.currentSnapshot.policy,
      hash: this.currentSnapshot.ref.hash,
      missing: { requested, reason },
    };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An untrusted reference as the timeline may quote it: short, printable. */
function printable(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean === '' ? '(none)' : clean;
}
