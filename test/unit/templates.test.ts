import { describe, expect, it } from 'vitest';
import { renderTemplate, templatePlaceholders, templateProblem } from '../../src/domain/templates.ts';
import { PolicyError } from '../../src/domain/policy.ts';
import { policyWith } from '../support/policy.ts';

describe('templates (logic-less Mustache)', () => {
  it('fills placeholders; one with no value reads "n/a"', () => {
    expect(renderTemplate('**ETA**: {{ eta }} · {{ id }}', { id: 'INC-1' })).toBe('**ETA**: n/a · INC-1');
  });

  it('a section shows only when its value is there', () => {
    const template = '{{ id }}{{#eta}} (ETA {{ eta }}){{/eta}}';
    expect(renderTemplate(template, { id: 'INC-1', eta: '10 min' })).toBe('INC-1 (ETA 10 min)');
    expect(renderTemplate(template, { id: 'INC-1' })).toBe('INC-1');
  });

  it('renders text as is: escaping is each channel’s (Slack mrkdwn, HTML)', () => {
    expect(renderTemplate('{{ summary }}', { summary: '<!channel> & <b>' })).toBe('<!channel> & <b>');
  });

  it('lists the placeholders a template shows, inside sections too', () => {
    expect(templatePlaceholders('{{ a }} {{#b}}{{ c }}{{/b}}').sort()).toEqual(['a', 'c']);
  });

  it('a template that is not one is refused at load, naming its key', () => {
    expect(templateProblem('{{#open}} never closed')).toMatch(/Unclosed section/);
    expect(() => policyWith({ templates: { statusUpdate: '{{#x}} {{ incident_id }}' } })).toThrow(
      PolicyError,
    );
    expect(() => policyWith({ templates: { statusUpdate: '{{#x}} {{ incident_id }}' } })).toThrow(
      /templates\.statusUpdate: not a Mustache template/,
    );
  });
});
