import { describe, expect, it } from '@jest/globals';
import { matchesLabelSelector } from './label-selector.js';

describe('matchesLabelSelector', () => {
  const labels = { 'kubernetes.io/hostname': 'node-a', zone: 'a', ksm: 'true' };

  it('matches nothing without a selector and everything with an empty one', () => {
    expect(matchesLabelSelector(undefined, labels)).toBe(false);
    expect(matchesLabelSelector({}, labels)).toBe(true);
    expect(matchesLabelSelector({}, {})).toBe(true);
  });

  it('needs every matchLabels pair', () => {
    expect(matchesLabelSelector({ matchLabels: { zone: 'a', ksm: 'true' } }, labels)).toBe(true);
    expect(matchesLabelSelector({ matchLabels: { zone: 'a', ksm: 'false' } }, labels)).toBe(false);
    expect(matchesLabelSelector({ matchLabels: { missing: '' } }, labels)).toBe(false);
  });

  const cases: Array<['In' | 'NotIn' | 'Exists' | 'DoesNotExist', string[], boolean]> = [
    ['In', ['a', 'b'], true],
    ['In', ['b'], false],
    ['NotIn', ['b'], true],
    ['NotIn', ['a'], false],
    ['Exists', [], true],
    ['DoesNotExist', [], false],
  ];
  it.each(cases)('zone %s %j: %s', (operator, values, expected) => {
    expect(matchesLabelSelector({ matchExpressions: [{ key: 'zone', operator, values }] }, labels)).toBe(expected);
  });

  it('treats a missing key as Kubernetes does: In fails, NotIn and DoesNotExist hold', () => {
    const on = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist') => matchesLabelSelector({ matchExpressions: [{ key: 'rack', operator, values: ['1'] }] }, labels);
    expect([on('In'), on('NotIn'), on('Exists'), on('DoesNotExist')]).toEqual([false, true, false, true]);
  });

  it('needs matchLabels and matchExpressions together', () => {
    expect(matchesLabelSelector({ matchLabels: { zone: 'a' }, matchExpressions: [{ key: 'ksm', operator: 'In', values: ['true'] }] }, labels)).toBe(true);
    expect(matchesLabelSelector({ matchLabels: { zone: 'a' }, matchExpressions: [{ key: 'ksm', operator: 'DoesNotExist' }] }, labels)).toBe(false);
  });
});
