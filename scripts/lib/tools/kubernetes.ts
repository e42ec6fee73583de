/**
 * A real Kubernetes control plane for the tests: kube-apiserver, kube-controller-manager and kube-scheduler
 * from `k8s.io/kubernetes`, etcd 3.6 (Debian's 3.4 is too old for this apiserver), and kwok, which plays
 * the kubelet of fake nodes (pods go Running and Ready without containers), with the kwok stage files that
 * drive it.
 *
 * Everything is built from source through the Go module proxy (static, `CGO_ENABLED=0`) into one cache
 * directory, `<toolsDir>/kubernetes-<version>`; first time only, 15 to 40 min on 2 cores (36 min measured
 * with cold Go caches). It is opt-in (`npm run tools -- kubernetes`, or the tests that need it), not part
 * of `ensureAll`.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { runProcess } from '../process.ts';
import type { Log } from './cache.ts';
import { buildOnce, isExecutable, stderrLog, toolsDir, which } from './cache.ts';

/** The Kubernetes release of kube-apiserver, kube-controller-manager and kube-scheduler. */
export const KUBERNETES_VERSION = '1.37.2';
/** The etcd release (module `go.etcd.io/etcd/server/v3`). */
export const ETCD_VERSION = '3.6.16';
/** The kwok release (module `sigs.k8s.io/kwok`). */
export const KWOK_VERSION = '0.8.0';

/**
 * The kwok stages copied into {@link KubernetesTools.stagesDir}, relative to the kwok module's
 * `kustomize/stage/`: nodes become Ready at once and keep their status up to date (their liveness is a node
 * lease kwok renews, with `--node-lease-duration-seconds`, as kwokctl runs it), pods go Running and Ready at
 * once.
 */
const KWOK_STAGES = ['node/fast', 'node/heartbeat-with-lease', 'pod/fast'] as const;

/** Paths of the provisioned control-plane programs; see {@link ensureKubernetes}. */
export interface KubernetesTools {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
  kwok: string;
  /** A directory of kwok `Stage` YAML files, for `kwok --config <each file>`. */
  stagesDir: string;
}

/** Cache directory: `<toolsDir>/kubernetes-<version>`, holding `bin/` and `stages/`. */
function kubernetesDir(): string {
  return path.join(toolsDir(), `kubernetes-${KUBERNETES_VERSION}`);
}

function toolsIn(dir: string): KubernetesTools {
  const bin = path.join(dir, 'bin');
  return {
    kubeApiserver: path.join(bin, 'kube-apiserver'),
    kubeControllerManager: path.join(bin, 'kube-controller-manager'),
    kubeScheduler: path.join(bin, 'kube-scheduler'),
    etcd: path.join(bin, 'etcd'),
    kwok: path.join(bin, 'kwok'),
    stagesDir: path.join(dir, 'stages'),
  };
}

/**
 * Paths of the Kubernetes control plane programs and kwok's stages, building them on first use (see the
 * module comment). A second call only checks the cache.
 */
export async function ensureKubernetes(opts: { log?: Log } = {}): Promise<KubernetesTools> {
  const dir = kubernetesDir();
  const tools = toolsIn(dir);
  const log = opts.log ?? stderrLog;
  await buildOnce(
    dir,
    async (tmpDir) => {
      const go = findGo();
      if (!go) {
        throw new Error(
          `Building Kubernetes ${KUBERNETES_VERSION} for the tests needs a Go toolchain ≥ 1.26 ` +
            `(https://go.dev/doc/install); none is on PATH or in /usr/local/go/bin.`,
        );
      }
      await buildInto(go, tmpDir, log);
    },
    {
      log,
      label: `Kubernetes ${KUBERNETES_VERSION} + etcd ${ETCD_VERSION} + kwok ${KWOK_VERSION}`,
      announce:
        `building Kubernetes ${KUBERNETES_VERSION} (kube-apiserver, kube-controller-manager, kube-scheduler), ` +
        `etcd ${ETCD_VERSION} and kwok ${KWOK_VERSION} with Go (first time only; 15 to 40 min on 2 cores with a cold Go cache)…`,
      progressEveryMs: 30_000,
    },
  );
  const binaries = [
    tools.kubeApiserver,
    tools.kubeControllerManager,
    tools.kubeScheduler,
    tools.etcd,
    tools.kwok,
  ];
  const missing = binaries.filter((p) => !isExecutable(p));
  if (missing.length) throw new Error(`the Kubernetes tool cache ${dir} lacks ${missing.join(', ')}`);
  return tools;
}

function findGo(): string | undefined {
  // Go's own installer puts it in /usr/local/go/bin, which non-login shells often lack on PATH.
  const goroot = process.env['GOROOT'];
  return (
    which('go') ??
    [goroot ? path.join(goroot, 'bin', 'go') : '', '/usr/local/go/bin/go'].find((p) => p && isExecutable(p))
  );
}

/** Runs `go args` in `cwd`, printing what go prints ("go: downloading …" is the progress of a cold cache). */
type Go = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => Promise<string[]>;

function goRunner(go: string, log: Log): Go {
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' };
  // `go install` refuses GOBIN for cross-compiled binaries; we want binaries for this machine anyway.
  delete baseEnv['GOOS'];
  delete baseEnv['GOARCH'];
  return async (args, cwd, env = {}) => {
    const lines: string[] = [];
    await runProcess(go, args, {
      cwd,
      env: { ...baseEnv, ...env },
      onLine: (line) => {
        lines.push(line);
        // `go mod download -json` prints JSON; only the human lines are progress.
        if (line.trim() && !args.includes('-json')) log(`  ${line}`);
      },
    });
    return lines;
  };
}

/** The module cache directory of `module@version`, downloading it if needed. */
async function moduleDir(runGo: Go, module: string, version: string, cwd: string): Promise<string> {
  const json = (await runGo(['mod', 'download', '-json', `${module}@${version}`], cwd)).join('\n');
  const info = JSON.parse(json) as { Dir?: string; Error?: string };
  if (!info.Dir)
    throw new Error(`go mod download ${module}@${version}: ${info.Error ?? 'no Dir in its answer'}`);
  return info.Dir;
}

async function buildInto(go: string, tmpDir: string, log: Log): Promise<void> {
  const runGo = goRunner(go, log);
  const tools = toolsIn(tmpDir);
  const bin = path.join(tmpDir, 'bin');
  const src = path.join(tmpDir, '.src');
  await fsp.mkdir(bin, { recursive: true });
  await fsp.mkdir(src, { recursive: true });

  log(`kwok ${KWOK_VERSION}: go install sigs.k8s.io/kwok/cmd/kwok…`);
  await runGo(['install', `sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}`], src, { GOBIN: bin });
  const kwokModule = await moduleDir(runGo, 'sigs.k8s.io/kwok', `v${KWOK_VERSION}`, src);
  await fsp.mkdir(tools.stagesDir);
  for (const stage of KWOK_STAGES) {
    const from = path.join(kwokModule, 'kustomize', 'stage', stage);
    for (const file of (await fsp.readdir(from)).filter((f) => f.endsWith('.yaml'))) {
      if (file === 'kustomization.yaml') continue;
      await fsp.copyFile(from + path.sep + file, path.join(tools.stagesDir, file));
      // Files from the module cache are read-only; ours should be removable like the rest of the cache.
      await fsp.chmod(path.join(tools.stagesDir, file), 0o644);
    }
  }

  log(`etcd ${ETCD_VERSION}: go build of go.etcd.io/etcd/server/v3/etcdmain…`);
  const etcdSrc = path.join(src, 'etcd');
  await fsp.mkdir(etcdSrc);
  await fsp.writeFile(
    path.join(etcdSrc, 'go.mod'),
    `module pnoetcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 v${ETCD_VERSION}\n`,
  );
  await fsp.writeFile(
    path.join(etcdSrc, 'main.go'),
    `package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n`,
  );
  await runGo(['mod', 'tidy'], etcdSrc);
  await runGo(['build', '-trimpath', '-o', tools.etcd, '.'], etcdSrc);

  log(
    `Kubernetes ${KUBERNETES_VERSION}: go build of kube-apiserver, kube-controller-manager, kube-scheduler…`,
  );
  const k8sSrc = path.join(src, 'kubernetes');
  await fsp.mkdir(k8sSrc);
  const k8sModule = await moduleDir(runGo, 'k8s.io/kubernetes', `v${KUBERNETES_VERSION}`, k8sSrc);
  // k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go…) at v0.0.0 and replaces
  // them with ./staging/…, which a module depending on it does not inherit: we pin each to its release.
  const staging = stagingModules(await fsp.readFile(path.join(k8sModule, 'go.mod'), 'utf8'));
  if (staging.length < 10)
    throw new Error(`found only ${staging.length} staging modules in k8s.io/kubernetes's go.mod`);
  const stagingVersion = `v0.${KUBERNETES_VERSION.split('.').slice(1).join('.')}`;
  const commands = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map(
    (cmd) => `k8s.io/kubernetes/cmd/${cmd}`,
  );
  await fsp.writeFile(
    path.join(k8sSrc, 'go.mod'),
    [
      'module pnobuild',
      '',
      'go 1.26',
      '',
      `require k8s.io/kubernetes v${KUBERNETES_VERSION}`,
      '',
      ...staging.map((m) => `replace ${m} => ${m} ${stagingVersion}`),
      '',
    ].join('\n'),
  );
  await fsp.writeFile(
    path.join(k8sSrc, 'tools.go'),
    `package pnobuild\n\nimport (\n${commands.map((c) => `\t_ "${c}"`).join('\n')}\n)\n`,
  );
  await runGo(['mod', 'tidy'], k8sSrc);
  // Without these the binaries say v0.0.0-master, which clients and kwok read from /version.
  const versionPkg = 'k8s.io/component-base/version';
  const [major = '1', minor = '0'] = KUBERNETES_VERSION.split('.');
  const ldflags = [
    `-X ${versionPkg}.gitVersion=v${KUBERNETES_VERSION}`,
    `-X ${versionPkg}.gitMajor=${major}`,
    `-X ${versionPkg}.gitMinor=${minor}`,
    `-X ${versionPkg}.gitTreeState=clean`,
  ].join(' ');
  await runGo(['build', '-trimpath', '-ldflags', ldflags, '-o', bin + path.sep, ...commands], k8sSrc);

  for (const binary of [
    tools.kubeApiserver,
    tools.kubeControllerManager,
    tools.kubeScheduler,
    tools.etcd,
    tools.kwok,
  ]) {
    await checkStarts(binary, log);
  }
  // The sources are a few files, but `go mod` left the module cache's read-only bits out of them: remove.
  await fsp.rm(src, { recursive: true, force: true });
}

/** The modules a go.mod replaces with `./staging/…` directories: `k8s.io/api`, `k8s.io/client-go`… */
export function stagingModules(goMod: string): string[] {
  const modules = new Set<string>();
  for (const match of goMod.matchAll(/^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+\.\/staging\/\S+\s*$/gm)) {
    if (match[1]) modules.add(match[1]);
  }
  return [...modules].sort();
}

/** Never publish a binary that does not start: `--version` must exit 0 and print something. */
async function checkStarts(binary: string, log: Log): Promise<void> {
  const output: string[] = [];
  await runProcess(binary, ['--version'], { onLine: (line) => output.push(line.trim()) });
  if (!output.length) throw new Error(`${binary} --version printed nothing`);
  log(`  ${path.basename(binary)}: ${output[0]}`);
}
