import type { RunStrategy, StateChangeRequest, VMIPhase } from '../api.js';
import { decideRunAction, runStrategyOf, trimStateChangeRequests, type ObservedVMI, type RunAction } from './run-strategy.js';

const UID = 'vmi-uid-1';
const start: StateChangeRequest = { action: 'Start' };
const stopThis: StateChangeRequest = { action: 'Stop', uid: UID };
const stopOther: StateChangeRequest = { action: 'Stop', uid: 'an-older-vmi' };

type Request = 'none' | 'Start' | 'Stop';
const requestsFor = (request: Request): StateChangeRequest[] => (request === 'Start' ? [start] : request === 'Stop' ? [stopThis] : []);
const vmiIn = (phase: VMIPhase | 'absent', deleting = false): ObservedVMI | undefined =>
  phase === 'absent' ? undefined : { uid: UID, phase, deleting };

// The whole table: strategy × observed VMI phase × first state change request → action.
// 'live' stands for every non-final phase (Pending, Scheduling, Scheduled, Running); its rows are
// checked for each of them. Read a row as: "with a VMI in <phase> and a <request> request queued, a
// <strategy> VM does <action>".
const table: Array<[RunStrategy, VMIPhase | 'absent' | 'live', Request, RunAction['type']]> = [
  ['Always', 'absent', 'none', 'start'],
  ['Always', 'absent', 'Start', 'start'],
  ['Always', 'absent', 'Stop', 'start'],
  ['Always', 'live', 'none', 'none'],
  ['Always', 'live', 'Start', 'none'],
  ['Always', 'live', 'Stop', 'stop'], // restart: delete now, a new VMI follows
  ['Always', 'Succeeded', 'none', 'stop'],
  ['Always', 'Succeeded', 'Start', 'stop'],
  ['Always', 'Succeeded', 'Stop', 'stop'],
  ['Always', 'Failed', 'none', 'stop'],
  ['Always', 'Failed', 'Start', 'stop'],
  ['Always', 'Failed', 'Stop', 'stop'],

  ['RerunOnFailure', 'absent', 'none', 'none'], // (after it ran once; see the first-start test)
  ['RerunOnFailure', 'absent', 'Start', 'start'],
  ['RerunOnFailure', 'absent', 'Stop', 'none'],
  ['RerunOnFailure', 'live', 'none', 'none'],
  ['RerunOnFailure', 'live', 'Start', 'none'],
  ['RerunOnFailure', 'live', 'Stop', 'stop'],
  ['RerunOnFailure', 'Succeeded', 'none', 'stop'], // removed, not restarted
  ['RerunOnFailure', 'Succeeded', 'Start', 'stop'],
  ['RerunOnFailure', 'Succeeded', 'Stop', 'stop'],
  ['RerunOnFailure', 'Failed', 'none', 'stop'], // removed, with a Start queued: restarted
  ['RerunOnFailure', 'Failed', 'Start', 'stop'],
  ['RerunOnFailure', 'Failed', 'Stop', 'stop'],

  ['Manual', 'absent', 'none', 'none'],
  ['Manual', 'absent', 'Start', 'start'],
  ['Manual', 'absent', 'Stop', 'none'],
  ['Manual', 'live', 'none', 'none'],
  ['Manual', 'live', 'Start', 'none'],
  ['Manual', 'live', 'Stop', 'stop'],
  ['Manual', 'Succeeded', 'none', 'none'],
  ['Manual', 'Succeeded', 'Start', 'stop'], // clear the old VMI, then start
  ['Manual', 'Succeeded', 'Stop', 'stop'],
  ['Manual', 'Failed', 'none', 'none'],
  ['Manual', 'Failed', 'Start', 'stop'],
  ['Manual', 'Failed', 'Stop', 'stop'],

  ['Halted', 'absent', 'none', 'none'],
  ['Halted', 'absent', 'Start', 'switchToAlways'],
  ['Halted', 'absent', 'Stop', 'none'],
  ['Halted', 'live', 'none', 'stop'],
  ['Halted', 'live', 'Start', 'stop'],
  ['Halted', 'live', 'Stop', 'stop'],
  ['Halted', 'Succeeded', 'none', 'stop'],
  ['Halted', 'Failed', 'none', 'stop'],

  ['Once', 'absent', 'none', 'start'],
  ['Once', 'absent', 'Start', 'start'],
  ['Once', 'live', 'none', 'none'],
  ['Once', 'live', 'Stop', 'none'],
  ['Once', 'Succeeded', 'none', 'none'], // never restarted
  ['Once', 'Succeeded', 'Start', 'none'],
  ['Once', 'Failed', 'none', 'none'],
  ['Once', 'Failed', 'Start', 'none'],
];

const livePhases: VMIPhase[] = ['', 'Pending', 'Scheduling', 'Scheduled', 'Running'];
const rows = table.flatMap(([strategy, phase, request, action]) =>
  phase === 'live' ? livePhases.map((p) => [strategy, p, request, action] as const) : [[strategy, phase, request, action] as const],
);

describe('run strategy decision table', () => {
  test.each(rows)('%s, VMI %p, request %s → %s', (runStrategy, phase, request, expected) => {
    const decision = decideRunAction({
      runStrategy,
      vmi: vmiIn(phase),
      stateChangeRequests: requestsFor(request),
      lastRunStrategy: runStrategy,
      backoffSeconds: 0,
    });
    expect(decision.action.type).toBe(expected);
    expect(decision.reason).not.toBe('');
  });

  test('a VMI already being deleted is never deleted twice', () => {
    for (const runStrategy of ['Always', 'RerunOnFailure', 'Manual', 'Halted'] as const) {
      const decision = decideRunAction({ runStrategy, vmi: vmiIn('Running', true), stateChangeRequests: [stopThis], lastRunStrategy: runStrategy, backoffSeconds: 0 });
      expect(decision.action.type).toBe('none');
    }
  });

  test('RerunOnFailure starts by itself the first time, and after a switch to it', () => {
    for (const last of [undefined, 'Always', 'Halted'] as const) {
      const decision = decideRunAction({ runStrategy: 'RerunOnFailure', vmi: undefined, stateChangeRequests: [], lastRunStrategy: last, backoffSeconds: 0 });
      expect(decision.action.type).toBe('start');
    }
  });

  test('RerunOnFailure queues a Start when it removes a Failed VMI, not a Succeeded one', () => {
    const failed = decideRunAction({ runStrategy: 'RerunOnFailure', vmi: vmiIn('Failed'), stateChangeRequests: [], lastRunStrategy: 'RerunOnFailure', backoffSeconds: 0 });
    expect(failed.stateChangeRequests).toEqual([{ action: 'Start' }]);
    const succeeded = decideRunAction({ runStrategy: 'RerunOnFailure', vmi: vmiIn('Succeeded'), stateChangeRequests: [], lastRunStrategy: 'RerunOnFailure', backoffSeconds: 0 });
    expect(succeeded.stateChangeRequests).toEqual([]);
  });

  test('CrashLoopBackOff holds back automatic starts, not Manual ones', () => {
    const always = decideRunAction({ runStrategy: 'Always', vmi: undefined, stateChangeRequests: [], lastRunStrategy: 'Always', backoffSeconds: 40 });
    expect(always.action).toEqual({ type: 'wait', seconds: 40 });
    const rerun = decideRunAction({ runStrategy: 'RerunOnFailure', vmi: undefined, stateChangeRequests: [start], lastRunStrategy: 'RerunOnFailure', backoffSeconds: 40 });
    expect(rerun.action.type).toBe('wait');
    const manual = decideRunAction({ runStrategy: 'Manual', vmi: undefined, stateChangeRequests: [start], lastRunStrategy: 'Manual', backoffSeconds: 40 });
    expect(manual.action.type).toBe('start');
  });

  test('a Stop request for another VMI does not stop this one, and is trimmed', () => {
    const decision = decideRunAction({ runStrategy: 'Manual', vmi: vmiIn('Running'), stateChangeRequests: [stopOther], lastRunStrategy: 'Manual', backoffSeconds: 0 });
    expect(decision.action.type).toBe('none');
    expect(decision.stateChangeRequests).toEqual([]);
  });

  test('only the first request counts: Stop then Start is a restart in two steps', () => {
    const queue = [stopThis, start];
    const first = decideRunAction({ runStrategy: 'Manual', vmi: vmiIn('Running'), stateChangeRequests: queue, lastRunStrategy: 'Manual', backoffSeconds: 0 });
    expect(first.action.type).toBe('stop');
    expect(first.stateChangeRequests).toEqual(queue); // trimmed once the VMI is seen gone
    const second = decideRunAction({ runStrategy: 'Manual', vmi: undefined, stateChangeRequests: queue, lastRunStrategy: 'Manual', backoffSeconds: 0 });
    expect(second.stateChangeRequests).toEqual([start]);
    expect(second.action.type).toBe('none'); // this pass trims the Stop; the next acts on the Start
    const third = decideRunAction({ runStrategy: 'Manual', vmi: undefined, stateChangeRequests: [start], lastRunStrategy: 'Manual', backoffSeconds: 0 });
    expect(third.action.type).toBe('start');
  });
});

describe('trimStateChangeRequests', () => {
  test('Start is kept until a live VMI is seen', () => {
    expect(trimStateChangeRequests([start], undefined)).toEqual([start]);
    expect(trimStateChangeRequests([start], vmiIn('Failed'))).toEqual([start]);
    expect(trimStateChangeRequests([start], vmiIn('Running', true))).toEqual([start]);
    expect(trimStateChangeRequests([start], vmiIn('Pending'))).toEqual([]);
  });
  test('Stop is kept while its VMI exists', () => {
    expect(trimStateChangeRequests([stopThis], vmiIn('Running'))).toEqual([stopThis]);
    expect(trimStateChangeRequests([stopThis], undefined)).toEqual([]);
    expect(trimStateChangeRequests([{ action: 'Stop' }], vmiIn('Running'))).toEqual([]);
  });
});

describe('runStrategyOf', () => {
  const template = { spec: { domain: { devices: {} } } };
  test('runStrategy wins; deprecated running maps to Always/Halted', () => {
    expect(runStrategyOf({ spec: { runStrategy: 'Manual', template } })).toBe('Manual');
    expect(runStrategyOf({ spec: { running: true, template } })).toBe('Always');
    expect(runStrategyOf({ spec: { running: false, template } })).toBe('Halted');
    expect(runStrategyOf({ spec: { template } })).toBe('Halted');
  });
});
