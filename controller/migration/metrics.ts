// KubeVirt's migration phase metrics (virt-controller's migrationstats collector), computed when
// scraped from the controller's migration cache: how many migrations are in the unset, Pending,
// Scheduling and running phases (Scheduled, PreparingTarget, TargetReady and Running count as
// running, as KubeVirt's), and per ended migration a 1 in kubevirt_vmi_migration_succeeded or
// _failed, labelled vmi, vmim, namespace. Gauges, as KubeVirt's: a deleted migration's line goes.
import { Gauge } from 'prom-client';
import { registry } from '../../runtime/metrics.js';
import type { Migration } from './target-pod.js';

/** What the gauges are computed from: the migration informer. */
export interface MigrationSource {
  list(): Migration[];
}

let source: MigrationSource | undefined;

export interface MigrationPhaseCounts {
  unset: number;
  pending: number;
  scheduling: number;
  running: number;
  succeeded: Migration[];
  failed: Migration[];
}

export function countMigrationPhases(migrations: readonly Migration[]): MigrationPhaseCounts {
  const counts: MigrationPhaseCounts = { unset: 0, pending: 0, scheduling: 0, running: 0, succeeded: [], failed: [] };
  for (const migration of migrations) {
    switch (migration.status?.phase) {
      case undefined:
        counts.unset++;
        break;
      case 'Pending':
        counts.pending++;
        break;
      case 'Scheduling':
        counts.scheduling++;
        break;
      case 'Scheduled':
      case 'PreparingTarget':
      case 'TargetReady':
      case 'Running':
      case 'WaitingForSync':
      case 'Synchronizing':
        counts.running++;
        break;
      case 'Succeeded':
        counts.succeeded.push(migration);
        break;
      case 'Failed':
        counts.failed.push(migration);
        break;
    }
  }
  return counts;
}

const phaseGauge = (name: string, help: string, pick: (counts: MigrationPhaseCounts) => number): Gauge =>
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(source ? pick(countMigrationPhases(source.list())) : 0);
    },
  });

const endedGauge = (name: string, help: string, pick: (counts: MigrationPhaseCounts) => Migration[]): Gauge<'vmi' | 'vmim' | 'namespace'> =>
  new Gauge({
    name,
    help,
    labelNames: ['vmi', 'vmim', 'namespace'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (!source) return;
      for (const m of pick(countMigrationPhases(source.list()))) this.set({ vmi: m.spec.vmiName, vmim: m.metadata?.name ?? '', namespace: m.metadata?.namespace ?? '' }, 1);
    },
  });

export const migrationsInUnsetPhase = phaseGauge('kubevirt_vmi_migrations_in_unset_phase', "Number of current unset migrations. These are pending items the virt-controller hasn't processed yet from the queue.", (c) => c.unset);
export const migrationsInPendingPhase = phaseGauge('kubevirt_vmi_migrations_in_pending_phase', 'Number of current pending migrations.', (c) => c.pending);
export const migrationsInSchedulingPhase = phaseGauge('kubevirt_vmi_migrations_in_scheduling_phase', 'Number of current scheduling migrations.', (c) => c.scheduling);
export const migrationsInRunningPhase = phaseGauge('kubevirt_vmi_migrations_in_running_phase', 'Number of current running migrations.', (c) => c.running);
export const migrationSucceeded = endedGauge('kubevirt_vmi_migration_succeeded', 'Indicates if the VMI migration succeeded.', (c) => c.succeeded);
export const migrationFailed = endedGauge('kubevirt_vmi_migration_failed', 'Indicates if the VMI migration failed.', (c) => c.failed);

/** Report from this migration cache (the controller's); returns the unregister. */
export function reportMigrationPhases(migrations: MigrationSource): () => void {
  source = migrations;
  return () => {
    if (source === migrations) source = undefined;
  };
}
