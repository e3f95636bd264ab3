// Which migration settings apply to one VMI: the KubeVirt CR's spec.configuration.migrations with
// KubeVirt's defaults, overridden field by field by the MigrationPolicy that matches the VMI best.
// The controller resolves them when it creates the target pod and records them in the migration's
// status.migrationState.migrationConfiguration (KubeVirt's field); the source's node handler turns
// that record into the launcher's `migrate` arguments. Shared, so both ends read it one way.
// Matching is KubeVirt's: every label of a policy's selectors must be on the VMI (VMI selector) or
// its namespace (namespace selector); among the matching policies the one with the most matching
// labels wins, then the one with more VMI labels, then the first by name.
import type { MigrateArgs } from './contracts/launcher-protocol.js';
import type { MigrationConfiguration, MigrationPolicy, MigrationPolicySpec } from './api/index.js';
import { parseQuantity } from './quantity.js';

/** KubeVirt's defaults for spec.configuration.migrations. */
export const MIGRATION_DEFAULTS = {
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerNode: 2,
  completionTimeoutPerGiB: 150,
  progressTimeout: 150,
  allowAutoConverge: false,
  allowPostCopy: false,
} as const;

const MIB = 1024n * 1024n;
const GIB = 1024 * 1024 * 1024;

export interface ResolvedMigrationPolicy {
  /** The MigrationPolicy that applied, if one did (the VMI's status.migrationState.migrationPolicyName). */
  policyName?: string;
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
  /** Bytes per second; 0 is unlimited. */
  bandwidthBytesPerSecond: number;
  completionTimeoutPerGiB: number;
  progressTimeout: number;
  allowAutoConverge: boolean;
  allowPostCopy: boolean;
  maxDowntimeMs?: number;
}

type Labels = Record<string, string> | undefined;

function matchingLabels(selector: Labels, labels: Labels): number | undefined {
  let count = 0;
  for (const [key, value] of Object.entries(selector ?? {})) {
    if (labels?.[key] !== value) return undefined;
    count++;
  }
  return count;
}

/** The policy that applies to a VMI with these labels in a namespace with these labels, if any. */
export function matchMigrationPolicy(policies: readonly MigrationPolicy[], vmiLabels: Labels, namespaceLabels: Labels): MigrationPolicy | undefined {
  let best: { policy: MigrationPolicy; vmi: number; total: number } | undefined;
  const sorted = [...policies].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const policy of sorted) {
    const vmi = matchingLabels(policy.spec.selectors.virtualMachineInstanceSelector, vmiLabels);
    const ns = matchingLabels(policy.spec.selectors.namespaceSelector, namespaceLabels);
    if (vmi === undefined || ns === undefined) continue;
    const total = vmi + ns;
    if (!best || total > best.total || (total === best.total && vmi > best.vmi)) best = { policy, vmi, total };
  }
  return best?.policy;
}

function bandwidth(value: MigrationConfiguration['bandwidthPerMigration'], field: string): number {
  return value === undefined ? 0 : Number(parseQuantity(value, 0, field));
}

/**
 * The settings for one VMI. A bad bandwidth quantity throws a QuantityError naming the field
 * (the policy's or the KubeVirt CR's), for the migration's failure reason.
 */
export function resolveMigrationPolicy(cluster: MigrationConfiguration | undefined, policy: MigrationPolicy | undefined): ResolvedMigrationPolicy {
  const c = cluster ?? {};
  const resolved: ResolvedMigrationPolicy = {
    parallelMigrationsPerCluster: c.parallelMigrationsPerCluster ?? MIGRATION_DEFAULTS.parallelMigrationsPerCluster,
    parallelOutboundMigrationsPerNode: c.parallelOutboundMigrationsPerNode ?? MIGRATION_DEFAULTS.parallelOutboundMigrationsPerNode,
    bandwidthBytesPerSecond: bandwidth(c.bandwidthPerMigration, 'kubevirt spec.configuration.migrations.bandwidthPerMigration'),
    completionTimeoutPerGiB: c.completionTimeoutPerGiB ?? MIGRATION_DEFAULTS.completionTimeoutPerGiB,
    progressTimeout: c.progressTimeout ?? MIGRATION_DEFAULTS.progressTimeout,
    allowAutoConverge: c.allowAutoConverge ?? MIGRATION_DEFAULTS.allowAutoConverge,
    allowPostCopy: c.allowPostCopy ?? MIGRATION_DEFAULTS.allowPostCopy,
  };
  if (!policy) return resolved;
  const p: MigrationPolicySpec = policy.spec;
  if (policy.metadata?.name) resolved.policyName = policy.metadata.name;
  if (p.bandwidthPerMigration !== undefined) resolved.bandwidthBytesPerSecond = bandwidth(p.bandwidthPerMigration, `migrationpolicy ${policy.metadata?.name ?? ''} spec.bandwidthPerMigration`);
  if (p.completionTimeoutPerGiB !== undefined) resolved.completionTimeoutPerGiB = p.completionTimeoutPerGiB;
  if (p.allowAutoConverge !== undefined) resolved.allowAutoConverge = p.allowAutoConverge;
  if (p.allowPostCopy !== undefined) resolved.allowPostCopy = p.allowPostCopy;
  if (p.maxDowntimeMs !== undefined && p.maxDowntimeMs > 0) resolved.maxDowntimeMs = p.maxDowntimeMs;
  return resolved;
}

/**
 * What the source launcher is told (launcher protocol `migrate`). The completion timeout is
 * completionTimeoutPerGiB times the guest's memory in GiB, as KubeVirt computes it, at least 1 s.
 * Bandwidth goes in whole MiB/s, rounded up so a small limit is never unlimited.
 */
export function launcherMigrateArgs(policy: ResolvedMigrationPolicy, guestMemoryBytes: number): MigrateArgs {
  const args: MigrateArgs = {
    autoConverge: policy.allowAutoConverge,
    postCopy: policy.allowPostCopy,
    completionTimeoutSeconds: Math.max(1, Math.ceil((policy.completionTimeoutPerGiB * guestMemoryBytes) / GIB)),
    progressTimeoutSeconds: Math.max(1, policy.progressTimeout),
  };
  if (policy.bandwidthBytesPerSecond > 0) args.bandwidthMiBps = Number((BigInt(policy.bandwidthBytesPerSecond) + MIB - 1n) / MIB);
  if (policy.maxDowntimeMs !== undefined) args.maxDowntimeMs = policy.maxDowntimeMs;
  return args;
}

/**
 * The resolved settings as KubeVirt records them (migrationState.migrationConfiguration): every
 * field set, the bandwidth in bytes per second ("0": unlimited). A MigrationPolicy's maxDowntimeMs
 * has no field there and is not carried (the launcher's default applies).
 */
export function migrationConfigurationOf(policy: ResolvedMigrationPolicy): MigrationConfiguration {
  return {
    parallelMigrationsPerCluster: policy.parallelMigrationsPerCluster,
    parallelOutboundMigrationsPerNode: policy.parallelOutboundMigrationsPerNode,
    bandwidthPerMigration: String(policy.bandwidthBytesPerSecond),
    completionTimeoutPerGiB: policy.completionTimeoutPerGiB,
    progressTimeout: policy.progressTimeout,
    allowAutoConverge: policy.allowAutoConverge,
    allowPostCopy: policy.allowPostCopy,
  };
}

/** The source launcher's `migrate` arguments from a recorded configuration (KubeVirt's defaults for what it lacks). */
export function migrateArgsFromConfiguration(configuration: MigrationConfiguration | undefined, guestMemoryBytes: number): MigrateArgs {
  return launcherMigrateArgs(resolveMigrationPolicy(configuration, undefined), guestMemoryBytes);
}
