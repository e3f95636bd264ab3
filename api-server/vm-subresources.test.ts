import { describe, expect, it } from '@jest/globals';
import type { RunStrategy } from '../runtime/api/index.js';
import { StatusError } from './status.js';
import type { VirtualMachine, VirtualMachineInstance } from './types.js';
import { YAML_BODY_MAX_BYTES, YAML_BODY_MAX_INDICATORS, changeRequestPatch, decideRestart, decideStart, decideStop, decodeOptions, runningPatch, validateRestartOptions } from './vm-subresources.js';
import { RestartOptions, StartOptions, StopOptions } from '../runtime/api/index.js';

function vm(runStrategy: RunStrategy | undefined, status?: VirtualMachine['status'], running?: boolean): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', namespace: 'ns' },
    spec: { ...(runStrategy ? { runStrategy } : {}), ...(running !== undefined ? { running } : {}), template: { spec: { domain: { devices: {} } } } },
    ...(status ? { status } : {}),
  };
}

function vmi(phase: string | undefined, uid = 'uid-1', terminationGracePeriodSeconds?: number): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid },
    spec: { domain: { devices: {} }, ...(terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds } : {}) },
    ...(phase ? { status: { phase } } : {}),
  } as VirtualMachineInstance;
}

function refusal(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof StatusError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('start', () => {
  it('switches a Halted VM to Always, guarded by a test of the current strategy', () => {
    expect(decideStart(vm('Halted'), undefined, {})).toEqual({
      target: 'spec',
      patch: [
        { op: 'test', path: '/spec/runStrategy', value: 'Halted' },
        { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
      ],
    });
  });

  it('sets running: true on a VM that uses the deprecated field', () => {
    expect(decideStart(vm(undefined, undefined, false), undefined, {}).patch).toEqual(runningPatch(vm(undefined, undefined, false), true));
    expect(runningPatch(vm(undefined, undefined, false), true)[1]).toEqual({ op: 'replace', path: '/spec/running', value: true });
  });

  it('queues a paused Start request for a Halted VM started paused', () => {
    expect(decideStart(vm('Halted'), undefined, { paused: true })).toEqual({
      target: 'status',
      patch: [{ op: 'add', path: '/status', value: { stateChangeRequests: [{ action: 'Start', data: { paused: 'true' } }] } }],
    });
  });

  it('queues a Start request for Manual, and Stop+Start when the last VMI has ended', () => {
    expect(decideStart(vm('Manual', { printableStatus: 'Stopped' }), undefined, {}).patch).toEqual([
      { op: 'test', path: '/status/stateChangeRequests', value: null },
      { op: 'add', path: '/status/stateChangeRequests', value: [{ action: 'Start' }] },
    ]);
    expect(decideStart(vm('Manual'), vmi('Succeeded', 'old'), {}).patch[0]).toEqual({
      op: 'add',
      path: '/status',
      value: { stateChangeRequests: [{ action: 'Stop', uid: 'old' }, { action: 'Start' }] },
    });
  });

  it.each<[RunStrategy]>([['Always'], ['Once']])('refuses %s with 409', (strategy) => {
    expect(refusal(() => decideStart(vm(strategy), undefined, {}))).toEqual({
      code: 409,
      message: `Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": ${strategy} does not support manual start requests`,
    });
  });

  it('refuses a running VM with 409 "VM is already running"', () => {
    expect(refusal(() => decideStart(vm('Manual'), vmi('Running'), {})).message).toMatch(/VM is already running$/);
  });

  it('refuses RerunOnFailure from a failed VMI', () => {
    expect(refusal(() => decideStart(vm('RerunOnFailure'), vmi('Failed'), {})).message).toMatch(/RerunOnFailure does not support starting VM from failed state$/);
  });
});

describe('stop', () => {
  it('switches Always and Once to Halted', () => {
    for (const strategy of ['Always', 'Once'] as const) {
      expect(decideStop(vm(strategy), vmi('Running'), {}, 0).patch[1]).toEqual({ op: 'replace', path: '/spec/runStrategy', value: 'Halted' });
    }
  });

  it('queues a Stop request for the running VMI under Manual and RerunOnFailure', () => {
    for (const strategy of ['Manual', 'RerunOnFailure'] as const) {
      expect(decideStop(vm(strategy), vmi('Running', 'u1'), {}, 0)).toEqual({
        target: 'status',
        patch: [{ op: 'add', path: '/status', value: { stateChangeRequests: [{ action: 'Stop', uid: 'u1' }] } }],
      });
    }
  });

  it('a Stop replaces a queued request; anything else while one is queued is refused', () => {
    const busy = vm('Manual', { stateChangeRequests: [{ action: 'Start' }] });
    expect(changeRequestPatch(busy, [{ action: 'Stop', uid: 'u' }])[1]).toEqual({ op: 'replace', path: '/status/stateChangeRequests', value: [{ action: 'Stop', uid: 'u' }] });
    expect(refusal(() => changeRequestPatch(busy, [{ action: 'Start' }])).message).toMatch(/stop\/start already underway/);
  });

  it('clears a recorded start failure with the request', () => {
    const failed = vm('Manual', { startFailure: { consecutiveFailCount: 2 } });
    expect(changeRequestPatch(failed, [{ action: 'Start' }]).at(-1)).toEqual({ op: 'remove', path: '/status/startFailure' });
  });

  it('refuses to stop a stopped VM with 409 "VM is not running"', () => {
    expect(refusal(() => decideStop(vm('Manual'), undefined, {}, 0))).toMatchObject({ code: 409 });
    expect(refusal(() => decideStop(vm('RerunOnFailure'), vmi('Succeeded'), {}, 0)).message).toMatch(/VM is not running$/);
  });

  it('under Halted only a stop with a shorter grace period goes through', () => {
    expect(refusal(() => decideStop(vm('Halted'), vmi('Running', 'u', 30), {}, 30)).message).toMatch(/Halted only supports manual stop requests with a shorter graceperiod$/);
    expect(refusal(() => decideStop(vm('Halted'), vmi('Running', 'u', 30), { gracePeriod: 30 }, 30)).code).toBe(409);
    expect(decideStop(vm('Halted'), vmi('Running', 'u', 30), { gracePeriod: 0 }, 30).target).toBe('status');
    expect(refusal(() => decideStop(vm('Halted'), undefined, { gracePeriod: 0 }, 0)).message).toMatch(/VM is not running$/);
  });
});

describe('restart', () => {
  it('queues Stop(uid) then Start for Always, Manual and RerunOnFailure', () => {
    for (const strategy of ['Always', 'Manual', 'RerunOnFailure'] as const) {
      expect(decideRestart(vm(strategy), vmi('Running', 'u9')).patch).toEqual([
        { op: 'add', path: '/status', value: { stateChangeRequests: [{ action: 'Stop', uid: 'u9' }, { action: 'Start' }] } },
      ]);
    }
  });

  it.each<[RunStrategy]>([['Halted'], ['Once']])('refuses %s with KubeVirt\'s message', (strategy) => {
    expect(refusal(() => decideRestart(vm(strategy), vmi('Running')))).toEqual({
      code: 409,
      message: `Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": RunStategy ${strategy} does not support manual restart requests`,
    });
  });

  it('refuses a VM without a VMI', () => {
    expect(refusal(() => decideRestart(vm('Always'), undefined)).message).toMatch(/VM is not running: Halted$/);
  });

  it('accepts only gracePeriodSeconds 0 for a forced restart', () => {
    expect(refusal(() => validateRestartOptions({ gracePeriodSeconds: 5 }))).toEqual({ code: 400, message: 'For force restart, only gracePeriod=0 is supported for now' });
    expect(refusal(() => validateRestartOptions({ gracePeriodSeconds: -1 }))).toEqual({ code: 400, message: 'gracePeriod has to be greater or equal to 0' });
    expect(() => validateRestartOptions({ gracePeriodSeconds: 0 })).not.toThrow();
  });
});

describe('request bodies', () => {
  it('accept empty, JSON and YAML bodies, ignoring apiVersion and kind as KubeVirt does', () => {
    expect(decodeOptions(StartOptions, '')).toEqual({});
    expect(decodeOptions(StartOptions, '{"kind":"StartOptions","apiVersion":"kubevirt.io/v1","paused":true,"dryRun":["All"]}')).toEqual({ paused: true, dryRun: ['All'] });
    expect(decodeOptions(StopOptions, 'gracePeriod: 5\n')).toEqual({ gracePeriod: 5 });
    expect(decodeOptions(RestartOptions, 'null')).toEqual({});
  });

  it('refuse a field of the wrong type with 400 naming it', () => {
    const bad = refusal(() => decodeOptions(StopOptions, '{"gracePeriod":"soon"}'));
    expect(bad.code).toBe(400);
    expect(bad.message).toContain('gracePeriod');
    expect(refusal(() => decodeOptions(StartOptions, '{"dryRun":["Some"]}')).message).toContain('dryRun[0]');
    expect(refusal(() => decodeOptions(StartOptions, '{not json: [')).code).toBe(400);
  });

  it('refuse hostile bodies with 400 and stay up: deep YAML nesting of every kind, oversized YAML, alias bombs', () => {
    // Each of these aborted the process inside the yaml parser (a few hundred levels) or took
    // seconds of the event loop; every one is now a 400 before the parser sees it, twice in a row.
    const hostile = [
      '['.repeat(1000),
      '{a: '.repeat(1000),
      '- '.repeat(1000) + 'x',
      '? '.repeat(1000) + 'x',
      Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'),
      '- ['.repeat(400),
      `gracePeriod: 1\n#${'x'.repeat(YAML_BODY_MAX_BYTES)}`,
      `a: &a [${'x,'.repeat(50)}x]\nb: [${'*a,'.repeat(40)}*a]`,
    ];
    for (const body of hostile) {
      for (let attempt = 0; attempt < 2; attempt++) expect(refusal(() => decodeOptions(StopOptions, body)).code).toBe(400);
    }
  });

  it('read JSON with JSON.parse, however deep or wide: linear, no recursion, no duplicate-key scan', () => {
    const deep = '{"gracePeriod":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expect(refusal(() => decodeOptions(StopOptions, deep)).message).toContain('gracePeriod');
    const wide = '{' + Array.from({ length: 50_000 }, (_, i) => `"k${i}":1`).join(',') + ',"gracePeriod":7}';
    expect(decodeOptions(StopOptions, wide)).toEqual({ gracePeriod: 7 });
    // A YAML flow mapping is not JSON: KubeVirt's decoder also reads a body that starts with { as JSON.
    expect(refusal(() => decodeOptions(StopOptions, '{gracePeriod: 5}')).code).toBe(400);
  });

  it('still read hand-written YAML up to its bounds', () => {
    const many = Array.from({ length: YAML_BODY_MAX_INDICATORS - 1 }, () => '- All').join('\n');
    expect(decodeOptions(StartOptions, `dryRun:\n${many.replace(/- All/g, '  - All')}\n`)).toEqual({ dryRun: Array.from({ length: YAML_BODY_MAX_INDICATORS - 1 }, () => 'All') });
    expect(decodeOptions(StopOptions, 'gracePeriod: 5  # seconds\n')).toEqual({ gracePeriod: 5 });
  });
});
