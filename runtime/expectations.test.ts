import { describe, expect, it } from '@jest/globals';
import { ControllerExpectations, expectationsTimeoutMs } from './expectations.js';

describe('ControllerExpectations', () => {
  it('is satisfied for a key with no expectations', () => {
    expect(new ControllerExpectations().satisfied('ns/vmi')).toBe(true);
  });

  it('is unsatisfied until every expected creation is observed', () => {
    const expectations = new ControllerExpectations();
    expectations.expectCreations('ns/vmi', 2);
    expect(expectations.satisfied('ns/vmi')).toBe(false);
    expectations.creationObserved('ns/vmi');
    expect(expectations.satisfied('ns/vmi')).toBe(false);
    expectations.creationObserved('ns/vmi');
    expect(expectations.satisfied('ns/vmi')).toBe(true);
    // Other keys are independent.
    expectations.expectCreations('ns/other', 1);
    expect(expectations.satisfied('ns/vmi')).toBe(true);
    expect(expectations.satisfied('ns/other')).toBe(false);
  });

  it('tracks deletions the same way', () => {
    const expectations = new ControllerExpectations();
    expectations.expectDeletions('k', 1);
    expect(expectations.satisfied('k')).toBe(false);
    expectations.deletionObserved('k');
    expect(expectations.satisfied('k')).toBe(true);
  });

  it('raises without resetting and lowers with observations', () => {
    const expectations = new ControllerExpectations();
    expectations.expectCreations('k', 1);
    expectations.raiseExpectations('k', 1, 1);
    expect(expectations.pending('k')).toEqual({ adds: 2, dels: 1 });
    expectations.creationObserved('k');
    expectations.creationObserved('k');
    expect(expectations.satisfied('k')).toBe(false);
    expectations.deletionObserved('k');
    expect(expectations.satisfied('k')).toBe(true);
  });

  it('expires after the TTL (5 minutes) so a lost event cannot wedge a key', () => {
    let now = 1_000_000;
    const expectations = new ControllerExpectations({ now: () => now });
    expectations.expectCreations('k', 1);
    now += expectationsTimeoutMs;
    expect(expectations.satisfied('k')).toBe(false);
    now += 1;
    expect(expectations.satisfied('k')).toBe(true);
    // Setting again restarts the clock.
    expectations.expectCreations('k', 1);
    expect(expectations.satisfied('k')).toBe(false);
  });

  it('delete forgets the key', () => {
    const expectations = new ControllerExpectations();
    expectations.expectCreations('k', 3);
    expectations.delete('k');
    expect(expectations.satisfied('k')).toBe(true);
    expect(expectations.pending('k')).toBeUndefined();
  });
});
