// Whether a VMI marked by a drain (status.evacuationNodeName, set by the api-server's eviction
// webhook) needs a migration now, as KubeVirt's evacuation controller decides it
// (pkg/virt-controller/watch/drain/evacuation): one migration at a time per VMI, none while a
// previous migration's pods are still going, none for a VMI that has already left the node or that
// cannot or need not migrate. A failed evacuation is tried again after a backoff that doubles from
// 20 s, as KubeVirt's migration controller holds failed evacuations back.
// Pure: the reconcile reads the world, this decides, the reconcile creates the migration.
import type { EvictionStrategy } from '../../runtime/api/index.js';
import { EVACUATION_MIGRATION_ANNOTATION, isLiveMigratable, migratesOnEviction, effectiveEvictionStrategy } from '../../runtime/evacuation.js';
import type { VirtualMachineInstance } from '../api.js';
import type { Migration } from '../migration/target-pod.js';

export const EVACUATION_BACKOFF_INITIAL_MS = 20_000;
export const EVACUATION_BACKOFF_MAX_MS = 5 * 60_000;

export interface EvacuationObservation {
  vmi: VirtualMachineInstance;
  /** The KubeVirt CR's spec.configuration.evictionStrategy. */
  clusterDefault: EvictionStrategy | undefined;
  /** Every migration of this VMI the cache holds. */
  migrations: readonly Migration[];
  /** Launcher pods of the VMI that are not down (a previous migration's may still be going). */
  livePods: number;
  now: Date;
}

export type EvacuationDecision =
  | { action: 'nothing'; why: string }
  | { action: 'wait'; why: string; requeueAfterMs?: number }
  | { action: 'migrate'; sourceNode: string };

const finished = (m: Migration): boolean => m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';
const created = (m: Migration): number => Date.parse(m.metadata?.creationTimestamp ?? '') || 0;

/** When a migration failed: its end, else when it entered Failed, else its creation. */
function failedAt(m: Migration): number {
  const end = m.status?.migrationState?.endTimestamp;
  const entered = m.status?.phaseTransitionTimestamps?.find((t) => t.phase === 'Failed')?.phaseTransitionTimestamp;
  return Date.parse(end ?? entered ?? '') || created(m);
}

/** How long to hold the next evacuation back: 20 s after one failure in a row, doubled for each further one. */
export function evacuationBackoffMs(migrations: readonly Migration[], now: Date): number {
  const evacuations = migrations.filter((m) => m.metadata?.annotations?.[EVACUATION_MIGRATION_ANNOTATION] !== undefined && finished(m)).sort((a, b) => created(b) - created(a));
  let failures = 0;
  for (const m of evacuations) {
    if (m.status?.phase !== 'Failed') break;
    failures += 1;
  }
  const latest = evacuations[0];
  if (failures === 0 || !latest) return 0;
  const backoff = Math.min(EVACUATION_BACKOFF_INITIAL_MS * 2 ** (failures - 1), EVACUATION_BACKOFF_MAX_MS);
  return Math.max(0, failedAt(latest) + backoff - now.getTime());
}

export function decideEvacuation({ vmi, clusterDefault, migrations, livePods, now }: EvacuationObservation): EvacuationDecision {
  const node = vmi.status?.evacuationNodeName;
  if (!node) return { action: 'nothing', why: 'not marked for evacuation' };
  const phase = vmi.status?.phase;
  if (vmi.metadata?.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed') return { action: 'nothing', why: 'the VMI is shutting down' };
  // The VMI controller removes the mark with the hand-over.
  if (vmi.status?.nodeName !== node) return { action: 'nothing', why: `the VMI has left node ${node}` };
  if (!migratesOnEviction(effectiveEvictionStrategy(vmi, clusterDefault), vmi)) return { action: 'nothing', why: 'its eviction strategy does not migrate it' };
  if (!isLiveMigratable(vmi)) return { action: 'nothing', why: 'the VMI is not live-migratable' };
  // The VMI records its node from the pod's binding (ADR 0017): a drain can mark one whose guest
  // does not run yet. Only a running guest can migrate; its Running is the next pass.
  if (phase !== 'Running') return { action: 'wait', why: `the VMI is ${phase || 'not running'} yet` };
  const inFlight = migrations.find((m) => !finished(m));
  if (inFlight) return { action: 'wait', why: `migration ${inFlight.metadata?.name ?? ''} is in flight` };
  if (livePods > 1) return { action: 'wait', why: 'the pods of a previous migration are still going' };
  const backoffMs = evacuationBackoffMs(migrations, now);
  if (backoffMs > 0) return { action: 'wait', why: 'the last evacuation failed: backing off', requeueAfterMs: backoffMs };
  return { action: 'migrate', sourceNode: node };
}
