// The owner indexes' keys: an owner reference counts only within its object's namespace.
import { describe, expect, it } from '@jest/globals';
import { MIGRATION_JOB_LABEL, migrationUidIndex } from '../controller/migration/target-pod.js';
import type { KubeObject } from './kube.js';
import { ownedBy, ownerUidIndex } from './informer.js';

const vmi: KubeObject = { metadata: { name: 'victim', namespace: 'tenant-b', uid: 'u-vmi' } };
const migration: KubeObject = { metadata: { name: 'm1', namespace: 'tenant-b', uid: 'u-mig' } };
const podIn = (namespace: string) => ({
  metadata: {
    name: 'virt-launcher-victim-abcde',
    namespace,
    labels: { 'kubevirt.io': 'virt-launcher', [MIGRATION_JOB_LABEL]: 'u-mig' },
    ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'victim', uid: 'u-vmi', controller: true }],
  },
});

describe('owner index keys', () => {
  it("file a pod under its owner and its migration in the owner's namespace", () => {
    expect(ownerUidIndex(podIn('tenant-b'))).toEqual([ownedBy(vmi)]);
    expect(migrationUidIndex(podIn('tenant-b'))).toEqual([ownedBy(migration)]);
  });

  it('never under an owner of another namespace whose uid the pod copies (anyone who may read the owner can)', () => {
    expect(ownerUidIndex(podIn('tenant-a'))).not.toContain(ownedBy(vmi));
    expect(migrationUidIndex(podIn('tenant-a'))).not.toContain(ownedBy(migration));
  });
});
