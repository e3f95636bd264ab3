// The evacuation controller's decision, case by case, and the migration it creates.
import { describe, expect, it } from '@jest/globals';
import type { EvictionStrategy, MigrationPhase } from '../../runtime/api/index.js';
import { EVACUATION_MIGRATION_ANNOTATION } from '../../runtime/evacuation.js';
import type { VirtualMachineInstance } from '../api.js';
import type { Migration } from '../migration/target-pod.js';
import { renderEvacuationMigration } from './controller.js';
import { EVACUATION_BACKOFF_INITIAL_MS, EVACUATION_BACKOFF_MAX_MS, decideEvacuation, evacuationBackoffMs } from './decide.js';

const now = new Date('2026-12-01T22:00:00Z');
const at = (secondsAgo: number): string => new Date(now.getTime() - secondsAgo * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

/** A Running VMI on node vm, marked for vm, LiveMigrate, migratable; `strategy: undefined` or `evacuation: undefined` leave them out. */
function vmi(options: { strategy?: EvictionStrategy | undefined; node?: string; evacuation?: string | undefined; migratable?: boolean; phase?: string } = {}): VirtualMachineInstance {
  const { node = 'vm', migratable = true, phase = 'Running' } = options;
  const strategy = 'strategy' in options ? options.strategy : 'LiveMigrate';
  const evacuation = 'evacuation' in options ? options.evacuation : 'vm';
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'a', namespace: 'ns', uid: 'u' },
    spec: { domain: { devices: {} }, ...(strategy ? { evictionStrategy: strategy } : {}) },
    status: {
      phase: phase as 'Running',
      nodeName: node,
      conditions: [{ type: 'LiveMigratable', status: migratable ? 'True' : 'False' }],
      ...(evacuation ? { evacuationNodeName: evacuation } : {}),
    },
  };
}

function migration(name: string, phase: MigrationPhase | undefined, createdSecondsAgo: number, { evacuation = true, endedSecondsAgo }: { evacuation?: boolean; endedSecondsAgo?: number } = {}): Migration {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name, namespace: 'ns', creationTimestamp: at(createdSecondsAgo), ...(evacuation ? { annotations: { [EVACUATION_MIGRATION_ANNOTATION]: 'vm' } } : {}) },
    spec: { vmiName: 'a' },
    ...(phase ? { status: { phase, ...(endedSecondsAgo !== undefined ? { migrationState: { endTimestamp: at(endedSecondsAgo) } } : {}) } } : {}),
  };
}

const decide = (v: VirtualMachineInstance, migrations: Migration[] = [], livePods = 1, clusterDefault?: EvictionStrategy) => decideEvacuation({ vmi: v, clusterDefault, migrations, livePods, now });

describe('decideEvacuation', () => {
  it('a marked, migratable LiveMigrate VMI on the marked node gets a migration from that node', () => {
    expect(decide(vmi())).toEqual({ action: 'migrate', sourceNode: 'vm' });
  });

  it("the cluster's default applies to a VMI naming no strategy", () => {
    expect(decide(vmi({ strategy: undefined }), [], 1, 'LiveMigrate')).toEqual({ action: 'migrate', sourceNode: 'vm' });
    expect(decide(vmi({ strategy: undefined }))).toMatchObject({ action: 'nothing' });
  });

  it.each([
    ['not marked', vmi({ evacuation: undefined })],
    ['already on another node (the mark is stale, the VMI controller removes it)', vmi({ node: 'vm-2' })],
    ['ended', vmi({ phase: 'Succeeded' })],
    ['External (another controller handles it)', vmi({ strategy: 'External' })],
    ['None', vmi({ strategy: 'None' })],
    ['LiveMigrateIfPossible, not migratable', vmi({ strategy: 'LiveMigrateIfPossible', migratable: false })],
    ['LiveMigrate, not migratable', vmi({ migratable: false })],
  ])('nothing for a VMI %s', (_what, v) => {
    expect(decide(v)).toMatchObject({ action: 'nothing' });
  });

  it('nothing for a VMI being deleted', () => {
    const v = vmi();
    v.metadata = { ...v.metadata, deletionTimestamp: at(1) };
    expect(decide(v)).toMatchObject({ action: 'nothing' });
  });

  it('waits while any migration of the VMI is in flight (one at a time), whoever created it', () => {
    expect(decide(vmi(), [migration('kubevirt-evacuation-x', 'Running', 5)])).toMatchObject({ action: 'wait' });
    expect(decide(vmi(), [migration('mine', undefined, 1, { evacuation: false })])).toMatchObject({ action: 'wait' });
  });

  it('waits for a guest that is not running yet (the VMI names its node from the pod binding on)', () => {
    expect(decide(vmi({ phase: 'Scheduling' }))).toMatchObject({ action: 'wait' });
    expect(decide(vmi({ phase: 'Scheduled' }))).toMatchObject({ action: 'wait' });
  });

  it("waits while a previous migration's pods are still going", () => {
    expect(decide(vmi(), [], 2)).toMatchObject({ action: 'wait' });
  });

  it('after a succeeded migration the next drain migrates again at once', () => {
    expect(decide(vmi(), [migration('old', 'Succeeded', 600, { endedSecondsAgo: 590 })])).toEqual({ action: 'migrate', sourceNode: 'vm' });
  });

  it('a failed evacuation holds the next one back 20 s from its end, doubling per failure in a row', () => {
    const failed = migration('f1', 'Failed', 30, { endedSecondsAgo: 5 });
    expect(decide(vmi(), [failed])).toEqual({ action: 'wait', why: expect.stringMatching(/backing off/), requeueAfterMs: 15_000 });
    const twice = [migration('f0', 'Failed', 90, { endedSecondsAgo: 80 }), failed];
    expect(evacuationBackoffMs(twice, now)).toBe(2 * EVACUATION_BACKOFF_INITIAL_MS - 5_000);
    // A success in between resets the count; a failure long enough ago holds nothing back.
    expect(evacuationBackoffMs([migration('f0', 'Failed', 900, { endedSecondsAgo: 890 }), migration('ok', 'Succeeded', 600), failed], now)).toBe(15_000);
    expect(decide(vmi(), [migration('f', 'Failed', 60, { endedSecondsAgo: 50 })])).toEqual({ action: 'migrate', sourceNode: 'vm' });
    // Migrations a user created are not evacuations and do not count.
    expect(evacuationBackoffMs([migration('u', 'Failed', 30, { evacuation: false, endedSecondsAgo: 5 })], now)).toBe(0);
  });

  it('the backoff is capped at 5 minutes', () => {
    const many = Array.from({ length: 12 }, (_, i) => migration(`f${i}`, 'Failed', 100 - i, { endedSecondsAgo: 0 }));
    expect(evacuationBackoffMs(many, now)).toBe(EVACUATION_BACKOFF_MAX_MS);
  });
});

describe('renderEvacuationMigration', () => {
  it("is KubeVirt's: generateName kubevirt-evacuation-, annotated with the node, priority system-critical", () => {
    expect(renderEvacuationMigration(vmi(), 'vm')).toEqual({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      metadata: { generateName: 'kubevirt-evacuation-', namespace: 'ns', annotations: { 'kubevirt.io/evacuationMigration': 'vm' } },
      spec: { vmiName: 'a', priority: 'system-critical' },
    });
  });
});
