import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PolicyError, parsePolicy } from './domain/policy.ts';
import type { Policy } from './domain/policy.ts';

/**
 * The one config loader: the policy file (`INCIDENT_CONFIG`, else
 * config/default.yaml) and the process settings from the environment. Every
 * entry point calls it once at start-up and exits non-zero on a bad file.
 */
export const DEFAULT_POLICY_PATH = fileURLToPath(new URL('../config/default.yaml', import.meta.url));

export interface Settings {
  policyPath: string;
  policy: Policy;
  host: string;
  port: number;
  /**
   * The public status page's own listener (`STATUS_PORT`, else the policy's `statusPage.port`; `STATUS_HOST`,
   * default `host`). Unset: the main listener serves the status page.
   */
  statusPage?: { host: string; port: number };
  temporal: { address: string; namespace: string; taskQueue: string; apiKey?: string; tls: boolean };
}

type Env = Readonly<Record<string, string | undefined>>;

export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(path, [{ path: '(file)', message: `cannot read: ${(err as Error).message}` }]);
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (err) {
    throw new PolicyError(path, [{ path: '(yaml)', message: (err as Error).message }]);
  }
  return parsePolicy(document, path);
}

/**
 * The environment's overrides of policy values (DESIGN: each variable overrides the file where both exist):
 * `TEMPORAL_UI_URL` → `links.webUi`, the Temporal web UI that incident links point at; `SERVICE_HEALTH_URL` →
 * `service.healthUrl`, what the playbooks probe. Applied before the
 * policy becomes a workflow's snapshot, so an incident's links stay what they were when it started.
 */
export function applyEnvironment(policy: Policy, env: Env = process.env): Policy {
  let result = policy;
  const webUi = urlFrom(env, 'TEMPORAL_UI_URL', 'https://temporal.example.com');
  if (webUi) result = { ...result, links: { ...result.links, webUi } };
  const healthUrl = urlFrom(env, 'SERVICE_HEALTH_URL', 'https://api.example.com/health');
  if (healthUrl) result = { ...result, service: { ...result.service, healthUrl } };
  return result;
}

/** The variable's value when set, checked to be a URL (the error names the variable). */
function urlFrom(env: Env, name: string, example: string): string | undefined {
  const value = env[name];
  if (!value) return undefined;
  try {
    new URL(value);
  } catch {
    throw new PolicyError('(environment)', [
      { path: name, message: `expected a URL such as ${example}, got "${value}"` },
    ]);
  }
  return value;
}

export function temporalSettings(env: Env = process.env): Settings['temporal'] {
  const settings: Settings['temporal'] = {
    address: env['TEMPORAL_ADDRESS'] || '127.0.0.1:7233',
    namespace: env['TEMPORAL_NAMESPACE'] || 'default',
    taskQueue: env['TEMPORAL_TASK_QUEUE'] || 'incident-response',
    tls: env['TEMPORAL_TLS'] === 'true' || Boolean(env['TEMPORAL_API_KEY']),
  };
  if (env['TEMPORAL_API_KEY']) settings.apiKey = env['TEMPORAL_API_KEY'];
  return settings;
}

export function loadSettings(env: Env = process.env): Settings {
  const policyPath = env['INCIDENT_CONFIG'] || DEFAULT_POLICY_PATH;
  const port = Number(env['PORT'] || '3000');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new PolicyError('(environment)', [
      { path: 'PORT', message: `expected a port number, got "${env['PORT']}"` },
    ]);
  }
  const policy = applyEnvironment(loadPolicyFile(policyPath), env);
  const host = env['HOST'] || '127.0.0.1';
  const statusPort = env['STATUS_PORT'] ? Number(env['STATUS_PORT']) : policy.statusPage.port;
  if (statusPort !== undefined && (!Number.isInteger(statusPort) || statusPort < 0 || statusPort > 65_535)) {
    throw new PolicyError('(environment)', [
      { path: 'STATUS_PORT', message: `expected a port number, got "${env['STATUS_PORT']}"` },
    ]);
  }
  return {
    policyPath,
    policy,
    host,
    port,
    ...(statusPort !== undefined
      ? { statusPage: { host: env['STATUS_HOST'] || host, port: statusPort } }
      : {}),
    temporal: temporalSettings(env),
  };
}

/** For entry points: the settings, or the configuration error on stderr and exit code 2. */
export function loadSettingsOrExit(env: Env = process.env): Settings {
  try {
    return loadSettings(env);
  } catch (err) {
    console.error(err instanceof PolicyError ? err.message : String(err));
    process.exit(2);
  }
}
