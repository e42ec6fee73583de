/** The playbooks' percentages: a value beside its threshold never prints as equal to it unless it is. */
import { describe, expect, it } from 'vitest';
import { percent, percentBeside } from '../../src/domain/playbook.ts';

describe('percentages', () => {
  it('two decimals, as the procedures log rates', () => {
    expect(percent(0.025)).toBe('2.50%');
    expect(percentBeside(0.0005, 0.001)).toBe('0.05%');
  });

  it('just below or above the threshold: the decimals that tell them apart', () => {
    expect(percentBeside(0.000996, 0.001)).toBe('0.0996%');
    expect(percentBeside(0.0009996, 0.001)).toBe('0.09996%');
    expect(percentBeside(0.00104, 0.001)).toBe('0.104%');
    expect(percentBeside(0.001, 0.001)).toBe('0.10%');
  });
});
