// The target node handler's part of a migration (KubeVirt's virt-handler on the target): for a
// migration whose target pod runs on this node, start the target launcher as a migration target
// (QEMU -incoming), tell this node's MigrationReceiver to expect the migration's stream, and write
// this handler's address into the VMI's migrationState, which is what the source's handler waits
// for. One reconcile per migration (key namespace/name), level-triggered: it reads the migration
// from the informer and the VMI from the API server (the VMI is not on this node, so not in the
// node's VMI cache, until the migration hands it over).
import type { VirtualMachineInstanceMigrationState } from '../runtime/api/index.js';
import type { ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { nodeLauncherRunDir } from '../runtime/contracts/launcher-pod.js';
import { VMI_STATUS_FIELDS } from '../runtime/contracts/vmi-status.js';
import type { Informer } from '../runtime/informer.js';
import type { ResourceClient } from '../runtime/kube.js';
import { isNotFound } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import type { LauncherConnections } from './launcher-connections.js';
import type { MigrationReceiver } from './migration-channel.js';
import { prepareIncoming } from './migration-endpoints.js';
import type { MigrationObject } from './migration-source.js';
import type { VirtualMachineInstance } from './vmi-handler.js';
import { activePodOnNode, fieldManager } from './vmi-handler.js';

/** The migration phases in which the target pod runs and the target is (being) prepared. */
const PREPARING: ReadonlySet<string> = new Set(['PreparingTarget', 'TargetReady', 'Running']);
/** The target pod is ready but not yet in the VMI's activePods: look again soon. */
const WAIT_FOR_ACTIVE_POD_MS = 1000;

export interface MigrationTargetOptions {
  nodeName: string;
  /** This node handler's pod IP: where the source's handler reaches the receiver. */
  podIp: string;
  port: number;
  podsDir: string;
  receiver: MigrationReceiver;
  /** Only read: the migration as this node's informer last saw it. */
  migrations: Pick<Informer<MigrationObject>, 'get'>;
  vmis: ResourceClient<VirtualMachineInstance>;
  connections: LauncherConnections;
  log: Logger;
}

/**
 * What this node holds for one migration: the VMI's launcher connection from the first pass on,
 * and, once its launcher attached, the launcher waiting for that migration's stream.
 */
interface Held {
  vmiKey: string;
  prepared?: { migrationUid: string; stopExpecting: () => void };
}

export class MigrationTarget {
  /**
   * Per migration key, from the pass that first ensured the target launcher's connection until the
   * migration is over, whether or not that launcher ever attached: a migration that fails before
   * (its target pod never started) must still let go of the connection.
   */
  private readonly held = new Map<string, Held>();

  constructor(private readonly options: MigrationTargetOptions) {}

  /** Whether this node holds `vmiKey`'s launcher connection as a migration target (the VMI is not on this node yet). */
  holds(vmiKey: string): boolean {
    for (const held of this.held.values()) if (held.vmiKey === vmiKey) return true;
    return false;
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const migration = this.options.migrations.get(key);
    const phase = migration?.status?.phase ?? '';
    if (!migration || migration.status?.migrationState?.targetNode !== this.options.nodeName || migration.metadata?.deletionTimestamp || !PREPARING.has(phase)) {
      // Over (or never ours): a succeeded migration's VMI comes to this node's VMI controller,
      // which keeps the connection; any other ends it.
      this.release(key, phase === 'Succeeded');
      return;
    }
    const namespace = migration.metadata?.namespace ?? '';
    const vmi = await this.options.vmis.get(migration.spec.vmiName, namespace, ctx.signal).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (!vmi) return;
    const next = await this.prepare(key, migration, vmi, ctx.log);
    if (!next) return { requeueAfter: WAIT_FOR_ACTIVE_POD_MS };
    await patchStatusIfChanged(this.options.vmis, vmi, { ...(vmi.status ?? {}), migrationState: next }, {
      owned: VMI_STATUS_FIELDS['node-handler'],
      writer: 'the node handler (migration target)',
      fieldManager,
      signal: ctx.signal,
    });
  };

  /**
   * Makes the target launcher wait for `migration`'s stream and the receiver expect it (once per
   * migration), and returns the VMI's migrationState that tells the source where to send it;
   * undefined while the target pod is not among the VMI's active pods or its launcher not attached.
   */
  async prepare(key: string, migration: MigrationObject, vmi: VirtualMachineInstance, log: Logger): Promise<VirtualMachineInstanceMigrationState | undefined> {
    const { nodeName, connections } = this.options;
    const state = migration.status?.migrationState ?? {};
    const vmiKey = `${migration.metadata?.namespace ?? ''}/${migration.spec.vmiName}`;
    const podUid = activePodOnNode(vmi, nodeName);
    if (!podUid) return undefined;
    const migrationUid = migration.metadata?.uid ?? '';
    const held = this.held.get(key) ?? { vmiKey };
    this.held.set(key, held);
    connections.ensure(vmiKey, podUid);
    const session = connections.session(vmiKey, podUid);
    if (!session?.launcher) return undefined;

    if (held.prepared?.migrationUid !== migrationUid) {
      held.prepared?.stopExpecting();
      held.prepared = undefined;
      const { stopExpecting } = await prepareIncoming(session.launcher, this.options.receiver, {
        migrationUid,
        podsDir: this.options.podsDir,
        runDir: nodeLauncherRunDir(this.options.podsDir, podUid),
        postCopy: state.migrationConfiguration?.allowPostCopy === true,
      });
      held.prepared = { migrationUid, stopExpecting };
      log.info({ vmi: vmiKey, migrationUid, podUid }, 'the target launcher waits for the migration stream');
    }

    // The VMI's migrationState starts here: the source's handler migrates once it shows this address.
    const current = vmi.status?.migrationState;
    return {
      ...(current?.migrationUid === migrationUid ? current : {}),
      migrationUid,
      sourceNode: vmi.status?.nodeName ?? state.sourceNode ?? '',
      targetNode: nodeName,
      ...(state.sourcePod ? { sourcePod: state.sourcePod } : {}),
      ...(state.targetPod ? { targetPod: state.targetPod } : {}),
      targetNodeAddress: this.options.podIp,
      targetDirectMigrationNodePorts: { [String(this.options.port)]: 0 },
      targetNodeDomainDetected: true,
      ...(state.migrationPolicyName ? { migrationPolicyName: state.migrationPolicyName } : {}),
      ...(state.migrationConfiguration ? { migrationConfiguration: state.migrationConfiguration } : {}),
    };
  }

  /** Ends what this node holds for a migration (e.g. a test's or a shutdown's). */
  close(key: string): void {
    this.release(key, false);
  }

  private release(key: string, handedOver: boolean): void {
    const held = this.held.get(key);
    if (!held) return;
    held.prepared?.stopExpecting();
    this.held.delete(key);
    if (!handedOver) this.options.connections.drop(held.vmiKey);
  }
}
