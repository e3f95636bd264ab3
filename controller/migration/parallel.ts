// KubeVirt's parallel migration limits (spec.configuration.migrations of the KubeVirt CR, never a
// MigrationPolicy's): at most parallelMigrationsPerCluster migrations in flight in the cluster, and
// at most parallelOutboundMigrationsPerNode of them out of one node. A migration over a limit gets
// no target pod and stays Pending; it starts when one in flight ends (the controller enqueues the
// Pending migrations then). "In flight" is KubeVirt's findRunningMigrations: a migration past
// Pending that has not ended, or a Pending one whose target pod exists; here also one whose
// target pod is being created (its creation not yet in the cache), so two workers never both take
// the last slot. Pure: the reconcile counts from its caches and asks.
import type { MigrationPhase } from '../../runtime/api/index.js';
import type { VirtualMachineInstance } from '../api.js';
import type { Migration } from './target-pod.js';

export interface ParallelLimits {
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
}

/** Why a migration may not start yet (the migration's waiting condition), or undefined when it may. */
export interface ParallelLimitWait {
  reason: 'ParallelMigrationsPerClusterLimit' | 'ParallelOutboundMigrationsPerNodeLimit';
  message: string;
}

export interface InFlightMigration {
  key: string;
  /** The node the VMI runs on or is migrating out of. */
  sourceNodes: ReadonlySet<string>;
}

// KubeVirt's IsRunning is false for these (WaitingForSync and Synchronizing are its decentralized
// migrations' phases).
const NOT_RUNNING: ReadonlySet<MigrationPhase | undefined> = new Set<MigrationPhase | undefined>([undefined, 'Pending', 'Succeeded', 'Failed', 'WaitingForSync', 'Synchronizing']);

/** KubeVirt's IsRunning: past Pending and not ended. */
export function pastPending(migration: Migration): boolean {
  return !NOT_RUNNING.has(migration.status?.phase);
}

function isPending(migration: Migration): boolean {
  return migration.status?.phase === undefined || migration.status.phase === 'Pending';
}

function createdAt(migration: Migration): number {
  const created = migration.metadata?.creationTimestamp;
  return created ? new Date(created).getTime() : 0;
}

export interface InFlightInputs {
  migrations: readonly Migration[];
  vmiOf: (migration: Migration) => VirtualMachineInstance | undefined;
  /** The migration's target pod exists in the cache, or its creation is outstanding. */
  hasTarget: (migration: Migration) => boolean;
}

/** The migrations that hold a slot, with the nodes each counts against (KubeVirt's outboundMigrationsOnNode). */
export function inFlightMigrations({ migrations, vmiOf, hasTarget }: InFlightInputs): InFlightMigration[] {
  const inFlight: InFlightMigration[] = [];
  for (const migration of migrations) {
    if (!pastPending(migration) && !(isPending(migration) && hasTarget(migration))) continue;
    const vmi = vmiOf(migration);
    const nodes = new Set<string>();
    if (vmi?.status?.nodeName) nodes.add(vmi.status.nodeName);
    const source = migration.status?.migrationState?.sourceNode ?? vmi?.status?.migrationState?.sourceNode;
    if (source) nodes.add(source);
    inFlight.push({ key: `${migration.metadata?.namespace}/${migration.metadata?.name}`, sourceNodes: nodes });
  }
  return inFlight;
}

/** Whether a migration out of `sourceNode` (key `key`) must wait for a slot. */
export function parallelLimitWait(key: string, sourceNode: string, inFlight: readonly InFlightMigration[], limits: ParallelLimits): ParallelLimitWait | undefined {
  const others = inFlight.filter((m) => m.key !== key);
  if (others.length >= limits.parallelMigrationsPerCluster) {
    return {
      reason: 'ParallelMigrationsPerClusterLimit',
      message: `waiting for a free slot: ${others.length} migrations are in flight in the cluster, the limit (KubeVirt CR spec.configuration.migrations.parallelMigrationsPerCluster) is ${limits.parallelMigrationsPerCluster}`,
    };
  }
  const outbound = others.filter((m) => m.sourceNodes.has(sourceNode)).length;
  if (outbound >= limits.parallelOutboundMigrationsPerNode) {
    return {
      reason: 'ParallelOutboundMigrationsPerNodeLimit',
      message: `waiting for a free slot: ${outbound} migrations are in flight out of node ${sourceNode}, the limit (KubeVirt CR spec.configuration.migrations.parallelOutboundMigrationsPerNode) is ${limits.parallelOutboundMigrationsPerNode}`,
    };
  }
  return undefined;
}

/**
 * The Pending migrations, oldest first, to enqueue when a slot may have freed (a migration ended
 * or went away, or the KubeVirt CR changed): the queue then tries them in creation order.
 */
export function pendingMigrationKeys(migrations: readonly Migration[]): string[] {
  return migrations
    .filter(isPending)
    .sort((a, b) => createdAt(a) - createdAt(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`);
}
