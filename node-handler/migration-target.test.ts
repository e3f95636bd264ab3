import { afterEach, describe, expect, it } from '@jest/globals';
import type { ReconcileContext } from '../runtime/controller.js';
import type { ResourceClient } from '../runtime/kube.js';
import { silentLogger } from '../runtime/logging.js';
import { DomainStateCache } from './domain-state.js';
import { LauncherConnections } from './launcher-connections.js';
import type { LauncherDialer } from './launcher-connections.js';
import type { MigrationReceiver } from './migration-channel.js';
import type { MigrationObject } from './migration-source.js';
import { MigrationTarget } from './migration-target.js';
import type { VirtualMachineInstance } from './vmi-handler.js';

const KEY = 'ns/mig-1';
const VMI_KEY = 'ns/vm-1';
const TARGET_POD = 'uid-target-pod';

type Phase = NonNullable<NonNullable<MigrationObject['status']>['phase']>;

function migration(phase: Phase, targetNode = 'node-b'): MigrationObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name: 'mig-1', namespace: 'ns', uid: 'uid-mig-1' },
    spec: { vmiName: 'vm-1' },
    status: { phase, migrationState: { migrationUid: 'uid-mig-1', sourceNode: 'node-a', targetNode } },
  };
}

const vmi: VirtualMachineInstance = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm-1', namespace: 'ns', uid: 'uid-vm-1' },
  spec: { domain: { devices: {} } },
  status: { phase: 'Running', nodeName: 'node-a', activePods: { 'uid-source-pod': 'node-a', [TARGET_POD]: 'node-b' } },
};

const ctx: ReconcileContext = { log: silentLogger, reconcileId: 'r1', namespace: 'ns', name: 'mig-1', signal: new AbortController().signal };

describe('MigrationTarget', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** A target whose launcher never answers (its pod never started): every dial finds no socket. */
  function targetWithoutLauncher(current: { migration: MigrationObject | undefined }) {
    const dial: LauncherDialer = async () => {
      throw new Error('ENOENT: no launcher socket');
    };
    const connections = new LauncherConnections({ dial, domains: new DomainStateCache(), podsDir: '/nonexistent-pods', retryDelayMs: { first: 5, longest: 5 } });
    cleanups.push(() => connections.closeAll());
    const target = new MigrationTarget({
      nodeName: 'node-b',
      podIp: '127.0.0.1',
      port: 1,
      podsDir: '/nonexistent-pods',
      // Neither is reached before the target launcher attaches, and it never does here.
      receiver: undefined as unknown as MigrationReceiver,
      vmis: undefined as unknown as ResourceClient<VirtualMachineInstance>,
      migrations: { get: (key: string) => (key === KEY ? current.migration : undefined) },
      connections,
      log: silentLogger,
    });
    return { target, connections };
  }

  it('holds the VMI’s launcher connection while its launcher has not attached, and waits', async () => {
    const current: { migration: MigrationObject | undefined } = { migration: migration('PreparingTarget') };
    const { target, connections } = targetWithoutLauncher(current);
    expect(await target.prepare(KEY, migration('PreparingTarget'), vmi, silentLogger)).toBeUndefined();
    expect(target.holds(VMI_KEY)).toBe(true);
    expect(connections.keys()).toEqual([VMI_KEY]);
  });

  it.each([
    ['fails', { migration: migration('Failed') }],
    ['is deleted', { migration: undefined }],
    ['moves to another node', { migration: migration('PreparingTarget', 'node-c') }],
  ])('lets go of a launcher that never attached when the migration %s', async (_case, over) => {
    const current: { migration: MigrationObject | undefined } = { migration: migration('PreparingTarget') };
    const { target, connections } = targetWithoutLauncher(current);
    expect(await target.prepare(KEY, migration('PreparingTarget'), vmi, silentLogger)).toBeUndefined();

    current.migration = over.migration;
    await target.reconcile(KEY, ctx);
    expect(target.holds(VMI_KEY)).toBe(false);
    // Dropped: no more dials to a pod that never came (launcher-connections.test.ts).
    expect(connections.keys()).toEqual([]);
  });

  it('close() lets go of a launcher that never attached', async () => {
    const { target, connections } = targetWithoutLauncher({ migration: migration('PreparingTarget') });
    await target.prepare(KEY, migration('PreparingTarget'), vmi, silentLogger);
    target.close(KEY);
    expect(target.holds(VMI_KEY)).toBe(false);
    expect(connections.keys()).toEqual([]);
  });
});
