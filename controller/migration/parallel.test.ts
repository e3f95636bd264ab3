import { describe, expect, it } from '@jest/globals';
import type { MigrationPhase } from '../../runtime/api/index.js';
import type { VirtualMachineInstance } from '../api.js';
import { inFlightMigrations, parallelLimitWait, pendingMigrationKeys } from './parallel.js';
import { decideMigration } from './phase.js';
import type { Migration } from './target-pod.js';

function migration(name: string, phase?: MigrationPhase, extra: { created?: string; sourceNode?: string } = {}): Migration {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, creationTimestamp: extra.created ?? '2026-12-01T12:00:00Z' },
    spec: { vmiName: `vmi-${name}` },
    ...(phase || extra.sourceNode ? { status: { ...(phase ? { phase } : {}), ...(extra.sourceNode ? { migrationState: { sourceNode: extra.sourceNode } } : {}) } } : {}),
  };
}

function vmiOn(node: string, migrationSource?: string): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v', namespace: 'ns' },
    spec: { domain: { devices: {} } },
    status: { phase: 'Running', nodeName: node, ...(migrationSource ? { migrationState: { sourceNode: migrationSource } } : {}) },
  };
}

const limits = { parallelMigrationsPerCluster: 3, parallelOutboundMigrationsPerNode: 2 };

describe('parallel migration limits', () => {
  it("counts KubeVirt's running migrations: past Pending and not ended, or Pending with a target pod (or one being created)", () => {
    const all = [
      migration('pending'),
      migration('pending-with-target', 'Pending'),
      migration('scheduling', 'Scheduling'),
      migration('running', 'Running'),
      migration('target-ready', 'TargetReady'),
      migration('succeeded', 'Succeeded'),
      migration('failed', 'Failed'),
      migration('synchronizing', 'Synchronizing'),
    ];
    const inFlight = inFlightMigrations({ migrations: all, vmiOf: () => vmiOn('node-a'), hasTarget: (m) => m.metadata?.name === 'pending-with-target' || m.metadata?.name === 'succeeded' });
    expect(inFlight.map((m) => m.key)).toEqual(['ns/pending-with-target', 'ns/scheduling', 'ns/running', 'ns/target-ready']);
  });

  it('counts a migration against the node its VMI runs on and the node it migrates out of', () => {
    const vmis: Record<string, VirtualMachineInstance> = {
      'vmi-a': vmiOn('node-a'),
      // The hand-over happened: the VMI runs on node-b, the migration has not ended yet.
      'vmi-b': vmiOn('node-b', 'node-a'),
    };
    const inFlight = inFlightMigrations({ migrations: [migration('a', 'Running'), migration('b', 'Running')], vmiOf: (m) => vmis[m.spec.vmiName], hasTarget: () => true });
    expect(inFlight.map((m) => [...m.sourceNodes].sort())).toEqual([['node-a'], ['node-a', 'node-b']]);
    expect(parallelLimitWait('ns/c', 'node-a', inFlight, limits)?.reason).toBe('ParallelOutboundMigrationsPerNodeLimit');
    expect(parallelLimitWait('ns/c', 'node-b', inFlight, limits)).toBeUndefined();
    // The migration's own record of its source node counts too (the VMI may be gone from the cache).
    expect(inFlightMigrations({ migrations: [migration('x', 'Scheduling', { sourceNode: 'node-c' })], vmiOf: () => undefined, hasTarget: () => true })[0]?.sourceNodes).toEqual(new Set(['node-c']));
  });

  it('waits at the cluster limit first, then at the per-node limit, with messages naming the KubeVirt CR field and the numbers', () => {
    const on = (key: string, ...nodes: string[]) => ({ key, sourceNodes: new Set(nodes) });
    const cluster = parallelLimitWait('ns/new', 'node-a', [on('ns/1', 'node-a'), on('ns/2', 'node-b'), on('ns/3', 'node-c')], limits);
    expect(cluster).toEqual({
      reason: 'ParallelMigrationsPerClusterLimit',
      message: 'waiting for a free slot: 3 migrations are in flight in the cluster, the limit (KubeVirt CR spec.configuration.migrations.parallelMigrationsPerCluster) is 3',
    });
    const node = parallelLimitWait('ns/new', 'node-a', [on('ns/1', 'node-a'), on('ns/2', 'node-a')], limits);
    expect(node).toEqual({
      reason: 'ParallelOutboundMigrationsPerNodeLimit',
      message: 'waiting for a free slot: 2 migrations are in flight out of node node-a, the limit (KubeVirt CR spec.configuration.migrations.parallelOutboundMigrationsPerNode) is 2',
    });
    // A migration's own slot (its target being created) never blocks it.
    expect(parallelLimitWait('ns/1', 'node-a', [on('ns/1', 'node-a'), on('ns/2', 'node-a')], limits)).toBeUndefined();
    expect(parallelLimitWait('ns/new', 'node-a', [on('ns/1', 'node-a')], limits)).toBeUndefined();
  });

  it('offers the Pending migrations oldest first when a slot may have freed', () => {
    const all = [
      migration('late', 'Pending', { created: '2026-12-01T12:00:09Z' }),
      migration('running', 'Running', { created: '2026-12-01T11:00:00Z' }),
      migration('b', undefined, { created: '2026-12-01T12:00:01Z' }),
      migration('a', 'Pending', { created: '2026-12-01T12:00:01Z' }),
      migration('done', 'Succeeded', { created: '2026-12-01T10:00:00Z' }),
    ];
    expect(pendingMigrationKeys(all)).toEqual(['ns/a', 'ns/b', 'ns/late']);
  });

  it('keeps a migration over a limit Pending with the reason, creating no target pod', () => {
    const wait = { reason: 'ParallelMigrationsPerClusterLimit' as const, message: 'waiting for a free slot' };
    const base = { vmi: vmiOn('node-a'), targetPod: undefined, liveMigratable: { type: 'LiveMigratable', status: 'True' as const }, now: new Date(), timeouts: { unschedulableSeconds: 300, pendingSeconds: 900 } };
    expect(decideMigration({ ...base, migration: migration('m'), parallelLimit: wait })).toEqual({ phase: 'Pending', createTargetPod: false, deleteTargetPod: false, waiting: wait });
    expect(decideMigration({ ...base, migration: migration('m', 'Pending') })).toMatchObject({ phase: 'Scheduling', createTargetPod: true });
    // A limit never holds back a failure: a VMI that is not running fails the migration at once.
    expect(decideMigration({ ...base, vmi: { ...vmiOn('node-a'), status: { phase: 'Succeeded', nodeName: 'node-a' } }, migration: migration('m'), parallelLimit: wait }).phase).toBe('Failed');
  });
});
