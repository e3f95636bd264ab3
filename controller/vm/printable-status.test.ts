import type { VMICondition, VMIPhase } from '../api.js';
import { printableStatus, type PrintableStatusInput } from './printable-status.js';
import { backoffSecondsLeft, nextStartFailure, startBackoffSeconds } from './crash-loop.js';

const base: PrintableStatusInput = {
  vmDeleting: false,
  runStrategy: 'Always',
  vmi: undefined,
  startExpected: false,
  stopExpected: false,
  consecutiveStartFailures: 0,
};
const withVMI = (phase: VMIPhase, conditions: VMICondition[] = [], extra: Partial<NonNullable<PrintableStatusInput['vmi']>> = {}) => ({
  ...base,
  vmi: { phase, deleting: false, conditions, migrating: false, ...extra },
});

describe('printableStatus', () => {
  test.each<[string, PrintableStatusInput, string]>([
    ['no VMI, nothing expected', base, 'Stopped'],
    ['no VMI, a create is due', { ...base, startExpected: true }, 'Starting'],
    ['VMI unprocessed', withVMI(''), 'Starting'],
    ['VMI Pending', withVMI('Pending'), 'Starting'],
    ['VMI Scheduling', withVMI('Scheduling'), 'Starting'],
    ['VMI Scheduled', withVMI('Scheduled'), 'Starting'],
    ['VMI Running', withVMI('Running'), 'Running'],
    ['VMI Running and paused', withVMI('Running', [{ type: 'Paused', status: 'True' }]), 'Paused'],
    ['VMI Running, migrating', withVMI('Running', [], { migrating: true }), 'Migrating'],
    ['VMI Succeeded', withVMI('Succeeded'), 'Stopped'],
    ['VMI Failed', withVMI('Failed'), 'Stopped'],
    ['VMI being deleted', withVMI('Running', [], { deleting: true }), 'Stopping'],
    ['VMI delete due', { ...withVMI('Running'), stopExpected: true }, 'Stopping'],
    ['VM being deleted', { ...withVMI('Running', [], { deleting: true }), vmDeleting: true }, 'Terminating'],
    [
      'launcher pod unschedulable',
      withVMI('Scheduling', [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' }]),
      'ErrorUnschedulable',
    ],
    ['image pull error', withVMI('Scheduling', [{ type: 'Synchronized', status: 'False', reason: 'ErrImagePull' }]), 'ErrImagePull'],
    ['image pull back-off', withVMI('Scheduling', [{ type: 'Synchronized', status: 'False', reason: 'ImagePullBackOff' }]), 'ImagePullBackOff'],
    ['missing PVC', withVMI('Pending', [{ type: 'Synchronized', status: 'False', reason: 'FailedPvcNotFound' }]), 'ErrorPvcNotFound'],
    ['start failures, no VMI, Always', { ...base, consecutiveStartFailures: 2 }, 'CrashLoopBackOff'],
    ['start failures, VMI Failed, RerunOnFailure', { ...withVMI('Failed'), runStrategy: 'RerunOnFailure', consecutiveStartFailures: 1 }, 'CrashLoopBackOff'],
    ['start failures but Manual', { ...base, runStrategy: 'Manual', consecutiveStartFailures: 2 }, 'Stopped'],
    ['start failures but a start is due', { ...base, consecutiveStartFailures: 2, startExpected: true }, 'Starting'],
  ])('%s → %s', (_name, input, expected) => {
    expect(printableStatus(input)).toBe(expected);
  });
});

describe('CrashLoopBackOff', () => {
  test('back-off grows with the square of the failures, with jitter, capped at 5 minutes', () => {
    expect(startBackoffSeconds(1, () => 0)).toBe(10);
    expect(startBackoffSeconds(2, () => 0)).toBe(40);
    expect(startBackoffSeconds(3, () => 0)).toBe(90);
    expect(startBackoffSeconds(2, () => 0.999)).toBe(60);
    expect(startBackoffSeconds(10, () => 0)).toBe(300);
  });

  const now = new Date('2026-11-22T20:00:00Z');
  test('a VMI that fails before running counts once per VMI', () => {
    const first = nextStartFailure(undefined, { uid: 'a', phase: 'Failed', everRan: false }, 'Always', now, () => 0);
    expect(first).toEqual({ consecutiveFailCount: 1, lastFailedVMIUID: 'a', retryAfterTimestamp: '2026-11-22T20:00:10Z' });
    expect(nextStartFailure(first, { uid: 'a', phase: 'Failed', everRan: false }, 'Always', now, () => 0)).toBe(first);
    const second = nextStartFailure(first, { uid: 'b', phase: 'Failed', everRan: false }, 'Always', now, () => 0);
    expect(second?.consecutiveFailCount).toBe(2);
    expect(backoffSecondsLeft(second, now)).toBe(40);
    expect(backoffSecondsLeft(second, new Date('2026-11-22T20:01:00Z'))).toBe(0);
  });
  test('a VMI that ran clears the count; Manual never counts', () => {
    const failing = { consecutiveFailCount: 3, lastFailedVMIUID: 'a', retryAfterTimestamp: '2026-11-22T20:01:00Z' };
    expect(nextStartFailure(failing, { uid: 'b', phase: 'Running', everRan: true }, 'Always', now)).toBeUndefined();
    expect(nextStartFailure(failing, undefined, 'Manual', now)).toBeUndefined();
    expect(nextStartFailure(failing, { uid: 'b', phase: 'Scheduling', everRan: false }, 'Always', now)).toBe(failing);
  });
});
