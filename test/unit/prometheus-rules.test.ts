import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadDefaultPolicy } from '../support/policy.ts';
import { alertSeverity, matchingRule } from '../../src/domain/alert-mapping.ts';
import {
  REPO_RULES_FILE,
  type AlertingRule,
  alertingRules,
  durationSeconds,
  promtoolPath,
  secondScaleRules,
} from '../support/prometheus.ts';

const run = promisify(execFile);

const rulesText = readFileSync(REPO_RULES_FILE, 'utf8');
const { rules, rule } = alertingRules(REPO_RULES_FILE);

let promtool: string;
let work: string;

beforeAll(async () => {
  promtool = await promtoolPath();
  work = await mkdtemp(path.join(tmpdir(), 'pno-rules-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function promtoolRun(...args: string[]) {
  return run(promtool, args, { encoding: 'utf8' }).catch((err: { stdout: string; stderr: string }) => {
    throw new Error(`promtool ${args.join(' ')} failed:\n${err.stdout}\n${err.stderr}`);
  });
}

describe('deploy/prometheus/rules.yml', () => {
  it('passes promtool check rules', async () => {
    const { stdout } = await promtoolRun('check', 'rules', REPO_RULES_FILE);
    expect(stdout).toContain('SUCCESS: 2 rules found');
  });

  it('has the two alerts the policy maps, with the procedures’ thresholds and labels', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(['HighErrorRate', 'ServiceDown']);
    const high = rule('HighErrorRate');
    // The procedures' error ratio over 5 minutes, above 5%, for 2 minutes.
    expect(high.expr.replace(/\s+/g, ' ').trim()).toBe(
      'sum(rate(http_requests_total{job="pno-physics-bench",status=~"5.."}[5m])) / ' +
        'sum(rate(http_requests_total{job="pno-physics-bench"}[5m])) > 0.05',
    );
    expect(high.for).toBe('2m');
    expect(high.labels).toEqual({ severity: 'critical', service: 'pno-physics-bench' });
    expect(Object.keys(high.annotations).sort()).toEqual(['description', 'summary']);
    const down = rule('ServiceDown');
    expect(down.expr.trim()).toBe('up{job="pno-physics-bench"} == 0');
    expect(down.for).toBe('1m');
    expect(down.labels).toMatchObject({ severity: 'page' });
    expect(Object.keys(down.annotations).sort()).toEqual(['description', 'summary']);
  });

  it('maps to the incidents the policy means: HighErrorRate P1 highErrorRate, ServiceDown P0 serviceOutage', () => {
    const policy = loadDefaultPolicy();
    const high = { alertname: 'HighErrorRate', ...rule('HighErrorRate').labels };
    expect(alertSeverity(policy, high)).toBe('P1');
    expect(matchingRule(policy, high)).toMatchObject({ name: 'high-error-rate', playbook: 'highErrorRate' });
    const down = { alertname: 'ServiceDown', job: 'pno-physics-bench', ...rule('ServiceDown').labels };
    expect(alertSeverity(policy, down)).toBe('P0');
    expect(matchingRule(policy, down)).toMatchObject({ name: 'service-down', playbook: 'serviceOutage' });
  });

  it('fires as intended under promtool test rules (50% errors fire after 2m, 1% never; down fires after 1m)', async () => {
    const testFile = path.join(work, 'rules.test.yml');
    const series = (status: string, perStep: number) => ({
      series: `http_requests_total{job="pno-physics-bench",instance="bench:8080",status="${status}"}`,
      values: `0+${perStep}x60`,
    });
    await writeFile(
      testFile,
      stringify({
        rule_files: [REPO_RULES_FILE],
        evaluation_interval: '1m',
        tests: [
          {
            // Half of the requests fail: pending at 1 min, firing once it held for 2 min.
            interval: '15s',
            input_series: [series('200', 30), series('500', 30)],
            alert_rule_test: [
              { eval_time: '2m', alertname: 'HighErrorRate', exp_alerts: [] },
              {
                eval_time: '4m',
                alertname: 'HighErrorRate',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'critical', service: 'pno-physics-bench' },
                    exp_annotations: {
                      summary: rule('HighErrorRate').annotations['summary'],
                      description: rule('HighErrorRate').annotations['description']?.replace(
                        '{{ $value | humanizePercentage }}',
                        '50%',
                      ),
                    },
                  },
                ],
              },
            ],
          },
          {
            // 1% errors stay under the 5% threshold.
            interval: '15s',
            input_series: [series('200', 99), series('500', 1)],
            alert_rule_test: [{ eval_time: '10m', alertname: 'HighErrorRate', exp_alerts: [] }],
          },
          {
            // Scrapes fail from minute 2: pending at 2 min, firing at 3 min.
            interval: '1m',
            input_series: [
              { series: 'up{job="pno-physics-bench",instance="bench:8080"}', values: '1 1 0 0 0 0' },
            ],
            alert_rule_test: [
              { eval_time: '2m', alertname: 'ServiceDown', exp_alerts: [] },
              {
                eval_time: '3m',
                alertname: 'ServiceDown',
                exp_alerts: [
                  {
                    exp_labels: {
                      severity: 'page',
                      service: 'pno-physics-bench',
                      job: 'pno-physics-bench',
                      instance: 'bench:8080',
                    },
                    exp_annotations: {
                      summary: rule('ServiceDown').annotations['summary'],
                      description: rule('ServiceDown')
                        .annotations['description']?.replace('{{ $labels.instance }}', 'bench:8080')
                        .replace('{{ $labels.job }}', 'pno-physics-bench'),
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const { stdout } = await promtoolRun('test', 'rules', testFile);
    expect(stdout).toContain('SUCCESS');
  });

  it('scales to second windows for the e2e tests, staying valid', async () => {
    const scaled = secondScaleRules(rulesText);
    const scaledRules = (parse(scaled) as { groups: { rules: AlertingRule[] }[] }).groups.flatMap(
      (g) => g.rules,
    );
    const high = scaledRules.find((r) => r.alert === 'HighErrorRate');
    expect(high?.expr).toContain('[10s]');
    expect(high?.expr).not.toContain('[5m]');
    expect(high?.for).toBe('2s');
    expect(scaledRules.find((r) => r.alert === 'ServiceDown')?.for).toBe('1s');
    // Everything but the durations is the repository's.
    expect(high?.labels).toEqual(rule('HighErrorRate').labels);
    expect(high?.annotations).toEqual(rule('HighErrorRate').annotations);
    const file = path.join(work, 'scaled.yml');
    await writeFile(file, scaled);
    const { stdout } = await promtoolRun('check', 'rules', file);
    expect(stdout).toContain('SUCCESS: 2 rules found');
    expect(durationSeconds('1h30m')).toBe(5400);
    expect(() => durationSeconds('5 minutes')).toThrow(/not a Prometheus duration/);
  });
});
