import { describe, expect, it } from 'vitest';
import { seedIncident } from '../../src/domain/alert-mapping.ts';
import { alertBatch } from '../support/workflow-env.ts';
import { loadDefaultPolicy, policyWith } from '../support/policy.ts';

const policy = loadDefaultPolicy();

describe('alert-to-incident mapping rules', () => {
  it('HighErrorRate selects the highErrorRate playbook and keeps the severity label', () => {
    const seed = seedIncident(
      policy,
      alertBatch(policy, { alerts: [{ labels: { alertname: 'HighErrorRate', severity: 'critical' } }] }),
    );
    expect(seed).toMatchObject({
      severity: 'P1',
      playbook: 'highErrorRate',
      mappingRule: 'high-error-rate',
      impact: 'medium',
    });
  });

  it('ServiceDown is P0 with critical impact, the serviceOutage playbook and its title template', () => {
    const seed = seedIncident(
      policy,
      alertBatch(policy, {
        alerts: [{ labels: { alertname: 'ServiceDown', severity: 'warning', job: 'pno-physics-bench' } }],
      }),
    );
    expect(seed).toMatchObject({
      severity: 'P0',
      impact: 'critical',
      playbook: 'serviceOutage',
      title: 'pno-physics-bench is down',
    });
  });

  it('a priority label still wins over a rule', () => {
    const seed = seedIncident(
      policy,
      alertBatch(policy, { alerts: [{ labels: { alertname: 'ServiceDown', priority: 'P2' } }] }),
    );
    expect(seed.severity).toBe('P2');
  });

  it('regex matches and the security flag', () => {
    const latency = seedIncident(
      policy,
      alertBatch(policy, { alerts: [{ labels: { alertname: 'HighLatency', severity: 'warning' } }] }),
    );
    expect(latency).toMatchObject({ playbook: 'performanceDegradation', severity: 'P2' });
    const security = seedIncident(
      policy,
      alertBatch(policy, { alerts: [{ labels: { alertname: 'Odd', category: 'security' } }] }),
    );
    expect(security).toMatchObject({ securityRelated: true, mappingRule: 'security' });
  });

  it('nothing matched: the default, recorded as such', () => {
    const seed = seedIncident(
      policy,
      alertBatch(policy, {
        alerts: [{ labels: { alertname: 'DiskFull', severity: 'nonsense', job: 'db' } }],
      }),
    );
    expect(seed).toMatchObject({
      severity: 'P2',
      mappingRule: 'default',
      service: 'db',
      title: 'DiskFull on db',
    });
    expect(seed.playbook).toBeUndefined();
  });

  it('a group takes its highest firing severity', () => {
    const seed = seedIncident(
      policy,
      alertBatch(policy, {
        alerts: [
          { labels: { alertname: 'A', severity: 'info' } },
          {
            labels: { alertname: 'A', severity: 'page' },
            status: 'resolved',
            fingerprint: 'aa00000000000001',
          },
          { labels: { alertname: 'A', severity: 'critical' }, fingerprint: 'aa00000000000002' },
        ],
      }),
    );
    expect(seed.severity).toBe('P1');
  });

  it('a bad rule regex is a policy error naming the key', () => {
    expect(() => policyWith({ alerts: { rules: [{ name: 'x', match: { alertname: '~(' } }] } })).toThrow(
      /alerts\.rules\.0\.match\.alertname/,
    );
  });
});
