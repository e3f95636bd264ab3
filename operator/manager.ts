// The operator process's parts, wired: informers on KubeVirt CRs and on every kind the operator
// manages (label-selected, so it sees exactly its own objects: a deleted or edited one enqueues
// the CR and is restored within a reconcile), leader election (two replicas, one acts), and the
// KubeVirt controller while this replica leads.
import { Controller } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { KubeEventRecorder } from '../runtime/events.js';
import { Informer } from '../runtime/informer.js';
import type { KubeClient, KubeObject } from '../runtime/kube.js';
import { Leadership } from '../runtime/leadership.js';
import type { Logger } from '../runtime/logging.js';
import { MANAGED_SELECTOR } from './install.js';
import type { ManagedKind } from './managed-kinds.js';
import { MANAGED_KINDS, NAMESPACE_SCOPED_WATCH } from './managed-kinds.js';
import type { KubeVirtCR, ManagedInformers, OperatorDefaults } from './reconciler.js';
import { KubeVirtReconciler, kubevirtResource } from './reconciler.js';

export interface OperatorConfig {
  /** The operator's namespace: where it looks for the KubeVirt CR and keeps its Lease. */
  namespace: string;
  defaults: OperatorDefaults;
  identity: string;
  leaderElection: boolean;
  leaseName: string;
  resyncPeriodMs?: number;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export class OperatorManager {
  readonly kubevirts: Informer<KubeVirtCR>;
  readonly managed: ManagedInformers;
  private readonly leadership: Leadership<{ controllers: [Controller] }>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    private readonly config: OperatorConfig,
    private readonly log: Logger,
  ) {
    const common = { client, log, ...(config.resyncPeriodMs !== undefined ? { resyncPeriodMs: config.resyncPeriodMs } : {}) };
    // KubeVirt's operator acts on the CR in its own namespace only.
    this.kubevirts = new Informer<KubeVirtCR>({ ...common, descriptor: kubevirtResource, namespace: config.namespace });
    const managed: Partial<ManagedInformers> = {};
    for (const kind of Object.keys(MANAGED_KINDS) as ManagedKind[]) {
      managed[kind] = new Informer<KubeObject>({
        ...common,
        descriptor: MANAGED_KINDS[kind],
        labelSelector: MANAGED_SELECTOR,
        ...(NAMESPACE_SCOPED_WATCH.has(kind) ? { namespace: config.namespace } : {}),
      });
    }
    this.managed = managed as ManagedInformers;
    this.events = new KubeEventRecorder(client, 'virt-operator', config.identity, log);
    this.leadership = new Leadership({
      log,
      identity: config.identity,
      informers: [this.kubevirts, ...Object.values(this.managed)],
      election: config.leaderElection
        ? {
            client,
            namespace: config.namespace,
            leaseName: config.leaseName,
            component: 'virt_operator',
            // Unset timings take the elector's defaults.
            leaseDurationMs: config.leaseDurationMs,
            renewDeadlineMs: config.renewDeadlineMs,
            retryPeriodMs: config.retryPeriodMs,
          }
        : undefined,
      newTerm: () => ({ controllers: [this.newController()] }),
      describe: 'the KubeVirt controller',
    });
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

  /** Reconcile every KubeVirt CR again, as a periodic resync does (for tests: a second pass must write nothing). */
  resync(): void {
    const [controller] = this.leadership.term()?.controllers ?? [];
    for (const key of this.kubevirts.keys()) controller?.enqueue(key);
  }

  /** Idle: no keys queued or in flight (for tests). */
  idle(): boolean {
    return this.leadership.idle();
  }

  stop(): Promise<void> {
    return this.leadership.stop();
  }

  /** A leadership term's KubeVirt controller. */
  private newController(): Controller {
    const reconciler = new KubeVirtReconciler({ client: this.client, kubevirts: this.kubevirts, managed: this.managed, defaults: this.config.defaults, events: this.events });
    // Any managed object's change concerns the installation as a whole: the CR(s) of this namespace.
    const allKubeVirts = (): string[] => this.kubevirts.keys();
    let controller = new Controller({ name: 'virt-operator', kind: 'KubeVirt', workers: 1, log: this.log, reconcile: reconciler.reconcile }).watch(this.kubevirts);
    for (const informer of Object.values(this.managed)) controller = controller.watch(informer, allKubeVirts);
    return controller;
  }
}
