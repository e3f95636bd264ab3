// The operator process's parts, wired: informers on KubeVirt CRs and on every kind the operator
// manages (label-selected, so it sees exactly its own objects: a deleted or edited one enqueues
// the CR and is restored within a reconcile), leader election (two replicas, one acts), and the
// KubeVirt controller while this replica leads.
import { Controller } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { KubeEventRecorder } from '../runtime/events.js';
import { Informer } from '../runtime/informer.js';
import type { RunnableInformer } from '../runtime/informer.js';
import type { KubeClient, KubeObject } from '../runtime/kube.js';
import { LeaderElector } from '../runtime/leader-election.js';
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
  private readonly informers: RunnableInformer[];
  private readonly elector: LeaderElector | undefined;
  private readonly events: EventRecorder;
  private controller: Controller | undefined;
  private termChange: Promise<void> = Promise.resolve();
  private readonly stopController = new AbortController();

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
    this.informers = [this.kubevirts, ...Object.values(this.managed)];
    this.events = new KubeEventRecorder(client, 'virt-operator', config.identity, log);
    if (config.leaderElection) {
      this.elector = new LeaderElector({
        client,
        namespace: config.namespace,
        leaseName: config.leaseName,
        identity: config.identity,
        component: 'virt_operator',
        log,
        // Unset timings take the elector's defaults.
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.renewDeadlineMs,
        retryPeriodMs: config.retryPeriodMs,
        onStartedLeading: (signal) => this.lead(signal),
      });
    }
  }

  start(): void {
    for (const informer of this.informers) informer.start();
    if (this.elector) this.elector.start();
    else void this.lead(this.stopController.signal);
  }

  hasSynced(): boolean {
    return this.informers.every((informer) => informer.hasSynced());
  }

  isLeader(): boolean {
    return this.controller !== undefined;
  }

  /** Reconcile every KubeVirt CR again, as a periodic resync does (for tests: a second pass must write nothing). */
  resync(): void {
    for (const key of this.kubevirts.keys()) this.controller?.enqueue(key);
  }

  /** Idle: no keys queued or in flight (for tests). */
  idle(): boolean {
    return !this.controller || (this.controller.queue.len() === 0 && this.controller.queue.inFlight() === 0);
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.endTerm();
    await this.elector?.stop();
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }

  private async lead(signal: AbortSignal): Promise<void> {
    await this.termChange;
    const reconciler = new KubeVirtReconciler({ client: this.client, kubevirts: this.kubevirts, managed: this.managed, defaults: this.config.defaults, events: this.events });
    // Any managed object's change concerns the installation as a whole: the CR(s) of this namespace.
    const allKubeVirts = (): string[] => this.kubevirts.keys();
    let controller = new Controller({ name: 'virt-operator', kind: 'KubeVirt', workers: 1, log: this.log, reconcile: reconciler.reconcile }).watch(this.kubevirts);
    for (const informer of Object.values(this.managed)) controller = controller.watch(informer, allKubeVirts);
    this.controller = controller;
    this.log.info({ identity: this.config.identity }, 'leading: starting the KubeVirt controller');
    signal.addEventListener('abort', () => void this.endTerm(), { once: true });
    await controller.start(signal);
  }

  private endTerm(): Promise<void> {
    const controller = this.controller;
    if (!controller) return this.termChange;
    this.controller = undefined;
    this.termChange = (async () => {
      await controller.stop({ deadlineMs: 5_000 });
      this.log.info('stopped leading: KubeVirt controller stopped');
    })();
    return this.termChange;
  }
}
