// Whether a VMI can be live-migrated, as KubeVirt's LiveMigratable condition says it: a disk that
// lives on the node and cannot be copied during the migration keeps the VMI where it is.
// containerDisk, emptyDisk, ephemeral overlays and cloud-init/configMap/secret disks are files in
// the launcher's own volumes and are copied with the migration; a PVC stays attached, so it must be
// shared (ReadWriteMany) for the target node to open it too.
import type { VirtualMachineInstance } from '../api.js';
import type { ConditionInput } from '../../runtime/conditions.js';

export const LIVE_MIGRATABLE = 'LiveMigratable';
/** KubeVirt's reason when a disk keeps the VMI on its node. */
export const DISKS_NOT_LIVE_MIGRATABLE = 'DisksNotLiveMigratable';

/** A claim's access modes by claim name; undefined when the claim was not found. */
export type ClaimAccessModes = (claimName: string) => readonly string[] | undefined;

export function liveMigratableCondition(vmi: VirtualMachineInstance, accessModes: ClaimAccessModes): ConditionInput {
  for (const volume of vmi.spec.volumes ?? []) {
    // A PVC used as the read-only base of an ephemeral disk is opened read-only on both nodes, and
    // the overlay is copied: KubeVirt migrates it when the claim is shared, so the same rule applies.
    const claimName = volume.persistentVolumeClaim?.claimName ?? volume.ephemeral?.persistentVolumeClaim?.claimName;
    if (claimName === undefined) continue;
    const modes = accessModes(claimName);
    if (modes === undefined) {
      return notMigratable(`cannot migrate VMI: Unable to determine if PVC ${claimName} is shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`);
    }
    if (!modes.includes('ReadWriteMany')) {
      return notMigratable(`cannot migrate VMI: PVC ${claimName} is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`);
    }
  }
  return { type: LIVE_MIGRATABLE, status: 'True', reason: '', message: '' };
}

function notMigratable(message: string): ConditionInput {
  return { type: LIVE_MIGRATABLE, status: 'False', reason: DISKS_NOT_LIVE_MIGRATABLE, message };
}
