import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { parsePolicy } from '../../src/domain/policy.ts';
import type { Policy } from '../../src/domain/policy.ts';

/** A recursive partial of the policy file's document; arrays and scalars replace, objects merge. */
export type PolicyPatch = { [key: string]: unknown };

const DEFAULT_POLICY_PATH = new URL('../../config/default.yaml', import.meta.url);

/** The real policy document (config/default.yaml), as parsed YAML before validation. */
export function loadDefaultDocument(): Record<string, unknown> {
  return parse(readFileSync(DEFAULT_POLICY_PATH, 'utf8')) as Record<string, unknown>;
}

/** The real policy, validated. */
export function loadDefaultPolicy(): Policy {
  return parsePolicy(loadDefaultDocument(), 'config/default.yaml');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete out[key];
    else out[key] = merge(base[key], value);
  }
  return out;
}

/**
 * The real policy with `patch` deep-merged into its document before validation,
 * written the way the file is (durations as "5m"):
 * `policyWith({ businessHours: { holidays: ['2025-03-06'] } })`. A key patched to
 * `undefined` is removed.
 */
export function policyWith(patch: PolicyPatch): Policy {
  return parsePolicy(merge(loadDefaultDocument(), patch), 'config/default.yaml (patched)');
}

/**
 * The real policy file with `patch` merged in (as {@link policyWith}), validated and written to a
 * temporary file: what a stack's `INCIDENT_CONFIG` points at.
 */
export function policyFileWith(patch: PolicyPatch): string {
  const document = merge(loadDefaultDocument(), patch);
  parsePolicy(document, 'config/default.yaml (patched)');
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'pno-policy-')), 'policy.yaml');
  writeFileSync(file, stringify(document));
  return file;
}

/**
 * Alice, the on-call engineer, also the engineering lead: for tests in which she assigns a commander or
 * resolves a P0/P1 on her own (the policy's `permissions` give those to the lead and the commander).
 */
export const ALICE_ALSO_LEADS: PolicyPatch = {
  people: { alice: { roles: ['on-call-engineer', 'engineering-lead'] } },
};
