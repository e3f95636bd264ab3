import { describe, expect, it } from '@jest/globals';
import { statusPatch } from './status.js';

describe('statusPatch', () => {
  const owned = ['phase', 'conditions', 'nodeName'];

  it('is empty when nothing owned changed (key order, undefined and null do not count)', () => {
    expect(statusPatch({ phase: 'Running', nodeName: 'n1' }, { nodeName: 'n1', phase: 'Running', conditions: undefined }, owned, 'test')).toEqual([]);
  });

  it('tests the previous value of each changed field, then replaces, adds or removes it', () => {
    const conditions = [{ type: 'Ready', status: 'True', lastProbeTime: null }];
    expect(statusPatch({ phase: 'Scheduled', conditions, interfaces: [{ name: 'default' }] }, { phase: 'Running', nodeName: 'n1', interfaces: [{ name: 'default' }] }, owned, 'test')).toEqual([
      { op: 'test', path: '/status/conditions', value: conditions },
      { op: 'remove', path: '/status/conditions' },
      { op: 'add', path: '/status/nodeName', value: 'n1' },
      { op: 'test', path: '/status/phase', value: 'Scheduled' },
      { op: 'replace', path: '/status/phase', value: 'Running' },
    ]);
  });

  it('adds the whole status to an object that has none yet', () => {
    expect(statusPatch(undefined, { phase: 'Pending', nodeName: undefined }, owned, 'test')).toEqual([{ op: 'add', path: '/status', value: { phase: 'Pending' } }]);
  });

  it('refuses to write a field the writer does not own, naming it', () => {
    expect(() => statusPatch({ phase: 'Running' }, { phase: 'Running', interfaces: [] }, owned, 'the controller')).toThrow(
      'the controller computed a change to status.interfaces, which it does not own (owned: phase, conditions, nodeName)',
    );
  });
});
