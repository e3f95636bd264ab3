// What a drain does to a VM, decided in one place for both sides (issue 14): the api-server's
// eviction webhook (api-server/admission/eviction.ts) marks a VMI to leave its node, the
// controller's evacuation controller (controller/evacuation/) migrates it. KubeVirt's
// pkg/util/migrations VMIEvictionStrategy and VMIMigratableOnEviction.
import type { EvictionStrategy, VirtualMachineInstance } from './api/index.js';

/** KubeVirt's annotation on a migration the evacuation controller created: the node being drained. */
export const EVACUATION_MIGRATION_ANNOTATION = 'kubevirt.io/evacuationMigration';
/** KubeVirt's generateName of those migrations. */
export const EVACUATION_MIGRATION_PREFIX = 'kubevirt-evacuation-';

type VmiLike = Pick<VirtualMachineInstance, 'spec' | 'status'>;

/** The VMI's own strategy, else the cluster's (the KubeVirt CR's spec.configuration.evictionStrategy; KubeVirt's default is None). */
export function effectiveEvictionStrategy(vmi: VmiLike, clusterDefault: EvictionStrategy | undefined): EvictionStrategy | undefined {
  return vmi.spec.evictionStrategy ?? clusterDefault;
}

/** The VMI's LiveMigratable condition is True. */
export function isLiveMigratable(vmi: VmiLike): boolean {
  return vmi.status?.conditions?.some((c) => c.type === 'LiveMigratable' && c.status === 'True') ?? false;
}

/**
 * Whether an eviction turns into a migration: LiveMigrate always (a VMI that cannot migrate then
 * blocks the drain), LiveMigrateIfPossible when the VMI can migrate. External blocks the drain and
 * leaves the VMI to another controller; None (and no strategy) lets the pod go, which stops the VM.
 */
export function migratesOnEviction(strategy: EvictionStrategy | undefined, vmi: VmiLike): boolean {
  if (strategy === 'LiveMigrate') return true;
  if (strategy === 'LiveMigrateIfPossible') return isLiveMigratable(vmi);
  return false;
}
