// The node handler's VMI controller (KubeVirt's virt-handler VMI loop): for each VMI of this node,
// keep a session to its launcher open, forward the user's intents to it, and write the status the
// handler owns when, and only when, it changed. Level-triggered: every pass reads the cached VMI
// and the cached launcher state and converges; no pass depends on which event caused it.
import type { VirtualMachineInstance as ApiVirtualMachineInstance } from '../runtime/api/index.js';
import type { ReconcileContext, ReconcileFunction, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeObject, ResourceClient } from '../runtime/kube.js';
import { ApiError, isNotFound, objectKey } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import { OwnWrites } from '../runtime/own-writes.js';
import { VMI_STATUS_FIELDS, VMI_STATUS_FIELD_MANAGER } from '../runtime/contracts/vmi-status.js';
import type { DomainState, DomainStateCache } from './domain-state.js';
import { earlyHandoverStatus } from './early-handover.js';
import type { LauncherConnections, LauncherSession } from './launcher-connections.js';
import { computeVmiStatus, isHandledPhase } from './vmi-status.js';
import { pauseWish, resetRequestAnnotation, softRebootRequestAnnotation } from '../runtime/vmi-requests.js';
import type { MigrationSource } from './migration-source.js';
import { migratedAway, migrationInFlight } from './migration-source.js';

/** The API type, narrowed to what the runtime's clients and informers take (its metadata shape). */
export type VirtualMachineInstance = ApiVirtualMachineInstance & KubeObject;

// The request annotations are a contract with the API server: declared once in the runtime.
export { pauseRequestAnnotation, resetRequestAnnotation, softRebootRequestAnnotation } from '../runtime/vmi-requests.js';

/** KubeVirt's default terminationGracePeriodSeconds for a VMI. */
export const defaultGracePeriodSeconds = 30;

export const fieldManager = VMI_STATUS_FIELD_MANAGER['node-handler'];

/** The VMI's launcher pod on this node, from status.activePods (pod uid → node name). */
export function activePodOnNode(vmi: VirtualMachineInstance, nodeName: string): string | undefined {
  const entries = Object.entries(vmi.status?.activePods ?? {}).filter(([, node]) => node === nodeName);
  // During a migration a VMI has a pod on each of two nodes, never two on one.
  return entries[0]?.[0];
}

/**
 * The grace period a shutdown on deletion gets: the VMI's terminationGracePeriodSeconds, as
 * KubeVirt's virt-handler does. The deletion's own grace period cannot be used: for custom
 * resources the API server always records deletionGracePeriodSeconds 0.
 */
export function shutdownGracePeriod(vmi: VirtualMachineInstance): number {
  const spec = vmi.spec as { terminationGracePeriodSeconds?: number };
  return spec.terminationGracePeriodSeconds ?? defaultGracePeriodSeconds;
}

export type LauncherIntent = { kind: 'start' } | { kind: 'shutdown'; gracePeriodSeconds: number } | { kind: 'pause' } | { kind: 'unpause' } | { kind: 'softReboot' } | { kind: 'reset' };

/**
 * What the launcher should be told, given the VMI (the user's wishes) and the domain's state.
 * Pure; `sent` says whether this pod was already asked to start / shut down, since those are
 * actions whose effect (Starting, ShuttingDown) the domain shows only once the launcher has acted.
 */
export function launcherIntents(vmi: VirtualMachineInstance, domain: DomainState, sent: { start: boolean; shutdown: boolean }): LauncherIntent[] {
  // A launcher waits for the handler to start its domain (KubeVirt's SyncVMI), unless the VMI is
  // already going away.
  if (domain.phase === 'Pending') return vmi.metadata?.deletionTimestamp || sent.start ? [] : [{ kind: 'start' }];
  const shutdownSent = sent.shutdown;
  const active = domain.phase === 'Running' || domain.phase === 'Paused';
  if (!active) return [];
  if (vmi.metadata?.deletionTimestamp) {
    return shutdownSent ? [] : [{ kind: 'shutdown', gracePeriodSeconds: shutdownGracePeriod(vmi) }];
  }
  const annotations = vmi.metadata?.annotations ?? {};
  const intents: LauncherIntent[] = [];
  const wish = pauseWish(vmi);
  if (wish === 'paused' && domain.phase === 'Running') intents.push({ kind: 'pause' });
  // Only a pause the user asked for (or a start strategy's, once unpaused) is undone here; an
  // I/O-error pause needs the cause fixed.
  if (wish === 'running' && domain.phase === 'Paused' && (domain.pauseReason ?? 'User') === 'User') intents.push({ kind: 'unpause' });
  // A reset is a reset whatever the guest does, so it needs no running guest; a soft reboot does.
  if (annotations[resetRequestAnnotation] !== undefined) intents.push({ kind: 'reset' });
  else if (annotations[softRebootRequestAnnotation] !== undefined && domain.phase === 'Running') intents.push({ kind: 'softReboot' });
  return intents;
}

/** Where the handler reports transitions a user wants in `kubectl describe vmi` (core/v1 Events). */
export interface VmiEventRecorder {
  record(object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/** The Events a status change deserves, with KubeVirt's virt-handler reasons. Pure. */
export function statusTransitionEvents(before: VirtualMachineInstance['status'], after: VirtualMachineInstance['status']): { type: 'Normal' | 'Warning'; reason: string; message: string }[] {
  const events: { type: 'Normal' | 'Warning'; reason: string; message: string }[] = [];
  const paused = (status: VirtualMachineInstance['status']) => status?.conditions?.some((c) => c.type === 'Paused' && c.status === 'True') === true;
  if (before?.phase !== after?.phase) {
    if (after?.phase === 'Running') events.push({ type: 'Normal', reason: 'Started', message: 'VirtualMachineInstance started.' });
    if (after?.phase === 'Succeeded') events.push({ type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' });
    if (after?.phase === 'Failed') {
      const why = after.conditions?.find((c) => c.type === 'Synchronized' && c.status === 'False');
      events.push({ type: 'Warning', reason: 'SyncFailed', message: why?.message ?? 'The VirtualMachineInstance failed.' });
    }
  }
  if (!paused(before) && paused(after)) events.push({ type: 'Normal', reason: 'Paused', message: 'The VirtualMachineInstance was paused.' });
  if (paused(before) && !paused(after) && after?.phase === 'Running') events.push({ type: 'Normal', reason: 'Unpaused', message: 'The VirtualMachineInstance was unpaused.' });
  return events;
}

export interface VmiHandlerOptions {
  nodeName: string;
  /** The source's part of a migration: migrationState written with the rest of the handler's status. */
  migrationSource?: MigrationSource;
  /** Whether a migration to this node holds the VMI's launcher connection (the VMI is not here yet). */
  holdsIncoming?: (key: string) => boolean;
  events?: VmiEventRecorder;
  vmis: ResourceClient<VirtualMachineInstance>;
  informer: Informer<VirtualMachineInstance>;
  domains: DomainStateCache;
  connections: LauncherConnections;
}

/** The reconcile function of the handler's VMI controller. */
export function vmiHandlerReconcile(options: VmiHandlerOptions): ReconcileFunction {
  const { nodeName, vmis, informer, domains, connections } = options;
  /** Pods already asked to start / shut down (by uid); in memory: after a restart the domain shows it. */
  const startSent = new Set<string>();
  const shutdownSent = new Set<string>();
  /** A pass on a cache that does not show our last status write yet would compute from old facts. */
  const ownWrites = new OwnWrites();

  async function forward(vmi: VirtualMachineInstance, session: LauncherSession, intent: LauncherIntent, podUid: string, ctx: ReconcileContext): Promise<void> {
    ctx.log.info({ intent: intent.kind, podUid }, 'forwarding to the launcher');
    switch (intent.kind) {
      // Start and shutdown answer only when QEMU is up or gone: the reconcile does not wait; the
      // launcher's events report progress and failures (with the step and QEMU's last lines).
      case 'start':
        startSent.add(podUid);
        session.start().catch((error: unknown) => ctx.log.warn({ err: error, podUid }, 'launcher start failed'));
        return;
      case 'shutdown':
        shutdownSent.add(podUid);
        session.shutdown(intent.gracePeriodSeconds).catch((error: unknown) => {
          shutdownSent.delete(podUid);
          ctx.log.warn({ err: error, podUid }, 'launcher shutdown failed');
        });
        return;
      case 'pause':
        return session.pause();
      case 'unpause':
        return session.unpause();
      case 'softReboot':
        try {
          await session.softReboot();
        } catch (error) {
          // With ACPI off the launcher can only ask a guest agent; when none answers, trying again
          // cannot succeed until the user changes something: the request is dropped with a
          // Warning saying why, not retried forever. (The api-server refuses it up front when the
          // VMI shows no agent; this is the agent that vanished in between.)
          if (vmi.spec.domain.features?.acpi?.enabled !== false) throw error;
          const message = `soft reboot refused: ${error instanceof Error ? error.message : String(error)}`;
          ctx.log.warn({ podUid, err: message }, 'dropping a soft reboot request that cannot succeed');
          options.events?.record(vmi, 'Warning', 'SoftRebootFailed', message);
        }
        return consumeRequest(vmi, softRebootRequestAnnotation);
      case 'reset':
        await session.reset();
        // A reset reboots the guest too: a soft reboot asked before it is done by it.
        await consumeRequest(vmi, softRebootRequestAnnotation);
        return consumeRequest(vmi, resetRequestAnnotation);
    }
  }

  /**
   * Removes a request annotation, guarded by its value so a newer request is not lost. The write is
   * recorded like a status write: a pass on a cache that still shows the request would do a soft
   * reboot or a reset a second time.
   */
  async function consumeRequest(vmi: VirtualMachineInstance, annotation: string): Promise<void> {
    const value = vmi.metadata?.annotations?.[annotation];
    if (value === undefined) return;
    const path = `/metadata/annotations/${annotation.replace('/', '~1')}`;
    try {
      const patched = await vmis.patch(vmi.metadata?.name ?? '', vmi.metadata?.namespace, [{ op: 'test', path, value }, { op: 'remove', path }], 'json', { fieldManager });
      ownWrites.record(objectKey(vmi), patched.metadata?.resourceVersion);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * A VMI still Scheduling whose launcher pod is on this node: attach to the launcher now, and once
   * its guest runs, write Running (early-handover.ts). Nothing is forwarded to the launcher yet: it
   * starts its guest itself (launcher-pod.ts, autostart); the user's intents wait for Running.
   */
  async function earlyHandover(key: string, vmi: VirtualMachineInstance, podUid: string, ctx: ReconcileContext): Promise<void> {
    connections.ensure(key, podUid);
    const status = earlyHandoverStatus(vmi, nodeName, domainOf(key, podUid));
    if (!status) return;
    await writeStatus(key, vmi, status, ctx, { handover: 'early' });
  }

  /** The launcher's last state for the VMI, if it comes from `podUid` (not an earlier pod of the VMI). */
  function domainOf(key: string, podUid: string): DomainState | undefined {
    const cached = domains.get(key);
    return cached?.podUid === podUid ? cached : undefined;
  }

  /** Writes the handler's part of the status if it changed, with its events; logged with `fields`. */
  async function writeStatus(key: string, vmi: VirtualMachineInstance, status: NonNullable<VirtualMachineInstance['status']>, ctx: ReconcileContext, fields: Record<string, string> = {}): Promise<void> {
    const writeStarted = Date.now();
    const { written, object } = await patchStatusIfChanged(vmis, vmi, status, {
      owned: VMI_STATUS_FIELDS['node-handler'],
      writer: 'the node handler',
      fieldManager,
      signal: ctx.signal,
    });
    if (written) {
      ownWrites.record(key, object.metadata?.resourceVersion);
      ctx.log.info({ phase: status.phase, ...fields, writeMs: Date.now() - writeStarted }, 'status updated');
      for (const event of statusTransitionEvents(vmi.status, status)) options.events?.record(vmi, event.type, event.reason, event.message);
    }
  }

  return async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const cached = informer.get(key);
    const incoming = options.holdsIncoming?.(key) === true;
    if (!cached) {
      if (!incoming) connections.drop(key);
      ownWrites.forget(key);
      return;
    }
    if (ownWrites.cacheIsBehind(key, cached.metadata?.resourceVersion)) {
      // The informer's event for our write enqueues the key again.
      ctx.log.debug('waiting for the cache to show our last status write');
      return;
    }
    const podUid = activePodOnNode(cached, nodeName);
    if (podUid && cached.status?.phase === 'Scheduling') return earlyHandover(key, cached, podUid, ctx);
    if (!podUid || !isHandledPhase(cached.status?.phase)) {
      // Not (or no longer) ours to drive: final phase, not yet scheduled, or moved away.
      if (connections.keys().includes(key) && !incoming) {
        ctx.log.debug({ phase: cached.status?.phase }, 'detaching from launcher');
        connections.drop(key);
      }
      return;
    }
    connections.ensure(key, podUid);
    const session = connections.session(key, podUid);
    const domain = domainOf(key, podUid);
    const vmi = structuredClone<VirtualMachineInstance>(cached);

    // While the guest migrates away, and once it has, this launcher is told nothing: an unpause of
    // the source stopped for the switch-over would corrupt the guest's memory on the target, and
    // after a completed migration it would run the guest twice. The handler's own record counts
    // too: the VMI in the informer may not show the migration it started yet.
    const migrating = migrationInFlight(vmi, nodeName) || migratedAway(vmi, nodeName) || options.migrationSource?.migrating(key) === true;
    if (session && domain && !migrating) {
      for (const intent of launcherIntents(vmi, domain, { start: startSent.has(podUid), shutdown: shutdownSent.has(podUid) })) {
        await forward(vmi, session, intent, podUid, ctx);
      }
    }

    // The source's copy says nothing about the VMI while it migrates away (QEMU pauses it for the
    // switch-over: not the user's Paused, as KubeVirt shows none), nor once it runs on the target.
    const status = migrating ? structuredClone(vmi.status ?? {}) : computeVmiStatus(vmi, domain);
    if (options.migrationSource) {
      const migrationState = await options.migrationSource.migrationState(key, vmi, podUid, session);
      if (migrationState) status.migrationState = migrationState;
    }
    await writeStatus(key, vmi, status, ctx);
    if (domain && (domain.phase === 'Shutoff' || domain.phase === 'Failed')) {
      startSent.delete(podUid);
      shutdownSent.delete(podUid);
    }
  };
}

/**
 * The VMI watch of this node: field selector status.nodeName=<node>, which needs the CRD to
 * declare .status.nodeName in selectableFields. Against a CRD that does not (the API server
 * answers 400), watch all VMIs and let reconcile skip those without an active pod here — correct,
 * only costlier — and say so.
 */
export async function nodeVmiSelector(vmis: ResourceClient<VirtualMachineInstance>, nodeName: string, log: Logger): Promise<{ fieldSelector?: string }> {
  const fieldSelector = `status.nodeName=${nodeName}`;
  try {
    await vmis.list({ fieldSelector, limit: 1 });
    return { fieldSelector };
  } catch (error) {
    if (error instanceof ApiError && error.code === 400) {
      log.warn({ err: error }, 'the VMI CRD does not declare status.nodeName selectable; watching all VMIs');
      return {};
    }
    throw error;
  }
}
