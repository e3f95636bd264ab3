import { ownedBy } from '../../runtime/informer.js';
import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { MigrationPhase } from '../../runtime/api/index.js';
import type { VirtualMachineInstance } from '../api.js';
import { liveMigratableCondition } from './live-migratable.js';
import { decideMigration } from './phase.js';
import type { MigrationObservation } from './phase.js';
import { MIGRATION_JOB_LABEL, MIGRATION_JOB_NAME_ANNOTATION, migrationKeyOfPod, migrationUidIndex, renderTargetPod, targetPodName } from './target-pod.js';
import type { Migration } from './target-pod.js';

const now = new Date('2026-12-01T12:00:00Z');
const timeouts = { unschedulableSeconds: 300, pendingSeconds: 900 };

function vmi(status: VirtualMachineInstance['status'] = { phase: 'Running', nodeName: 'node-a' }, volumes: VirtualMachineInstance['spec']['volumes'] = []): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-uid' },
    spec: { domain: { memory: { guest: '128Mi' }, devices: {} }, volumes },
    status,
  };
}

function migration(phase?: MigrationPhase): Migration {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name: 'mig1', namespace: 'ns', uid: '0a1b2c3d-4e5f-6789-abcd-ef0123456789' },
    spec: { vmiName: 'vm1', addedNodeSelector: { zone: 'b' } },
    ...(phase ? { status: { phase } } : {}),
  };
}

function pod(secondsOld: number, extra: { nodeName?: string; phase?: string; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: { name: 'target', creationTimestamp: new Date(now.getTime() - secondsOld * 1000), ...(extra.deleting ? { deletionTimestamp: now } : {}) },
    spec: { containers: [], ...(extra.nodeName ? { nodeName: extra.nodeName } : {}) },
    status: { phase: extra.phase ?? 'Pending', conditions: extra.conditions ?? [] },
  };
}

function observe(o: Partial<MigrationObservation>): MigrationObservation {
  return { migration: migration(), vmi: vmi(), targetPod: undefined, liveMigratable: { type: 'LiveMigratable', status: 'True' }, now, timeouts, ...o };
}

const unschedulable = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector." }];
const ready = [{ type: 'Ready', status: 'True' }];

describe('migration phases', () => {
  it('creates the target pod once: Pending → Scheduling', () => {
    expect(decideMigration(observe({}))).toMatchObject({ phase: 'Scheduling', createTargetPod: true });
    // A target that vanished after it was created fails the migration instead of making another.
    expect(decideMigration(observe({ migration: migration('Scheduling') }))).toMatchObject({ phase: 'Failed', createTargetPod: false, failureReason: 'the target pod was deleted' });
  });

  it('waits in Scheduling with the scheduler\'s reason, then fails at the timeout and removes the pod', () => {
    const waiting = decideMigration(observe({ migration: migration('Scheduling'), targetPod: pod(10, { conditions: unschedulable }) }));
    expect(waiting).toMatchObject({ phase: 'Scheduling', deleteTargetPod: false, waiting: { reason: 'Unschedulable' }, requeueAfterMs: 290_000 });
    expect(waiting.waiting?.message).toMatch(/didn't match Pod's node affinity/);
    const timedOut = decideMigration(observe({ migration: migration('Scheduling'), targetPod: pod(300, { conditions: unschedulable }) }));
    expect(timedOut).toMatchObject({ phase: 'Failed', deleteTargetPod: true });
    expect(timedOut.failureReason).toMatch(/^the target pod target cannot be scheduled: 0\/1 nodes are available.*\(for 300 s\)$/);
  });

  it('follows the target pod and the VMI\'s migrationState to Succeeded', () => {
    const m = migration('Scheduling');
    expect(decideMigration(observe({ migration: m, targetPod: pod(5, { nodeName: 'node-b' }) })).phase).toBe('Scheduled');
    expect(decideMigration(observe({ migration: m, targetPod: pod(5, { nodeName: 'node-b', phase: 'Running', conditions: ready }) })).phase).toBe('PreparingTarget');
    const state = (s: object) => vmi({ phase: 'Running', nodeName: 'node-a', migrationState: { migrationUid: m.metadata?.uid, ...s } });
    const running = pod(5, { nodeName: 'node-b', phase: 'Running', conditions: ready });
    expect(decideMigration(observe({ migration: m, vmi: state({ targetNodeAddress: '10.0.0.2:4444' }), targetPod: running })).phase).toBe('TargetReady');
    expect(decideMigration(observe({ migration: m, vmi: state({ targetNodeAddress: 'x', startTimestamp: '2026-12-01T12:00:00Z' }), targetPod: running })).phase).toBe('Running');
    expect(decideMigration(observe({ migration: m, vmi: state({ completed: true }), targetPod: running }))).toMatchObject({ phase: 'Succeeded', deleteTargetPod: false });
    expect(decideMigration(observe({ migration: m, vmi: state({ failed: true, failureReason: 'target died' }), targetPod: running }))).toMatchObject({ phase: 'Failed', failureReason: 'target died', deleteTargetPod: true });
    // Another migration's state on the VMI is not this one's.
    expect(decideMigration(observe({ migration: m, vmi: vmi({ phase: 'Running', nodeName: 'node-a', migrationState: { migrationUid: 'other', completed: true } }), targetPod: running })).phase).toBe('PreparingTarget');
  });

  it('fails what cannot migrate, with the reason', () => {
    expect(decideMigration(observe({ vmi: undefined })).failureReason).toBe('VirtualMachineInstance vm1 does not exist');
    expect(decideMigration(observe({ vmi: vmi({ phase: 'Scheduled', nodeName: 'node-a' }) })).failureReason).toMatch(/is Scheduled; only a Running VMI is migrated/);
    expect(decideMigration(observe({ liveMigratable: { type: 'LiveMigratable', status: 'False', reason: 'DisksNotLiveMigratable', message: 'cannot migrate VMI: PVC d is not shared' } })))
      .toMatchObject({ phase: 'Failed', failureReason: 'DisksNotLiveMigratable: cannot migrate VMI: PVC d is not shared', createTargetPod: false });
    expect(decideMigration(observe({ migration: migration('Scheduled'), targetPod: pod(5, { nodeName: 'node-a' }) })).failureReason).toBe('the target pod landed on the source node node-a');
    expect(decideMigration(observe({ migration: migration('Scheduled'), targetPod: pod(901, { nodeName: 'node-b' }) })).failureReason).toMatch(/was not ready within 900 s/);
    expect(decideMigration(observe({ migration: migration('Scheduled'), targetPod: pod(5, { nodeName: 'node-b', phase: 'Failed' }) })).phase).toBe('Failed');
  });

  it('leaves a final migration final, removing a failed one\'s target', () => {
    expect(decideMigration(observe({ migration: migration('Failed'), targetPod: pod(1) }))).toEqual({ phase: 'Failed', createTargetPod: false, deleteTargetPod: true });
    expect(decideMigration(observe({ migration: migration('Succeeded'), vmi: undefined }))).toEqual({ phase: 'Succeeded', createTargetPod: false, deleteTargetPod: false });
  });
});

describe('LiveMigratable', () => {
  it('is False with DisksNotLiveMigratable for a claim that is not ReadWriteMany, naming it', () => {
    const v = vmi(undefined, [{ name: 'root', containerDisk: { image: 'x' } }, { name: 'data', persistentVolumeClaim: { claimName: 'rwo-claim' } }]);
    expect(liveMigratableCondition(v, () => ['ReadWriteOnce'])).toEqual({
      type: 'LiveMigratable',
      status: 'False',
      reason: 'DisksNotLiveMigratable',
      message: 'cannot migrate VMI: PVC rwo-claim is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)',
    });
    expect(liveMigratableCondition(v, () => undefined).message).toMatch(/Unable to determine if PVC rwo-claim is shared/);
    expect(liveMigratableCondition(v, () => ['ReadWriteMany']).status).toBe('True');
  });

  it('is True for disks that travel with the migration', () => {
    const v = vmi(undefined, [{ name: 'root', containerDisk: { image: 'x' } }, { name: 'scratch', emptyDisk: { capacity: '1Gi' } }, { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config' } }]);
    expect(liveMigratableCondition(v, () => undefined).status).toBe('True');
  });
});

describe('target pod', () => {
  const config = { launcherImage: 'kubevm/launcher:test', useEmulation: true };

  it('is kept off the source node, on the added node selector, labelled and annotated with the migration, owned by the VMI', () => {
    const m = migration();
    const p = renderTargetPod(vmi(), m, 'node-a', config);
    expect(p.metadata?.name).toBe(targetPodName(vmi(), m));
    expect(p.metadata?.name).toMatch(/-mig-0a1b2c3d$/);
    expect(p.metadata?.labels?.[MIGRATION_JOB_LABEL]).toBe(m.metadata?.uid);
    expect(p.metadata?.annotations?.[MIGRATION_JOB_NAME_ANNOTATION]).toBe(m.metadata?.name);
    expect(migrationKeyOfPod(p)).toBe(`${m.metadata?.namespace}/${m.metadata?.name}`);
    expect(migrationUidIndex(p)).toEqual([ownedBy(m)]);
    // The controller creates pods only for a VMI (deploy/controller/policy.yaml); the target becomes its launcher.
    expect(p.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachineInstance', uid: vmi().metadata?.uid, controller: true })]);
    expect(p.spec?.nodeSelector).toMatchObject({ zone: 'b' });
    expect(p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['node-a'] }] }]);
    // Its QEMU waits for the handler's start with the incoming stream; a VMI's own launcher starts at once.
    expect(p.spec?.containers[0]?.env).toContainEqual({ name: 'KUBEVM_AUTOSTART', value: 'false' });
  });

  it("adds the source node's exclusion to every node affinity term the VMI has", () => {
    const withAffinity = vmi();
    withAffinity.spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }, { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }] } } };
    const terms = renderTargetPod(withAffinity, migration(), 'node-a', config).spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    expect(terms).toHaveLength(2);
    for (const term of terms) expect(term.matchFields).toEqual([{ key: 'metadata.name', operator: 'NotIn', values: ['node-a'] }]);
    expect(terms[0]?.matchExpressions?.[0]?.key).toBe('disk');
  });
});
