// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and defaults
// (leaseDuration 15 s, renewDeadline 10 s, retryPeriod 2 s):
// - a candidate takes the Lease when it is free, released (empty holder) or expired;
// - expiry is judged by our own clock from when we last saw the record change, never by the
//   renewTime written by another machine (clock skew);
// - every write is a compare-and-swap on resourceVersion, so two candidates cannot both win;
// - the leader renews every retryPeriod; if it cannot renew within renewDeadline it stops leading
//   (before the lease can expire for the others, since renewDeadline < leaseDuration);
// - on shutdown the leader releases the Lease so a successor does not wait for it to expire.
import { hostname } from 'node:os';
import type { KubeClient, KubeObject, ResourceClient } from './kube.js';
import { coreResources, isAlreadyExists, isConflict } from './kube.js';
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';
import type { KubevirtComponentName } from './metrics.js';
import { leadingStatusGauge } from './metrics.js';
import { sleepUnlessAborted } from './sleep.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  /** The Lease's name, e.g. "kubevm-controller". */
  leaseName: string;
  /** Unique per candidate; the pod name (POD_NAME, else the hostname, which is the pod name in a pod). */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called when this candidate becomes leader; `signal` aborts when it stops leading. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when leadership ends (lost, or released on stop). */
  onStoppedLeading?: () => void | Promise<void>;
  /** Called when the observed leader changes (including to us). */
  onNewLeader?: (identity: string) => void;
  /** Which KubeVirt leading-status gauge to drive (kubevirt_<component>_leading_status). */
  component?: KubevirtComponentName;
  log?: Logger;
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}


function sameRecord(a: LeaseSpec | undefined, b: LeaseSpec | undefined): boolean {
  return (
    (a?.holderIdentity ?? '') === (b?.holderIdentity ?? '') &&
    (a?.renewTime ?? '') === (b?.renewTime ?? '') &&
    (a?.acquireTime ?? '') === (b?.acquireTime ?? '') &&
    (a?.leaseTransitions ?? 0) === (b?.leaseTransitions ?? 0) &&
    (a?.leaseDurationSeconds ?? 0) === (b?.leaseDurationSeconds ?? 0)
  );
}

/** Conflicts a release reads the Lease again after (another writer than us is not expected while we hold it). */
const RELEASE_ATTEMPTS = 3;

export class LeaderElector {
  readonly identity: string;
  private readonly options: LeaderElectionOptions;
  private readonly leases: ResourceClient<Lease>;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;

  private observedRecord: LeaseSpec | undefined;
  private observedTime = 0;
  private observedLease: Lease | undefined;
  private leading = false;
  private reportedLeader = '';
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
    this.identity = options.identity ?? process.env['POD_NAME'] ?? hostname();
    this.leases = options.client.resource<Lease>(coreResources.leases);
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadline must be shorter than leaseDuration');
    this.log = (options.log ?? silentLogger).child({ lease: `${options.namespace}/${options.leaseName}`, identity: this.identity });
    this.gaugeSet(0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder we last observed ('' when none). */
  observedLeader(): string {
    return this.observedRecord?.holderIdentity ?? '';
  }

  /** Campaign in the background: acquire, lead, and when leadership is lost, campaign again. */
  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) => this.log.error({ err }, 'leader election stopped on an unexpected error'));
  }

  /** Stop campaigning; if leading, stop leading and release the Lease. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const stopSignal = this.stopController.signal;
    while (!stopSignal.aborted) {
      const acquired = await this.acquire(stopSignal);
      if (!acquired) break;
      await this.lead(stopSignal);
    }
  }

  /** Try every retryPeriod (jittered) until the Lease is ours or we are stopped. */
  private async acquire(stopSignal: AbortSignal): Promise<boolean> {
    this.log.debug('campaigning for the lease');
    while (!stopSignal.aborted) {
      if (await this.tryAcquireOrRenew(stopSignal)) {
        this.log.info('acquired the lease');
        return true;
      }
      await sleepUnlessAborted(this.retryPeriodMs * (1 + Math.random() * 1.2), stopSignal);
    }
    return false;
  }

  private async lead(stopSignal: AbortSignal): Promise<void> {
    this.leading = true;
    this.gaugeSet(1);
    const leadership = new AbortController();
    const abortLeadership = (): void => leadership.abort();
    stopSignal.addEventListener('abort', abortLeadership, { once: true });
    Promise.resolve()
      .then(() => this.options.onStartedLeading(leadership.signal))
      .catch((err: unknown) => this.log.error({ err }, 'onStartedLeading failed'));

    let lastRenew = Date.now();
    while (!stopSignal.aborted) {
      await sleepUnlessAborted(this.retryPeriodMs, stopSignal);
      if (stopSignal.aborted) break;
      if (await this.tryAcquireOrRenew(stopSignal)) {
        lastRenew = Date.now();
        continue;
      }
      if (Date.now() - lastRenew >= this.renewDeadlineMs) {
        this.log.warn({ sinceLastRenewMs: Date.now() - lastRenew }, 'failed to renew the lease within the renew deadline; stopping leading');
        break;
      }
    }
    stopSignal.removeEventListener('abort', abortLeadership);
    this.leading = false;
    this.gaugeSet(0);
    leadership.abort();
    if (stopSignal.aborted) await this.release();
    try {
      await this.options.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading failed');
    }
  }

  /** One attempt, as client-go's tryAcquireOrRenew. */
  private async tryAcquireOrRenew(stopSignal: AbortSignal): Promise<boolean> {
    const now = Date.now();
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(this.renewDeadlineMs)]);
    const { namespace, leaseName } = this.options;
    const desired: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.round(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      const lease = await this.leases.find(leaseName, namespace, signal);
      if (!lease) {
        const created = await this.leases.create({ metadata: { name: leaseName, namespace }, spec: desired }, { signal });
        this.observe(created, now);
        return true;
      }
      const record = lease.spec ?? {};
      if (!sameRecord(record, this.observedRecord)) this.observe(lease, now);
      else this.observedLease = lease;
      const holder = record.holderIdentity ?? '';
      const heldByOther = holder !== '' && holder !== this.identity;
      if (heldByOther && this.observedTime + this.leaseDurationMs > now) return false;
      const weHeldIt = holder === this.identity;
      const spec: LeaseSpec = {
        ...desired,
        acquireTime: weHeldIt ? (record.acquireTime ?? desired.acquireTime) : desired.acquireTime,
        leaseTransitions: weHeldIt ? (record.leaseTransitions ?? 0) : (record.leaseTransitions ?? 0) + 1,
      };
      const updated = await this.leases.replace({ ...lease, spec }, { signal });
      this.observe(updated, now);
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) return false;
      if (!stopSignal.aborted) this.log.warn({ err }, 'lease request failed');
      return false;
    }
  }

  /**
   * Give the Lease up: an empty holder lets the next candidate take it at once. stop() may have cut
   * a renewal short after the API server applied it, so the Lease we last saw can be one version
   * behind: a conflict reads it again and retries, rather than leave the successor waiting for the
   * whole lease duration.
   */
  private async release(): Promise<void> {
    const { namespace, leaseName } = this.options;
    const signal = AbortSignal.timeout(this.renewDeadlineMs);
    let lease = this.observedLease;
    for (let attempt = 1; lease && (lease.spec?.holderIdentity ?? '') === this.identity; attempt++) {
      const now = microTime(Date.now());
      try {
        const released = await this.leases.replace(
          {
            ...lease,
            spec: { holderIdentity: null, leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec?.leaseTransitions ?? 0 },
          },
          { signal },
        );
        this.observe(released, Date.now());
        this.log.info('released the lease');
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= RELEASE_ATTEMPTS) {
          this.log.warn({ err }, 'could not release the lease; the next leader waits for it to expire');
          return;
        }
        lease = await this.leases.find(leaseName, namespace, signal).catch((error: unknown) => {
          this.log.warn({ err: error }, 'could not read the lease to release it; the next leader waits for it to expire');
          return undefined;
        });
      }
    }
  }

  private observe(lease: Lease, at: number): void {
    this.observedLease = lease;
    this.observedRecord = lease.spec ?? {};
    this.observedTime = at;
    const holder = this.observedRecord.holderIdentity ?? '';
    if (holder !== '' && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.log.info({ leader: holder }, 'new leader observed');
      try {
        this.options.onNewLeader?.(holder);
      } catch (err) {
        this.log.error({ err }, 'onNewLeader failed');
      }
    }
  }

  private gaugeSet(value: number): void {
    if (this.options.component) leadingStatusGauge(this.options.component).set(value);
  }
}
