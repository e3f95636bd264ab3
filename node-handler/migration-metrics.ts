// KubeVirt's live-migration metrics (kubevirt_vmi_migration_*), per VMI, from the source launcher's
// migration progress (launcher protocol `migration` events and the `migrate` answer).
import { Gauge } from 'prom-client';
import type { MigrationProgress } from '../runtime/contracts/launcher-protocol.js';
import { registry } from '../runtime/metrics.js';

const labelNames = ['namespace', 'name'] as const;
const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers: [registry] });

export const migrationDataTotal = gauge('kubevirt_vmi_migration_data_total_bytes', 'The total guest OS data to be migrated to the new VM.');
export const migrationDataProcessed = gauge('kubevirt_vmi_migration_data_processed_bytes', 'The total guest OS data processed and migrated to the new VM.');
export const migrationDataRemaining = gauge('kubevirt_vmi_migration_data_remaining_bytes', 'The remaining guest OS data to be migrated to the new VM.');
export const migrationDirtyMemoryRate = gauge('kubevirt_vmi_migration_dirty_memory_rate_bytes', 'The rate of memory being dirtied in the guest, bytes per second.');
export const migrationMemoryTransferRate = gauge('kubevirt_vmi_migration_memory_transfer_rate_bytes', 'The rate at which memory is being transferred, bytes per second.');

export function recordMigrationProgress(vmi: { namespace: string; name: string }, progress: MigrationProgress): void {
  const labels = { namespace: vmi.namespace, name: vmi.name };
  migrationDataTotal.set(labels, progress.totalBytes);
  migrationDataProcessed.set(labels, progress.transferredBytes);
  migrationDataRemaining.set(labels, progress.remainingBytes);
  migrationDirtyMemoryRate.set(labels, progress.dirtyRateBytesPerSecond);
  migrationMemoryTransferRate.set(labels, progress.transferRateBytesPerSecond);
}
