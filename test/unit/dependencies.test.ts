import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.(ts|js)$/.test(entry) ? [full] : [];
  });
}

/** The package an import specifier names (`@temporalio/common/lib/x.js` → `@temporalio/common`), or undefined. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? '');
  return builtinModules.includes(name) ? undefined : name;
}

function importedPackages(dirs: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of dirs.flatMap((d) => sourceFiles(path.join(root, d)))) {
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports at the start of a line (not the word "import" inside a string).
    for (const match of text.matchAll(/^\s*(?:import|export)\b[^;']*?\sfrom\s+'([^']+)'/gm)) {
      const name = packageOf(match[1] ?? '');
      if (name && !found.has(name)) found.set(name, path.relative(root, file));
    }
  }
  return found;
}

describe('package.json', () => {
  it('declares every package the shipped code imports as a dependency', () => {
    const declared = new Set(Object.keys(manifest.dependencies ?? {}));
    const missing = [...importedPackages(['src'])].filter(([name]) => !declared.has(name));
    expect(missing.map(([name, file]) => `${name} (imported by ${file})`)).toEqual([]);
  });

  it('declares every package the scripts, tests and benchmarks import', () => {
    const declared = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.devDependencies ?? {}),
    ]);
    const missing = [...importedPackages(['scripts', 'test', 'bench'])].filter(
      ([name]) => !declared.has(name),
    );
    expect(missing.map(([name, file]) => `${name} (imported by ${file})`)).toEqual([]);
  });
});
