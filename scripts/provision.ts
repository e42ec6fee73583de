/**
 * `npm run tools`: provisions every external tool the project runs (see scripts/lib/tools/) and prints
 * where each one is and how long getting it took. A second run only checks the cache.
 *
 * `npm run tools -- kubernetes` provisions only the opt-in Kubernetes control plane of the cluster tests
 * (scripts/lib/tools/kubernetes.ts; built from source, 15 to 40 min the first time).
 */
import { ensurePrometheus, ensureTemporalCli, ensureTestServer, toolsDir } from './lib/tools/index.ts';
import { ensureKubernetes } from './lib/tools/kubernetes.ts';

async function timed<T>(name: string, fn: () => Promise<T>, show: (value: T) => string): Promise<boolean> {
  const started = performance.now();
  try {
    const value = await fn();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${name.padEnd(22)} ${show(value)}  (${seconds} s)`);
    return true;
  } catch (err) {
    console.error(`${name.padEnd(22)} FAILED: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

console.log(`tool cache: ${toolsDir()}  (INCIDENT_TOOLS_DIR)`);
if (process.argv.slice(2).includes('kubernetes')) {
  const ok = await timed('Kubernetes', ensureKubernetes, (t) => Object.values(t).join(`\n${''.padEnd(22)} `));
  process.exit(ok ? 0 : 1);
}
// One after the other, so each time printed is that tool's own (ensureAll runs them in parallel).
const results = [
  await timed(
    'Temporal CLI',
    () => ensureTemporalCli(),
    (p) => p,
  ),
  await timed(
    'Temporal test server',
    () => ensureTestServer(),
    (p) => p,
  ),
  await timed(
    'Prometheus',
    () => ensurePrometheus(),
    (t) => `${t.prometheus}\n${''.padEnd(22)} ${t.promtool}\n${''.padEnd(22)} ${t.alertmanager}`,
  ),
];
if (results.includes(false)) process.exitCode = 1;
