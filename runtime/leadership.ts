// A replicated process's controllers that run only while it leads (the controller's and the
// operator's): its informers run on every replica, so a new leader starts with a warm cache; each
// time the replica starts leading it builds a fresh term (controllers, expectations), and the term
// stops at once when leadership ends, before the Lease is given up on shutdown, so two leaders'
// controllers never overlap.
import type { Controller } from './controller.js';
import type { RunnableInformer } from './informer.js';
import { LeaderElector } from './leader-election.js';
import type { LeaderElectionOptions } from './leader-election.js';
import type { Logger } from './logging.js';

/** What one leadership term runs: its controllers, and what to undo when it ends. */
export interface LeaderTerm {
  controllers: Controller[];
  unregister?: Array<() => void>;
}

export interface LeadershipOptions<T extends LeaderTerm> {
  log: Logger;
  identity: string;
  informers: RunnableInformer[];
  /** The Lease this replica competes for; undefined leads unconditionally (a single replica, or tests). */
  election: Pick<LeaderElectionOptions, 'client' | 'namespace' | 'leaseName' | 'component' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'> | undefined;
  /** Builds a new term; called each time this replica starts leading. */
  newTerm: () => T;
  /** What a term runs, for the logs: "the KubeVirt controller". */
  describe: string;
}

/** How long a stopping term's controllers may finish their reconciles. */
const TERM_STOP_DEADLINE_MS = 5_000;

export class Leadership<T extends LeaderTerm> {
  private readonly elector: LeaderElector | undefined;
  private current: T | undefined;
  private termChange: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();

  constructor(private readonly options: LeadershipOptions<T>) {
    const { log, identity, election } = options;
    if (election) this.elector = new LeaderElector({ ...election, identity, log, onStartedLeading: (signal) => this.lead(signal) });
  }

  start(): void {
    for (const informer of this.options.informers) informer.start();
    if (this.elector) this.elector.start();
    else void this.lead(this.stopping.signal);
  }

  hasSynced(): boolean {
    return this.options.informers.every((informer) => informer.hasSynced());
  }

  /** The running term, while this replica leads. */
  term(): T | undefined {
    return this.current;
  }

  isLeader(): boolean {
    return this.current !== undefined;
  }

  /** The holder of the Lease as this replica last read it ('' before the first read); itself without leader election. */
  observedLeader(): string {
    return this.elector ? this.elector.observedLeader() : this.options.identity;
  }

  /** Idle: no key queued or in flight in the term's controllers, or no term (for tests). */
  idle(): boolean {
    return (this.current?.controllers ?? []).every((controller) => controller.queue.len() === 0 && controller.queue.inFlight() === 0);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    // Stop reconciling before giving up the Lease, so the next leader never overlaps with us.
    await this.endTerm();
    await this.elector?.stop();
    await Promise.all(this.options.informers.map((informer) => informer.stop()));
  }

  private async lead(signal: AbortSignal): Promise<void> {
    await this.termChange;
    const term = this.options.newTerm();
    this.current = term;
    this.options.log.info({ identity: this.options.identity }, `leading: starting ${this.options.describe}`);
    signal.addEventListener('abort', () => void this.endTerm(), { once: true });
    await Promise.all(term.controllers.map((controller) => controller.start(signal)));
  }

  private endTerm(): Promise<void> {
    const term = this.current;
    if (!term) return this.termChange;
    this.current = undefined;
    this.termChange = (async () => {
      for (const off of term.unregister ?? []) off();
      await Promise.all(term.controllers.map((controller) => controller.stop({ deadlineMs: TERM_STOP_DEADLINE_MS })));
      this.options.log.info(`stopped leading: ${this.options.describe} stopped`);
    })();
    return this.termChange;
  }
}
