import { describe, expect, it } from '@jest/globals';
import type { Condition } from './conditions.js';
import {
  formatConditionTime,
  getCondition,
  removeCondition,
  removeStatusCondition,
  setCondition,
  setStatusCondition,
  sortConditions,
  truncateTime,
} from './conditions.js';

const t0 = new Date('2026-11-22T20:00:00.789Z');
const t1 = new Date('2026-11-22T20:05:30.123Z');

describe('condition times', () => {
  it('are RFC 3339 in UTC truncated to seconds', () => {
    expect(formatConditionTime(t0)).toBe('2026-11-22T20:00:00Z');
    expect(truncateTime('2026-11-22T20:00:00.999999Z')).toBe('2026-11-22T20:00:00Z');
    expect(truncateTime('2026-11-22T21:00:00.5+01:00')).toBe('2026-11-22T20:00:00Z');
    expect(truncateTime(null)).toBeNull();
  });
});

describe('setCondition', () => {
  it('adds a condition with the KubeVirt shape and reports a change', () => {
    const { conditions, changed } = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'PodNotReady', message: 'launcher starting' }, { now: t0 });
    expect(changed).toBe(true);
    expect(conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'PodNotReady', message: 'launcher starting', lastProbeTime: null, lastTransitionTime: '2026-11-22T20:00:00Z' },
    ]);
  });

  it('keeps lastTransitionTime when the status does not flip, even if reason/message change', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A' }, { now: t0 }).conditions;
    const second = setCondition(first, { type: 'Ready', status: 'False', reason: 'B', message: 'other' }, { now: t1 });
    expect(second.changed).toBe(true);
    expect(getCondition(second.conditions, 'Ready')).toMatchObject({ reason: 'B', message: 'other', lastTransitionTime: '2026-11-22T20:00:00Z' });
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], { type: 'Ready', status: 'False' }, { now: t0 }).conditions;
    const flipped = setCondition(first, { type: 'Ready', status: 'True' }, { now: t1 });
    expect(flipped.changed).toBe(true);
    expect(getCondition(flipped.conditions, 'Ready')?.lastTransitionTime).toBe('2026-11-22T20:05:30Z');
  });

  it('reports no change when setting the same condition again later', () => {
    const first = setCondition([], { type: 'Ready', status: 'True', reason: 'Ok' }, { now: t0 }).conditions;
    const again = setCondition(first, { type: 'Ready', status: 'True', reason: 'Ok' }, { now: t1 });
    expect(again.changed).toBe(false);
    expect(again.conditions).toEqual(first);
  });

  it('treats a round-tripped list (millisecond times from elsewhere) as equal after one normalising write', () => {
    const stored: Condition[] = [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-22T20:00:00.789Z', lastProbeTime: null }];
    const first = setCondition(stored, { type: 'Ready', status: 'True' }, { now: t1 });
    expect(first.changed).toBe(true); // truncation is a change the first time
    expect(first.conditions[0]?.lastTransitionTime).toBe('2026-11-22T20:00:00Z');
    expect(setCondition(first.conditions, { type: 'Ready', status: 'True' }, { now: t1 }).changed).toBe(false);
  });

  it('keeps a fixed order: Ready first, then alphabetical, or the given order', () => {
    let list: Condition[] = [];
    for (const type of ['Paused', 'AgentConnected', 'Ready', 'LiveMigratable']) {
      list = setCondition(list, { type, status: 'True' }, { now: t0 }).conditions;
    }
    expect(list.map((c) => c.type)).toEqual(['Ready', 'AgentConnected', 'LiveMigratable', 'Paused']);
    const custom = sortConditions(list, ['LiveMigratable', 'Ready']);
    expect(custom.map((c) => c.type)).toEqual(['LiveMigratable', 'Ready', 'AgentConnected', 'Paused']);
    // An out-of-order input is a change (the sorted list is what gets written).
    const reversed = [...list].reverse();
    expect(setCondition(reversed, { type: 'Paused', status: 'True' }, { now: t1 }).changed).toBe(true);
  });

  it('does not mutate its input', () => {
    const input: Condition[] = [{ type: 'Ready', status: 'False', lastTransitionTime: '2026-11-22T20:00:00Z', lastProbeTime: null }];
    const copy = structuredClone(input);
    setCondition(input, { type: 'Ready', status: 'True' }, { now: t1 });
    expect(input).toEqual(copy);
  });
});

describe('removeCondition and the in-place object helpers', () => {
  it('removes and reports whether anything was removed', () => {
    const list = setCondition([], { type: 'Paused', status: 'True' }, { now: t0 }).conditions;
    expect(removeCondition(list, 'Ready').changed).toBe(false);
    const removed = removeCondition(list, 'Paused');
    expect(removed).toEqual({ conditions: [], changed: true });
  });

  it('sets on obj.status.conditions, creating status when absent', () => {
    const vmi: { status?: { phase?: string; conditions?: Condition[] } } = {};
    expect(setStatusCondition(vmi, { type: 'Ready', status: 'True' }, { now: t0 })).toBe(true);
    expect(vmi.status?.conditions?.[0]?.type).toBe('Ready');
    vmi.status = { ...vmi.status, phase: 'Running' };
    expect(setStatusCondition(vmi, { type: 'Ready', status: 'True' }, { now: t1 })).toBe(false);
    expect(removeStatusCondition(vmi, 'Ready')).toBe(true);
    expect(vmi.status).toEqual({ phase: 'Running', conditions: [] });
  });
});
