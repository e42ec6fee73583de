/**
 * Prometheus, promtool and Alertmanager for the e2e tests: found on PATH, or installed from the Debian
 * packages with apt-get when this process may (root).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { runProcess } from '../process.ts';
import type { Log } from './cache.ts';
import { stderrLog, toolsDir, which, withLock } from './cache.ts';

/** Paths of the Prometheus tools. */
export interface PrometheusTools {
  prometheus: string;
  promtool: string;
  alertmanager: string;
}

const PROMETHEUS_PACKAGES = ['prometheus', 'prometheus-alertmanager'];
/** Debian names the Alertmanager binary `prometheus-alertmanager`; upstream tarballs call it `alertmanager`. */
const ALERTMANAGER_NAMES = ['prometheus-alertmanager', 'alertmanager'];

function locatePrometheus(searchPath: string): PrometheusTools | undefined {
  const prometheus = which('prometheus', searchPath);
  const promtool = which('promtool', searchPath);
  const alertmanager = ALERTMANAGER_NAMES.map((n) => which(n, searchPath)).find(Boolean);
  return prometheus && promtool && alertmanager ? { prometheus, promtool, alertmanager } : undefined;
}

/**
 * The Debian packages start (or enable) system services listening on 9090/9093. Nothing of ours may depend
 * on those, and they would collide with test instances, so stop and disable them. Containers often have no
 * init system (no systemd, a policy-rc.d that denies starts): every step is best effort.
 */
async function stopPackagedServices(log: Log): Promise<void> {
  const attempt = async (cmd: string, args: string[]) => {
    const bin = which(cmd) ?? which(cmd, '/usr/sbin:/sbin:/usr/bin:/bin');
    if (!bin) return;
    await runProcess(bin, args).catch(() => undefined);
  };
  const systemdRunning = existsSync('/run/systemd/system');
  for (const service of PROMETHEUS_PACKAGES) {
    if (systemdRunning) {
      await attempt('systemctl', ['disable', '--now', `${service}.service`]);
    } else {
      // Offline `systemctl disable` just removes the wants/ symlinks, so a later boot with systemd
      // does not start them either.
      await attempt('systemctl', ['disable', `${service}.service`]);
      if (existsSync(`/etc/init.d/${service}`)) {
        await attempt('service', [service, 'stop']);
        await attempt('update-rc.d', [service, 'disable']);
      }
    }
  }
  log('stopped and disabled the packaged prometheus/alertmanager services (we run our own instances)');
}

/**
 * Paths of `prometheus`, `promtool` and the Alertmanager binary. When absent and this process may install
 * Debian packages (root + apt-get), installs `prometheus` and `prometheus-alertmanager` with apt-get and
 * stops the services the packages start; otherwise throws an error saying how to install them.
 *
 * @param opts.path where to look (default `$PATH` plus /usr/bin); `opts.allowInstall` false forbids apt-get.
 */
export async function ensurePrometheus(
  opts: { log?: Log; path?: string; allowInstall?: boolean } = {},
): Promise<PrometheusTools> {
  const searchPath = opts.path ?? [process.env['PATH'] ?? '', '/usr/bin'].join(path.delimiter);
  const found = locatePrometheus(searchPath);
  if (found) return found;

  const log = opts.log ?? stderrLog;
  const aptGet = which('apt-get', `${process.env['PATH'] ?? ''}:/usr/bin:/usr/sbin`);
  const isRoot = process.getuid?.() === 0;
  const allowInstall = opts.allowInstall ?? (isRoot && aptGet !== undefined);
  if (!allowInstall || !aptGet) {
    throw new Error(
      `prometheus, promtool and alertmanager are needed but not all found on PATH.\n` +
        `Install them (Debian/Ubuntu, as root: apt-get update && apt-get install -y --no-install-recommends ` +
        `${PROMETHEUS_PACKAGES.join(' ')}), or put the binaries ` +
        `(prometheus, promtool, alertmanager or prometheus-alertmanager) on PATH.`,
    );
  }

  // apt-get has its own lock but fails instead of waiting on it; serialise our own concurrent runs.
  await withLock(
    path.join(toolsDir(), 'apt.lock'),
    async () => {
      if (locatePrometheus(searchPath)) return;
      const started = Date.now();
      log(`installing Debian packages ${PROMETHEUS_PACKAGES.join(', ')} with apt-get (first time only)…`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const show = (line: string) => line.trim() && log(`  apt: ${line}`);
      await runProcess(aptGet, ['update'], { env, onLine: show });
      await runProcess(aptGet, ['install', '-y', '--no-install-recommends', ...PROMETHEUS_PACKAGES], {
        env,
        onLine: show,
      });
      await stopPackagedServices(log);
      log(`prometheus packages installed in ${Math.round((Date.now() - started) / 1000)} s`);
    },
    { log, label: 'installing prometheus packages', staleMs: 30 * 60_000 },
  );
  const installed = locatePrometheus(searchPath);
  if (!installed)
    throw new Error(`apt-get installed ${PROMETHEUS_PACKAGES.join(' ')} but the binaries are not on PATH`);
  return installed;
}
