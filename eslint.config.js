// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'worker_threads',
  'zlib',
];
const bannedBuiltins = nodeBuiltins.flatMap((name) => [name, `node:${name}`]);

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // Workflows must be deterministic and domain rules pure: no Node builtins (no I/O, no clocks, no randomness).
    files: ['src/workflows/**/*.ts', 'src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: bannedBuiltins.map((name) => ({
            name,
            message: 'Node builtins are banned in workflows and domain code (determinism, purity).',
          })),
        },
      ],
    },
  },
  {
    // The layers: domain ← contract ← workflows/activities ← entry points (worker, starter). Nothing imports
    // from workflows/ (the worker loads them by path), and workflows reach activities by type only.
    files: ['src/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: './src/domain',
              from: './src',
              except: ['./domain'],
              message: 'domain is pure rules: it imports nothing outside src/domain',
            },
            {
              target: './src/contract',
              from: ['./src/workflows', './src/activities', './src/starter', './src/worker.ts'],
              message: 'the contract is shared by every side: it may only import the domain',
            },
            {
              target: ['./src/domain', './src/contract', './src/activities', './src/starter', './src/*.ts'],
              from: './src/workflows',
              message: 'nothing imports workflow code; the worker bundles it by path',
            },
            {
              target: ['./src/activities', './src/workflows'],
              from: ['./src/starter', './src/worker.ts'],
              message: 'workflows and activities do not depend on entry points',
            },
            {
              target: './src/starter',
              from: ['./src/activities', './src/worker.ts'],
              message: 'entry points reach activities only through Temporal',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      // Workflow code may name activity types (proxyActivities) but must not run their code.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../activities/*'],
              allowTypeImports: true,
              message: 'workflows import activities as types only',
            },
          ],
        },
      ],
    },
  },
  {
    // Vitest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
