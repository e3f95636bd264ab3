import { describe, expect, it } from '@jest/globals';
import type { KubeEvent, VirtualMachine, VirtualMachineInstance } from './api.js';
import type { Observation, ProgressSink } from './wait.js';
import { describeState, formatElapsed, progressLine, waitUntil } from './wait.js';

describe('progress', () => {
  it('formats elapsed time as kubectl does', () => {
    expect([0, 999, 12_000, 65_000, 3_723_000].map(formatElapsed)).toEqual(['0s', '0s', '12s', '1m05s', '1h02m03s']);
  });

  it('shows the phases passed through and keeps long histories short', () => {
    expect(progressLine('vm/web', ['Stopped', 'Starting', 'Running'], 12_000)).toBe('vm/web: Stopped → Starting → Running (12s)');
    expect(progressLine('vm/web', ['a', 'b', 'c', 'd', 'e', 'f'], 0)).toBe('vm/web: … → c → d → e → f (0s)');
  });
});

describe('the state a timeout reports', () => {
  it('names the unsatisfied conditions and the latest events on one line', () => {
    const vm = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', spec: { template: { spec: { domain: { devices: {} } } } }, status: { printableStatus: 'ErrorUnschedulable', conditions: [{ type: 'Ready', status: 'False', reason: 'PodNotReady', message: '' }] } } as unknown as VirtualMachine;
    const vmi = { status: { phase: 'Scheduling', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' }] } } as unknown as VirtualMachineInstance;
    const events: KubeEvent[] = [
      { type: 'Normal', reason: 'SuccessfulCreate', message: 'Created virtual machine pod', involvedObject: { kind: 'VirtualMachineInstance' } },
      { type: 'Warning', reason: 'FailedScheduling', message: '0/1 nodes are available:\n1 Insufficient memory.', involvedObject: { kind: 'Pod' } },
    ];
    const line = describeState(vm, vmi, events);
    expect(line).toBe(
      'the VM is ErrorUnschedulable with Ready=False (PodNotReady); its VMI is Scheduling with PodScheduled=False (Unschedulable: 0/1 nodes are available: 1 Insufficient memory.); latest events: Normal SuccessfulCreate on VirtualMachineInstance: Created virtual machine pod | Warning FailedScheduling on Pod: 0/1 nodes are available: 1 Insufficient memory.',
    );
    expect(describeState(vm, undefined, [])).toContain('it has no VMI; no events');
  });
});

describe('waitUntil', () => {
  const silent: ProgressSink = { update() {}, end() {} };

  it('returns once the observation is done, recording each phase once', async () => {
    const seen: string[][] = [];
    const sink: ProgressSink = { update: (_s, phases, _e, changed) => changed && seen.push([...phases]), end() {} };
    const script: Observation[] = [{ phase: 'Stopped', done: false }, { phase: 'Starting', done: false }, { phase: 'Starting', done: false }, { phase: 'Running', done: true }];
    await waitUntil({ subject: 'vm/a', goal: 'to be Running', timeoutMs: 5_000, intervalMs: 1, sink, explain: () => Promise.resolve(''), observe: () => Promise.resolve(script.shift() ?? { phase: 'x', done: true }) });
    expect(seen).toEqual([['Stopped'], ['Stopped', 'Starting'], ['Stopped', 'Starting', 'Running']]);
  });

  it('fails with what it waited for and why when time runs out', async () => {
    await expect(
      waitUntil({ subject: 'vm/a', goal: 'to be Running', timeoutMs: 30, intervalMs: 5, sink: silent, explain: () => Promise.resolve('the VM is Starting'), observe: () => Promise.resolve({ phase: 'Starting', done: false }) }),
    ).rejects.toThrow('timed out after 0s waiting for vm/a to be Running; the VM is Starting');
  });

  it('fails at once when the observation says it cannot get there', async () => {
    await expect(
      waitUntil({ subject: 'vm/a', goal: 'to migrate', timeoutMs: 60_000, sink: silent, explain: () => Promise.resolve(''), observe: () => Promise.resolve({ phase: 'Failed', done: false, failed: 'migration m failed' }) }),
    ).rejects.toThrow('vm/a: migration m failed');
  });
});
