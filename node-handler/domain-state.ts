// The node handler's second cache: what each launcher says its domain is doing, kept per VMI
// from the launcher's pushed events (never from polling). The VMI status is computed from this,
// as KubeVirt's virt-handler computes it from its domain informer.
import type { VirtualMachineInstanceGuestOSInfo, VirtualMachineInstanceNetworkInterface } from '../runtime/api/index.js';
import { canonicalJson } from '../runtime/json.js';

/** The domain's lifecycle as the handler needs it, whatever words the launcher uses. */
export type DomainPhase =
  /** The launcher waits to be told to start (the handler's start, KubeVirt's SyncVMI). */
  | 'Pending'
  /** QEMU is being prepared or started; the guest has not run yet. */
  | 'Starting'
  | 'Running'
  | 'Paused'
  /** A graceful shutdown is under way (ACPI sent, grace period running). */
  | 'ShuttingDown'
  /** QEMU exited after a shutdown: the guest powered off or a requested stop completed. */
  | 'Shutoff'
  /** QEMU exited unexpectedly, or the launcher could not start it. */
  | 'Failed';

export type Accelerator = 'kvm' | 'tcg';

export type PauseReason = 'User' | 'IOError' | 'Migration' | 'Other';

export interface DomainState {
  /** The launcher pod this state comes from (a key of the VMI's status.activePods). */
  podUid: string;
  phase: DomainPhase;
  /** Why the domain paused, when Paused. */
  pauseReason?: PauseReason;
  accelerator?: Accelerator;
  /** Why the launcher chose that accelerator, for the condition message. */
  acceleratorReason?: string;
  /** What the launcher's KVM probe found on this node, when it probed. */
  kvmProbe?: 'usable' | 'unusable';
  agentConnected: boolean;
  guestOSInfo?: VirtualMachineInstanceGuestOSInfo;
  interfaces?: VirtualMachineInstanceNetworkInterface[];
  /** The guest agent reports the guest's filesystems frozen (KubeVirt's status.fsFreezeStatus). */
  fsFrozen?: boolean;
  /** For Failed: which step failed and the last lines QEMU printed, for the user. */
  failure?: { reason: string; message: string };
  /** For Shutoff: whether the guest asked for it (poweroff) or the stop was forced after the grace period. */
  shutoffReason?: 'GuestShutdown' | 'Stopped' | 'Killed';
}

/** Per-VMI cache of launcher states, keyed by namespace/name. */
export class DomainStateCache {
  private readonly states = new Map<string, DomainState>();
  private readonly listeners = new Set<(key: string) => void>();

  get(key: string): DomainState | undefined {
    return this.states.get(key);
  }

  /** Merge an update; listeners hear about the key only when something actually changed. */
  update(key: string, change: Partial<DomainState> & Pick<DomainState, 'podUid'>): void {
    const previous = this.states.get(key);
    const base: DomainState = previous && previous.podUid === change.podUid ? previous : { podUid: change.podUid, phase: 'Starting', agentConnected: false };
    const next: DomainState = { ...base, ...change };
    if (previous && canonicalJson(previous) === canonicalJson(next)) return;
    this.states.set(key, next);
    this.notify(key);
  }

  delete(key: string): void {
    if (this.states.delete(key)) this.notify(key);
  }

  keys(): string[] {
    return [...this.states.keys()];
  }

  onChange(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(key: string): void {
    for (const listener of this.listeners) listener(key);
  }
}
