/**
 * `npm test`: the project's one test command, also CI's (`npm ci && npm test` on a fresh machine).
 * Provisions the external tools first (Temporal CLI, Java test server, Prometheus, the Kubernetes control
 * plane of the cluster tests), then runs type check, lint, format check and vitest in that order, stopping
 * at the first failure with its exit code.
 * Arguments after `npm test --` go to vitest (e.g. `npm test -- test/unit`).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from './lib/process.ts';
import { ensureAll } from './lib/tools/index.ts';
import { ensureKubernetes } from './lib/tools/kubernetes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const vitestArgs = process.argv.slice(2);

/** The JS entry file of `pkg`'s `bin` named `name`, so it runs on this Node, not whatever `node` is on PATH. */
function binEntry(pkg: string, name: string): string {
  const manifestPath = path.join(root, 'node_modules', pkg, 'package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    bin?: string | Record<string, string>;
  };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name];
  if (!bin) throw new Error(`${pkg} has no "${name}" bin (is it installed? run npm install)`);
  return path.join(root, 'node_modules', pkg, bin);
}

function elapsed(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

async function step(title: string, entry: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  console.log(`\n── ${title} ${'─'.repeat(Math.max(0, 70 - title.length))}`);
  const started = performance.now();
  const status = await startProcess(process.execPath, [entry, ...args], { cwd: root, env, output: 'inherit' })
    .exited;
  if (status.error) console.error(`could not start ${title}: ${status.error.message}`);
  // A child killed by a signal has no code: report it as a failure like a shell would (128 + n).
  const code = status.code ?? (status.signal ? 128 + signalNumber(status.signal) : 1);
  console.log(`── ${title}: ${code === 0 ? 'ok' : `FAILED (exit code ${code})`} in ${elapsed(started)}`);
  return code;
}

function signalNumber(signal: NodeJS.Signals): number {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal as string] ?? 1;
}

async function main(): Promise<number> {
  const started = performance.now();
  console.log(`pno-incident-response tests — node ${process.version}, ${new Date().toISOString()}`);
  console.log('\n── provisioning tools (cached after the first run) ─────────────────────');
  // The control plane of the cluster tests is built here too, beside the other tools, so that on a fresh
  // machine its long Go build never competes with timing-sensitive tests.
  const [tools, kubernetes] = await Promise.all([ensureAll(), ensureKubernetes()]);
  console.log(`Temporal CLI:         ${tools.temporalCli}`);
  console.log(`Temporal test server: ${tools.testServer}`);
  console.log(`Prometheus:           ${tools.prometheus.prometheus}`);
  console.log(`Alertmanager:         ${tools.prometheus.alertmanager}`);
  console.log(`Kubernetes:           ${kubernetes.kubeApiserver} (and its siblings)`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: tools.temporalCli,
    TEMPORAL_TEST_SERVER: tools.testServer,
    PROMETHEUS_BIN: tools.prometheus.prometheus,
    PROMTOOL_BIN: tools.prometheus.promtool,
    ALERTMANAGER_BIN: tools.prometheus.alertmanager,
    // Anything that runs `node` or a node_modules/.bin shim (#!/usr/bin/env node) gets this Node 24.
    PATH: [
      path.join(root, 'node_modules', '.bin'),
      path.dirname(process.execPath),
      process.env['PATH'] ?? '',
    ].join(path.delimiter),
  };

  const steps: [string, string, string[]][] = [
    ['type check (tsc)', binEntry('typescript', 'tsc'), ['-p', 'tsconfig.json']],
    ['lint (eslint)', binEntry('eslint', 'eslint'), ['.']],
    ['format (prettier --check)', binEntry('prettier', 'prettier'), ['--check', '.']],
    ['tests (vitest)', binEntry('vitest', 'vitest'), ['run', ...vitestArgs]],
  ];
  for (const [title, entry, args] of steps) {
    const code = await step(title, entry, args, env);
    if (code !== 0) return code;
  }
  console.log(`\nall checks passed in ${elapsed(started)}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
