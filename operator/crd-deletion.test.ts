import { describe, expect, it } from '@jest/globals';
import { CRD_CLEANUP_FINALIZER, failedFinalizerPass } from './crd-deletion.js';

type Condition = { type: string; status: string; reason: string; message?: string };

function crd(options: { deleting?: boolean; finalizers?: string[]; conditions?: Condition[] }) {
  return {
    metadata: {
      name: 'virtualmachineinstancetypes.instancetype.kubevirt.io',
      uid: 'u1',
      ...(options.deleting === false ? {} : { deletionTimestamp: '2026-12-03T15:13:45Z' }),
      finalizers: options.finalizers ?? [CRD_CLEANUP_FINALIZER],
    },
    status: { conditions: options.conditions ?? [] },
  };
}

const failed: Condition = { type: 'Terminating', status: 'True', reason: 'InstanceDeletionFailed', message: 'could not list instances: storage is (re)initializing' };

describe("the API server's CRD finalizer, as the operator reads it", () => {
  it('names a failed pass on a CRD being deleted', () => {
    expect(failedFinalizerPass(crd({ conditions: [{ type: 'Established', status: 'True', reason: 'InitialNamesAccepted' }, failed] }))).toBe(
      'InstanceDeletionFailed: could not list instances: storage is (re)initializing',
    );
    expect(failedFinalizerPass(crd({ conditions: [{ type: 'Terminating', status: 'True', reason: 'InstanceDeletionCheck', message: 'could not confirm zero CustomResources remaining' }] }))).toBe(
      'InstanceDeletionCheck: could not confirm zero CustomResources remaining',
    );
  });

  it('leaves alone a pass in progress or done, a CRD not being deleted, and one its finalizer has released', () => {
    expect(failedFinalizerPass(crd({ conditions: [{ type: 'Terminating', status: 'True', reason: 'InstanceDeletionInProgress' }] }))).toBeUndefined();
    expect(failedFinalizerPass(crd({ conditions: [{ type: 'Terminating', status: 'False', reason: 'InstanceDeletionCompleted' }] }))).toBeUndefined();
    expect(failedFinalizerPass(crd({ conditions: [] }))).toBeUndefined();
    expect(failedFinalizerPass(crd({ deleting: false, conditions: [failed] }))).toBeUndefined();
    expect(failedFinalizerPass(crd({ finalizers: ['example.com/other'], conditions: [failed] }))).toBeUndefined();
    expect(failedFinalizerPass({ metadata: { name: 'x' } })).toBeUndefined();
  });
});
