// The controller process's parts, wired: shared informers (they run on every replica, so a new
// leader starts with a warm cache), and, only while this replica leads, the VM, VMI and migration
// controllers with fresh expectations. Leadership lost means the controllers stop at once; the next leader
// converges from the cache: deterministic names turn any repeated create into AlreadyExists.
import {
  KUBEVIRT_API_VERSION,
  VirtualMachineClusterInstancetypeNames,
  VirtualMachineClusterPreferenceNames,
  VirtualMachineInstancetypeNames,
  VirtualMachineInstanceMigrationSchema,
  VirtualMachineInstanceSchema,
  VirtualMachinePreferenceNames,
  VirtualMachineSchema,
  schemaValidator,
} from '../runtime/api/index.js';
import type { ResourceNames } from '../runtime/api/index.js';
import { Controller, controllerOwnerKey } from '../runtime/controller.js';
import { ControllerExpectations } from '../runtime/expectations.js';
import { Informer, ownerUidIndex } from '../runtime/informer.js';
import type { KubeClient, ResourceDescriptor } from '../runtime/kube.js';
import { coreResources } from '../runtime/kube.js';
import { Leadership } from '../runtime/leadership.js';
import type { LeaderTerm } from '../runtime/leadership.js';
import type { Logger } from '../runtime/logging.js';
import type { KubeVirtCR, VirtualMachine, VirtualMachineInstance } from './api.js';
import type { EventRecorder } from '../runtime/events.js';
import { KubeEventRecorder } from '../runtime/events.js';
import { RevisionStore } from './vm/revisions.js';
import type { SnapshotObject, SourceInformers } from './vm/revisions.js';
import { VMController, observeVMIs, vmResource } from './vm/controller.js';
import type { LauncherPodConfig } from './vmi/launcher-pod.js';
import { LAUNCHER_LABEL, LAUNCHER_LABEL_VALUE } from './vmi/launcher-pod.js';
import { VMIController, observeLauncherPods, vmiResource } from './vmi/controller.js';
import type { Pod } from './vmi/controller.js';
import { MigrationController, migrationOfTargetPod, migrationResource, migrationsOfVmi, observeTargetPods, pendingMigrations, pendingMigrationsWhenOneMoves } from './migration/controller.js';
import type { Migration } from './migration/target-pod.js';
import { migrationUidIndex } from './migration/target-pod.js';
import { reportMigrationPhases } from './migration/metrics.js';
import { EvacuationController, markedVmi, markedVmiOfPod, observeEvacuationMigrations, vmiOfMigration } from './evacuation/controller.js';

export interface ControllerConfig {
  launcherImage: string;
  launcherImagePullPolicy: 'Always' | 'Never' | 'IfNotPresent';
  launcherCommand?: string[];
  /** Forces emulation on or off; undefined follows the KubeVirt CR's developerConfiguration.useEmulation. */
  useEmulation?: boolean;
  memoryOverhead?: string;
  /** How containerDisk/kernelBoot images reach the launcher; see LauncherPodConfig. */
  imageSourceMode?: 'init-copy' | 'image-volume';
  copierPath?: string;
  /** Where the leader election Lease lives. */
  namespace: string;
  leaseName: string;
  /** false: lead unconditionally (a single replica, or tests). */
  leaderElection: boolean;
  identity: string;
  vmWorkers: number;
  vmiWorkers: number;
  /** Workers of the migration controller (default 2: migrations are few, and each pass is short). */
  migrationWorkers?: number;
  /** Watch one namespace only (tests); all namespaces when unset. */
  watchNamespace?: string;
  /** Informer full re-list period. */
  resyncPeriodMs?: number;
  /** Every VM and VMI is reconciled again this often, with jitter (controller-runtime's SyncPeriod; default 10 min). */
  syncPeriodMs?: number;
  /** Leader election timings (client-go's defaults when unset). */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export const kubevirtResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true };

function descriptorOf(names: ResourceNames): ResourceDescriptor {
  return { group: names.group, version: names.version, resource: names.plural, kind: names.kind, namespaced: names.scope === 'Namespaced' };
}

export class ControllerManager {
  readonly vms: Informer<VirtualMachine>;
  readonly vmis: Informer<VirtualMachineInstance>;
  readonly pods: Informer<Pod>;
  readonly kubevirts: Informer<KubeVirtCR>;
  readonly migrations: Informer<Migration>;
  readonly sources: SourceInformers;
  private readonly leadership: Leadership<LeaderTerm>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    private readonly config: ControllerConfig,
    private readonly log: Logger,
  ) {
    const common = { client, log, ...(config.resyncPeriodMs !== undefined ? { resyncPeriodMs: config.resyncPeriodMs } : {}) };
    const scoped = { ...common, ...(config.watchNamespace ? { namespace: config.watchNamespace } : {}) };
    // The roots are validated against their zod schemas before they are reconciled (ADR 0001).
    this.vms = new Informer<VirtualMachine>({ ...scoped, descriptor: vmResource, validate: schemaValidator(VirtualMachineSchema, 'VirtualMachine') });
    this.vmis = new Informer<VirtualMachineInstance>({
      ...scoped,
      descriptor: vmiResource,
      validate: schemaValidator(VirtualMachineInstanceSchema, 'VirtualMachineInstance'),
    });
    this.pods = new Informer<Pod>({
      ...scoped,
      descriptor: coreResources.pods,
      labelSelector: `${LAUNCHER_LABEL}=${LAUNCHER_LABEL_VALUE}`,
      indexers: { ownerUid: ownerUidIndex, migrationUid: migrationUidIndex },
    });
    this.kubevirts = new Informer<KubeVirtCR>({ ...scoped, descriptor: kubevirtResource });
    this.migrations = new Informer<Migration>({
      ...scoped,
      descriptor: migrationResource,
      validate: schemaValidator(VirtualMachineInstanceMigrationSchema, 'VirtualMachineInstanceMigration'),
    });
    this.sources = {};
    for (const names of [VirtualMachineInstancetypeNames, VirtualMachineClusterInstancetypeNames, VirtualMachinePreferenceNames, VirtualMachineClusterPreferenceNames]) {
      const descriptor = descriptorOf(names);
      this.sources[names.kind] = new Informer<SnapshotObject>({ ...(descriptor.namespaced ? scoped : common), descriptor });
    }
    this.events = new KubeEventRecorder(client, 'virt-controller', config.identity, log);
    this.leadership = new Leadership({
      log,
      identity: config.identity,
      informers: [this.vms, this.vmis, this.pods, this.kubevirts, this.migrations, ...Object.values(this.sources).filter((informer) => informer !== undefined)],
      election: config.leaderElection
        ? {
            client,
            namespace: config.namespace,
            leaseName: config.leaseName,
            component: 'virt_controller',
            // Unset timings take the elector's defaults.
            leaseDurationMs: config.leaseDurationMs,
            renewDeadlineMs: config.renewDeadlineMs,
            retryPeriodMs: config.retryPeriodMs,
          }
        : undefined,
      newTerm: () => this.newTerm(),
      describe: 'the VM, VMI, migration and evacuation controllers',
    });
  }

  /** The launcher settings now: emulation and the image source mode from the config, else from the KubeVirt CR. */
  launcherConfig(): LauncherPodConfig {
    // The cluster-wide settings live in the KubeVirt CR (one per cluster, as KubeVirt has it).
    const kubevirt = this.kubevirts.list().find((cr) => cr.apiVersion === undefined || cr.apiVersion === KUBEVIRT_API_VERSION);
    const developer = kubevirt?.spec?.configuration?.developerConfiguration;
    const useEmulation = this.config.useEmulation ?? developer?.useEmulation ?? false;
    return {
      launcherImage: this.config.launcherImage,
      launcherImagePullPolicy: this.config.launcherImagePullPolicy,
      useEmulation,
      ...(this.config.launcherCommand ? { launcherCommand: this.config.launcherCommand } : {}),
      ...(this.config.memoryOverhead ? { memoryOverhead: this.config.memoryOverhead } : {}),
      ...imageSourceMode(this.config.imageSourceMode, developer?.featureGates),
      ...(this.config.copierPath ? { copierPath: this.config.copierPath } : {}),
      ...(developer?.nodeSelectors ? { nodeSelectors: developer.nodeSelectors } : {}),
      ...(developer?.memoryOvercommit !== undefined ? { memoryOvercommitPercent: developer.memoryOvercommit } : {}),
    };
  }

  start(): void {
    this.leadership.start();
  }

  hasSynced(): boolean {
    return this.leadership.hasSynced();
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  /** The holder of the Lease as this replica last read it ('' before the first read); itself without leader election. */
  observedLeader(): string {
    return this.leadership.observedLeader();
  }

  /** Reconcile every VM and VMI again now (what the periodic resync does), e.g. to prove a no-op pass writes nothing. */
  resyncAll(): void {
    for (const controller of this.leadership.term()?.controllers ?? []) controller.resync();
  }

  /** Periodic and explicit resyncs of this term's controllers, for tests. */
  resyncs(): number {
    return (this.leadership.term()?.controllers ?? []).reduce((sum, controller) => sum + controller.resyncs(), 0);
  }

  /** Idle: no keys queued or in flight (for tests). */
  idle(): boolean {
    return this.leadership.idle();
  }

  stop(): Promise<void> {
    return this.leadership.stop();
  }

  /** A leadership term's controllers, with fresh expectations. */
  private newTerm(): LeaderTerm {
    const expectationsVM = new ControllerExpectations();
    const expectationsVMI = new ControllerExpectations();
    const revisions = new RevisionStore(this.client, this.sources);
    const vmController = new VMController({ client: this.client, vms: this.vms, vmis: this.vmis, expectations: expectationsVM, revisions, events: this.events });
    const vmiController = new VMIController({
      client: this.client,
      vmis: this.vmis,
      pods: this.pods,
      expectations: expectationsVMI,
      events: this.events,
      launcherConfig: () => this.launcherConfig(),
    });
    const expectationsMigration = new ControllerExpectations();
    const migrationController = new MigrationController({
      client: this.client,
      migrations: this.migrations,
      vmis: this.vmis,
      pods: this.pods,
      kubevirts: this.kubevirts,
      expectations: expectationsMigration,
      events: this.events,
      launcherConfig: () => this.launcherConfig(),
    });
    const expectationsEvacuation = new ControllerExpectations();
    const evacuationController = new EvacuationController({
      client: this.client,
      vmis: this.vmis,
      migrations: this.migrations,
      pods: this.pods,
      kubevirts: this.kubevirts,
      expectations: expectationsEvacuation,
      events: this.events,
    });
    // Expectations are lowered before the controllers' own handlers enqueue the key.
    const unregister = [
      observeVMIs(this.vmis, expectationsVM),
      observeLauncherPods(this.pods, expectationsVMI),
      observeTargetPods(this.pods, expectationsMigration),
      observeEvacuationMigrations(this.migrations, expectationsEvacuation),
    ];
    // The leader alone reports the migration phase counts, so a sum over replicas counts each once.
    unregister.push(reportMigrationPhases(this.migrations));
    const sync = this.config.syncPeriodMs !== undefined ? { syncPeriodMs: this.config.syncPeriodMs } : {};
    const vm = new Controller({ name: 'virt-controller-vm', kind: 'VirtualMachine', workers: this.config.vmWorkers, log: this.log, events: this.events, reconcile: vmController.reconcile, ...sync })
      .watch(this.vms)
      .watch(this.vmis, controllerOwnerKey('VirtualMachine'));
    const vmi = new Controller({ name: 'virt-controller-vmi', kind: 'VirtualMachineInstance', workers: this.config.vmiWorkers, log: this.log, events: this.events, reconcile: vmiController.reconcile, ...sync })
      .watch(this.vmis)
      .watch(this.pods, controllerOwnerKey('VirtualMachineInstance'));
    const migration = new Controller({
      name: 'virt-controller-migration',
      kind: 'VirtualMachineInstanceMigration',
      workers: this.config.migrationWorkers ?? 2,
      log: this.log,
      events: this.events,
      reconcile: migrationController.reconcile,
      ...sync,
    })
      .watch(this.migrations)
      .watch(this.migrations, pendingMigrationsWhenOneMoves(this.migrations))
      .watch(this.kubevirts, pendingMigrations(this.migrations))
      .watch(this.pods, migrationOfTargetPod)
      .watch(this.vmis, migrationsOfVmi(this.migrations));
    // Drains are rare: one worker; only VMIs a drain marked are its keys.
    const evacuation = new Controller({ name: 'virt-controller-evacuation', kind: 'VirtualMachineInstance', workers: 1, log: this.log, events: this.events, reconcile: evacuationController.reconcile, ...sync })
      .watch(this.vmis, markedVmi)
      .watch(this.migrations, vmiOfMigration)
      .watch(this.pods, markedVmiOfPod(this.vmis));
    return { controllers: [vm, vmi, migration, evacuation], unregister };
  }
}

/**
 * How containerDisk and kernelBoot images reach the launcher: the controller's setting, else
 * image volumes where the KubeVirt CR enables KubeVirt's `ImageVolume` feature gate (the cluster
 * must have Kubernetes' ImageVolume and a runtime that mounts images: containerd >= 2.1, CRI-O),
 * else the default (init-copy).
 */
export function imageSourceMode(configured: LauncherPodConfig['imageSourceMode'], featureGates: readonly string[] | undefined): Pick<LauncherPodConfig, 'imageSourceMode'> {
  if (configured) return { imageSourceMode: configured };
  return featureGates?.includes(IMAGE_VOLUME_FEATURE_GATE) ? { imageSourceMode: 'image-volume' } : {};
}
/** KubeVirt's feature gate for image volumes, in `spec.configuration.developerConfiguration.featureGates`. */
export const IMAGE_VOLUME_FEATURE_GATE = 'ImageVolume';
