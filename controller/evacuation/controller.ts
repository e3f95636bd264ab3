// The evacuation controller (KubeVirt's virt-controller drain/evacuation): a VMI that a drain marked
// to leave its node (status.evacuationNodeName, set by the api-server's eviction webhook while it
// refuses the eviction) gets a VirtualMachineInstanceMigration, generateName kubevirt-evacuation-,
// annotated kubevirt.io/evacuationMigration with the node, priority system-critical, as KubeVirt
// creates it. The migration controller takes it from there (and holds it Pending under the
// cluster's parallel-migration limits); when it succeeds the VMI moves to the target, the VMI
// controller removes the mark and the source pod, and the drain's next eviction finds the pod gone.
// Keyed by VMI; level-triggered: each pass reads the VMI and its migrations from the caches and
// creates a migration only when none is in flight. This controller writes no status.
import type { KubeClient, ResourceClient } from '../../runtime/kube.js';
import { objectKey } from '../../runtime/kube.js';
import type { ReconcileContext, ReconcileResult } from '../../runtime/controller.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { ControllerExpectations } from '../../runtime/expectations.js';
import type { Informer } from '../../runtime/informer.js';
import { ownedBy } from '../../runtime/informer.js';
import { EVACUATION_MIGRATION_ANNOTATION, EVACUATION_MIGRATION_PREFIX } from '../../runtime/evacuation.js';
import { KUBEVIRT_API_VERSION } from '../../runtime/api/index.js';
import type { KubeVirtCR, VirtualMachineInstance } from '../api.js';
import type { Pod } from '../vmi/controller.js';
import { isPodDown } from '../vmi/status.js';
import { migrationResource } from '../migration/controller.js';
import type { Migration } from '../migration/target-pod.js';
import { decideEvacuation } from './decide.js';

const FIELD_MANAGER = 'kubevm-controller';

export interface EvacuationControllerDeps {
  client: KubeClient;
  vmis: Informer<VirtualMachineInstance>;
  migrations: Informer<Migration>;
  /** Launcher pods, with the ownerUid index. */
  pods: Informer<Pod>;
  kubevirts: Informer<KubeVirtCR>;
  /** Evacuation migrations created per VMI key, lowered by the migration informer (observeEvacuationMigrations). */
  expectations: ControllerExpectations;
  events: EventRecorder;
  now?: () => Date;
}

/** The migration a drain of `node` asks for: KubeVirt's GenerateNewMigration. */
export function renderEvacuationMigration(vmi: VirtualMachineInstance, node: string): Migration {
  return {
    apiVersion: KUBEVIRT_API_VERSION,
    kind: 'VirtualMachineInstanceMigration',
    metadata: { generateName: EVACUATION_MIGRATION_PREFIX, namespace: vmi.metadata?.namespace ?? '', annotations: { [EVACUATION_MIGRATION_ANNOTATION]: node } },
    spec: { vmiName: vmi.metadata?.name ?? '', priority: 'system-critical' },
  };
}

/** The VMI key a migration is for. */
const vmiKeyOf = (migration: Migration): string => `${migration.metadata?.namespace ?? ''}/${migration.spec.vmiName}`;

export class EvacuationController {
  private readonly migrationClient: ResourceClient<Migration>;
  private readonly now: () => Date;

  constructor(private readonly deps: EvacuationControllerDeps) {
    this.migrationClient = deps.client.resource<Migration>(migrationResource);
    this.now = deps.now ?? (() => new Date());
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const vmi = this.deps.vmis.get(key);
    if (!vmi) {
      this.deps.expectations.delete(key);
      return;
    }
    // A migration created but not yet in the cache must not be created twice (its name is generated).
    if (!this.deps.expectations.satisfied(key)) return;
    const migrations = this.deps.migrations.list().filter((m) => vmiKeyOf(m) === key);
    const livePods = this.deps.pods.byIndex('ownerUid', ownedBy(vmi)).filter((p) => !isPodDown(p)).length;
    const clusterDefault = this.deps.kubevirts.list()[0]?.spec?.configuration?.evictionStrategy;
    const decision = decideEvacuation({ vmi, clusterDefault, migrations, livePods, now: this.now() });
    if (decision.action === 'wait') {
      ctx.log.debug({ why: decision.why }, 'evacuation waits');
      return decision.requeueAfterMs !== undefined ? { requeueAfter: decision.requeueAfterMs } : undefined;
    }
    if (decision.action === 'nothing') return;
    this.deps.expectations.expectCreations(key, 1);
    try {
      const created = await this.migrationClient.create(renderEvacuationMigration(vmi, decision.sourceNode), { fieldManager: FIELD_MANAGER, signal: ctx.signal });
      this.deps.events.record(vmi, 'Normal', 'SuccessfulCreate', `Created Migration ${created.metadata?.name ?? ''} to evacuate node ${decision.sourceNode}`);
      ctx.log.info({ migration: created.metadata?.name, node: decision.sourceNode }, 'evacuation migration created');
    } catch (err) {
      this.deps.expectations.creationObserved(key);
      this.deps.events.record(vmi, 'Warning', 'FailedCreate', `Error creating a Migration to evacuate node ${decision.sourceNode}: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  };
}

/** Feed evacuation migration creations into the expectations; register before the controller's own watch. */
export function observeEvacuationMigrations(migrations: Informer<Migration>, expectations: ControllerExpectations): () => void {
  return migrations.addEventHandler({
    onAdd: (migration) => {
      if (migration.metadata?.annotations?.[EVACUATION_MIGRATION_ANNOTATION] !== undefined) expectations.creationObserved(vmiKeyOf(migration));
    },
  });
}

/** Only marked VMIs concern this controller. */
export function markedVmi(vmi: VirtualMachineInstance): string[] {
  return vmi.status?.evacuationNodeName ? [objectKey(vmi)] : [];
}

/** A migration concerns its VMI (one ending lets the next evacuation go). */
export function vmiOfMigration(migration: Migration): string[] {
  return [vmiKeyOf(migration)];
}

/** A launcher pod concerns its VMI when that VMI is marked (a previous migration's pod going away). */
export function markedVmiOfPod(vmis: Informer<VirtualMachineInstance>): (pod: Pod) => string[] {
  return (pod) => {
    const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === 'VirtualMachineInstance');
    const key = owner ? `${pod.metadata?.namespace ?? ''}/${owner.name}` : undefined;
    return key && vmis.get(key)?.status?.evacuationNodeName ? [key] : [];
  };
}
