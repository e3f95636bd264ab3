import type { VirtualMachine, VirtualMachineInstance } from '../api.js';
import { statusEqual } from '../../runtime/status.js';
import { TEMPLATE_HASH_ANNOTATION, computeVMStatus } from './status.js';
import type { VMStatusInput } from './status.js';
import { templateHash } from './controller.js';
import { firmwareUUID } from '../../runtime/vmi-defaults.js';

const now = new Date('2026-11-22T20:00:00Z');

const vm: VirtualMachine = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm1', namespace: 'ns', uid: 'vm-uid', generation: 3 },
  spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} } } } },
};

function vmi(phase: string, conditions: Array<{ type: string; status: 'True' | 'False'; reason?: string; message?: string; lastTransitionTime?: string }> = [], hash = templateHash(vm)): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-uid', annotations: { [TEMPLATE_HASH_ANNOTATION]: hash } },
    spec: { domain: { devices: {} } },
    status: { phase: phase as never, conditions },
  };
}

const input = (overrides: Partial<VMStatusInput>): VMStatusInput => ({
  vm,
  vmi: undefined,
  runStrategy: 'Always',
  stateChangeRequests: [],
  startFailure: undefined,
  startExpected: false,
  stopExpected: false,
  failure: undefined,
  templateHash: templateHash(vm),
  instancetypeRef: undefined,
  preferenceRef: undefined,
  now,
  ...overrides,
});

describe('computeVMStatus', () => {
  test('a running, ready VMI: Running, ready, created, Ready mirrored with its transition time', () => {
    const status = computeVMStatus(input({ vmi: vmi('Running', [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-22T19:58:00Z' }]) }));
    expect(status).toMatchObject({ printableStatus: 'Running', ready: true, created: true, observedGeneration: 3, runStrategy: 'Always' });
    expect(status.conditions).toEqual([{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-11-22T19:58:00Z' }]);
  });

  test('Migrating from the VMI\'s migrationState: started and not ended; Running again once it completed or failed', () => {
    const withState = (state: NonNullable<VirtualMachineInstance['status']>['migrationState']) => {
      const running = vmi('Running', [{ type: 'Ready', status: 'True' }]);
      running.status = { ...running.status, migrationState: state };
      return computeVMStatus(input({ vmi: running })).printableStatus;
    };
    expect(withState({ migrationUid: 'm1', targetNodeAddress: '10.0.0.2' })).toBe('Running');
    expect(withState({ migrationUid: 'm1', startTimestamp: '2026-11-22T19:59:00Z' })).toBe('Migrating');
    expect(withState({ migrationUid: 'm1', startTimestamp: '2026-11-22T19:59:00Z', endTimestamp: '2026-11-22T19:59:05Z', completed: true })).toBe('Running');
    expect(withState({ migrationUid: 'm1', startTimestamp: '2026-11-22T19:59:00Z', endTimestamp: '2026-11-22T19:59:05Z', failed: true, abortStatus: 'Succeeded' })).toBe('Running');
  });

  test('no VMI: Ready False VMINotExists; runStrategy recorded only once a VMI existed', () => {
    const status = computeVMStatus(input({ runStrategy: 'Halted' }));
    expect(status.printableStatus).toBe('Stopped');
    expect(status.created).toBe(false);
    expect(status.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'VMINotExists' });
    expect(status.runStrategy).toBeUndefined();
    expect(computeVMStatus(input({ startExpected: true })).runStrategy).toBe('Always');
  });

  test('VMI conditions are mirrored (Paused), and removed when the VMI drops them', () => {
    const paused = computeVMStatus(input({ vmi: vmi('Running', [{ type: 'Ready', status: 'False' }, { type: 'Paused', status: 'True', reason: 'PausedByUser' }]) }));
    expect(paused.printableStatus).toBe('Paused');
    expect(paused.conditions?.map((c) => c.type)).toEqual(['Ready', 'Paused']);
    const resumed = computeVMStatus(input({ vm: { ...vm, status: paused }, vmi: vmi('Running', [{ type: 'Ready', status: 'True' }]) }));
    expect(resumed.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });

  test('a sync failure is the Failure condition', () => {
    const status = computeVMStatus(input({ failure: { reason: 'InstancetypeConflict', message: 'spec.template.spec.domain.cpu.sockets: conflicts' } }));
    expect(status.conditions?.find((c) => c.type === 'Failure')).toMatchObject({ status: 'True', reason: 'InstancetypeConflict' });
  });

  test('RestartRequired when the VM changed since its VMI was created', () => {
    const status = computeVMStatus(input({ vmi: vmi('Running', [{ type: 'Ready', status: 'True' }], 'an-older-hash') }));
    expect(status.conditions?.find((c) => c.type === 'RestartRequired')).toMatchObject({ status: 'True', reason: 'SpecChanged' });
    const fresh = computeVMStatus(input({ vmi: vmi('Running', [{ type: 'Ready', status: 'True' }]) }));
    expect(fresh.conditions?.find((c) => c.type === 'RestartRequired')).toBeUndefined();
  });

  test('recomputing from the written status is a no-op (no second write)', () => {
    const first = computeVMStatus(input({ vmi: vmi('Scheduling', [{ type: 'Ready', status: 'False', reason: 'GuestNotRunning' }]) }));
    const again = computeVMStatus(input({ vm: { ...vm, status: first }, vmi: vmi('Scheduling', [{ type: 'Ready', status: 'False', reason: 'GuestNotRunning' }]), now: new Date('2026-11-22T20:05:00Z') }));
    expect(statusEqual(first, again)).toBe(true);
  });
});

describe('VMI identity helpers', () => {
  test('firmware UUID is a stable v5 UUID of the name', () => {
    expect(firmwareUUID('vm1')).toBe(firmwareUUID('vm1'));
    expect(firmwareUUID('vm1')).not.toBe(firmwareUUID('vm2'));
    expect(firmwareUUID('vm1')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
  test('template hash ignores key order', () => {
    const reordered: VirtualMachine = { ...vm, spec: { template: { spec: { domain: { devices: {} } } }, runStrategy: 'Always' } };
    expect(templateHash(reordered)).toBe(templateHash(vm));
  });
});
