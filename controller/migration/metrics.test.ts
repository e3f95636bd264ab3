import { afterEach, describe, expect, it } from '@jest/globals';
import type { MigrationPhase } from '../../runtime/api/index.js';
import { registry } from '../../runtime/metrics.js';
import { reportMigrationPhases } from './metrics.js';
import type { Migration } from './target-pod.js';

function migration(name: string, phase?: MigrationPhase, namespace = 'ns'): Migration {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace }, spec: { vmiName: `vmi-${name}` }, ...(phase ? { status: { phase } } : {}) };
}

/** The scrape's text, the lines of KubeVirt's migration phase metrics. */
async function scrape(): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((line) => /^kubevirt_vmi_migrations?_(in_|succeeded|failed)/.test(line));
}

let unregister: (() => void) | undefined;
afterEach(() => unregister?.());

describe('migration phase metrics', () => {
  it("counts the cache's migrations by phase at scrape time, as KubeVirt's collector groups them", async () => {
    let cache: Migration[] = [
      migration('new'),
      migration('waiting', 'Pending'),
      migration('waiting-too', 'Pending'),
      migration('placing', 'Scheduling'),
      ...(['Scheduled', 'PreparingTarget', 'TargetReady', 'Running'] as const).map((phase) => migration(phase.toLowerCase(), phase)),
      migration('moved', 'Succeeded'),
      migration('broke', 'Failed', 'other'),
    ];
    unregister = reportMigrationPhases({ list: () => cache });
    expect(await scrape()).toEqual([
      'kubevirt_vmi_migrations_in_unset_phase 1',
      'kubevirt_vmi_migrations_in_pending_phase 2',
      'kubevirt_vmi_migrations_in_scheduling_phase 1',
      'kubevirt_vmi_migrations_in_running_phase 4',
      'kubevirt_vmi_migration_succeeded{vmi="vmi-moved",vmim="moved",namespace="ns"} 1',
      'kubevirt_vmi_migration_failed{vmi="vmi-broke",vmim="broke",namespace="other"} 1',
    ]);
    // The cache changed: the next scrape says so, and a deleted migration's line is gone.
    cache = [migration('placing', 'Succeeded')];
    expect(await scrape()).toEqual([
      'kubevirt_vmi_migrations_in_unset_phase 0',
      'kubevirt_vmi_migrations_in_pending_phase 0',
      'kubevirt_vmi_migrations_in_scheduling_phase 0',
      'kubevirt_vmi_migrations_in_running_phase 0',
      'kubevirt_vmi_migration_succeeded{vmi="vmi-placing",vmim="placing",namespace="ns"} 1',
    ]);
  });

  it('counts nothing once the reporting replica stops leading (a sum over replicas counts each migration once)', async () => {
    unregister = reportMigrationPhases({ list: () => [migration('m', 'Running'), migration('n', 'Failed')] });
    expect(await scrape()).toContain('kubevirt_vmi_migrations_in_running_phase 1');
    unregister();
    expect(await scrape()).toEqual([
      'kubevirt_vmi_migrations_in_unset_phase 0',
      'kubevirt_vmi_migrations_in_pending_phase 0',
      'kubevirt_vmi_migrations_in_scheduling_phase 0',
      'kubevirt_vmi_migrations_in_running_phase 0',
    ]);
  });
});
