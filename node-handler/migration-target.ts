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
  migrations: Informer<MigrationObject>;
  vmis: ResourceClient<VirtualMachineInstance>;
  connections: LauncherConnections;
  log: Logger;
}

interface Prepared {
  vmiKey: string;
  migrationUid: string;
  stopExpecting: () => void;
}

export class MigrationTarget {
  /** Per migration key: the incoming launcher prepared and the receiver expecting its stream. */
  private readonly prepared = new Map<string, Prepared>();
  /** VMI keys whose launcher connection belongs to a migration here (the VMI is not on this node yet). */
  private readonly incoming = new Set<string>();

  constructor(private readonly options: MigrationTargetOptions) {}

  /** Whether this node holds `vmiKey`'s launcher connection as a migration target. */
  holds(vmiKey: string): boolean {
    return this.incoming.has(vmiKey);
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
    this.incoming.add(vmiKey);
    connections.ensure(vmiKey, podUid);
    const session = connections.session(vmiKey, podUid);
    if (!session?.launcher) return undefined;

    if (this.prepared.get(key)?.migrationUid !== migrationUid) {
      this.prepared.get(key)?.stopExpecting();
      const { stopExpecting } = await prepareIncoming(session.launcher, this.options.receiver, {
        migrationUid,
        podsDir: this.options.podsDir,
        runDir: nodeLauncherRunDir(this.options.podsDir, podUid),
        postCopy: state.migrationConfiguration?.allowPostCopy === true,
      });
      this.prepared.set(key, { vmiKey, migrationUid, stopExpecting });
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
    const prepared = this.prepared.get(key);
    if (!prepared) return;
    prepared.stopExpecting();
    this.prepared.delete(key);
    this.incoming.delete(prepared.vmiKey);
    if (!handedOver) this.options.connections.drop(prepared.vmiKey);
  }
}
