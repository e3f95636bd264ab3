import { describe, expect, it } from '@jest/globals';
import type { MigrationPolicy } from './api/index.js';
import { QuantityError } from './quantity.js';
import { MIGRATION_DEFAULTS, launcherMigrateArgs, matchMigrationPolicy, migrateArgsFromConfiguration, migrationConfigurationOf, resolveMigrationPolicy } from './migration-policy.js';

function policy(name: string, selectors: MigrationPolicy['spec']['selectors'], spec: Omit<MigrationPolicy['spec'], 'selectors'> = {}): MigrationPolicy {
  return { apiVersion: 'migrations.kubevirt.io/v1alpha1', kind: 'MigrationPolicy', metadata: { name }, spec: { selectors, ...spec } };
}

describe('migration policy matching (KubeVirt rules)', () => {
  const vmiLabels = { app: 'db', tier: 'gold' };
  const nsLabels = { team: 'a' };

  it('applies a policy only when every one of its labels matches', () => {
    expect(matchMigrationPolicy([policy('p', { virtualMachineInstanceSelector: { app: 'db', zone: 'x' } })], vmiLabels, nsLabels)).toBeUndefined();
    expect(matchMigrationPolicy([policy('p', { namespaceSelector: { team: 'b' } })], vmiLabels, nsLabels)).toBeUndefined();
    expect(matchMigrationPolicy([policy('p', { virtualMachineInstanceSelector: { app: 'db' }, namespaceSelector: { team: 'a' } })], vmiLabels, nsLabels)?.metadata?.name).toBe('p');
  });

  it('prefers more matching labels, then more VMI labels, then the first name', () => {
    const one = policy('z-one', { virtualMachineInstanceSelector: { app: 'db' } });
    const two = policy('y-two', { virtualMachineInstanceSelector: { app: 'db', tier: 'gold' } });
    const nsAndVmi = policy('x-mixed', { virtualMachineInstanceSelector: { app: 'db' }, namespaceSelector: { team: 'a' } });
    const ns = policy('a-ns', { namespaceSelector: { team: 'a' } });
    expect(matchMigrationPolicy([one, ns], vmiLabels, nsLabels)?.metadata?.name).toBe('z-one');
    expect(matchMigrationPolicy([one, two], vmiLabels, nsLabels)?.metadata?.name).toBe('y-two');
    // Two labels each: y-two has two VMI labels, x-mixed one.
    expect(matchMigrationPolicy([nsAndVmi, two], vmiLabels, nsLabels)?.metadata?.name).toBe('y-two');
    const twin = policy('b-twin', { virtualMachineInstanceSelector: { app: 'db' } });
    expect(matchMigrationPolicy([one, twin], vmiLabels, nsLabels)?.metadata?.name).toBe('b-twin');
    expect(matchMigrationPolicy([twin, one], vmiLabels, nsLabels)?.metadata?.name).toBe('b-twin');
  });
});

describe('migration policy resolution', () => {
  it("uses KubeVirt's defaults when nothing is configured", () => {
    expect(resolveMigrationPolicy(undefined, undefined)).toEqual({ ...MIGRATION_DEFAULTS, bandwidthBytesPerSecond: 0 });
  });

  it('takes the cluster settings, and a policy overrides only what it sets', () => {
    const cluster = { bandwidthPerMigration: '64Mi', completionTimeoutPerGiB: 800, progressTimeout: 300, allowAutoConverge: false, parallelMigrationsPerCluster: 3 };
    expect(resolveMigrationPolicy(cluster, undefined)).toMatchObject({ bandwidthBytesPerSecond: 64 * 1024 * 1024, completionTimeoutPerGiB: 800, progressTimeout: 300, parallelMigrationsPerCluster: 3, parallelOutboundMigrationsPerNode: 2 });
    const p = policy('fast', {}, { allowAutoConverge: true, bandwidthPerMigration: '1Gi', maxDowntimeMs: 100 });
    expect(resolveMigrationPolicy(cluster, p)).toEqual({
      policyName: 'fast',
      parallelMigrationsPerCluster: 3,
      parallelOutboundMigrationsPerNode: 2,
      bandwidthBytesPerSecond: 1024 ** 3,
      completionTimeoutPerGiB: 800,
      progressTimeout: 300,
      allowAutoConverge: true,
      allowPostCopy: false,
      maxDowntimeMs: 100,
    });
  });

  it('names the field of a bad bandwidth', () => {
    expect(() => resolveMigrationPolicy({}, policy('bad', {}, { bandwidthPerMigration: 'fast' }))).toThrow(QuantityError);
    expect(() => resolveMigrationPolicy({}, policy('bad', {}, { bandwidthPerMigration: 'fast' }))).toThrow(/migrationpolicy bad spec\.bandwidthPerMigration: "fast" is not a Kubernetes quantity/);
  });

  it("gives the launcher its arguments: timeout per GiB of the guest's memory, bandwidth in MiB/s rounded up", () => {
    const r = resolveMigrationPolicy({ bandwidthPerMigration: '217Ki', completionTimeoutPerGiB: 150, allowPostCopy: true }, undefined);
    expect(launcherMigrateArgs(r, 2 * 1024 ** 3)).toEqual({ bandwidthMiBps: 1, autoConverge: false, postCopy: true, completionTimeoutSeconds: 300, progressTimeoutSeconds: 150 });
    expect(launcherMigrateArgs(resolveMigrationPolicy({}, undefined), 128 * 1024 * 1024)).toEqual({ autoConverge: false, postCopy: false, completionTimeoutSeconds: 19, progressTimeoutSeconds: 150 });
    expect(launcherMigrateArgs({ ...r, completionTimeoutPerGiB: 0 }, 1024).completionTimeoutSeconds).toBe(1);
  });
});

describe('the recorded configuration (migrationState.migrationConfiguration)', () => {
  it('round-trips the resolved settings to the same launcher arguments', () => {
    const resolved = resolveMigrationPolicy({ bandwidthPerMigration: '64Mi', completionTimeoutPerGiB: 10, allowAutoConverge: true }, undefined);
    const recorded = migrationConfigurationOf(resolved);
    expect(recorded).toEqual({
      parallelMigrationsPerCluster: 5,
      parallelOutboundMigrationsPerNode: 2,
      bandwidthPerMigration: String(64 * 1024 * 1024),
      completionTimeoutPerGiB: 10,
      progressTimeout: 150,
      allowAutoConverge: true,
      allowPostCopy: false,
    });
    const gib = 1024 * 1024 * 1024;
    expect(migrateArgsFromConfiguration(recorded, 2 * gib)).toEqual(launcherMigrateArgs(resolved, 2 * gib));
    expect(migrateArgsFromConfiguration(recorded, 2 * gib)).toMatchObject({ bandwidthMiBps: 64, completionTimeoutSeconds: 20, autoConverge: true });
  });

  it('an unlimited bandwidth stays unlimited; no record means the defaults', () => {
    const recorded = migrationConfigurationOf(resolveMigrationPolicy(undefined, undefined));
    expect(recorded.bandwidthPerMigration).toBe('0');
    expect(migrateArgsFromConfiguration(recorded, 1024 ** 3).bandwidthMiBps).toBeUndefined();
    expect(migrateArgsFromConfiguration(undefined, 1024 ** 3)).toEqual({ autoConverge: false, postCopy: false, completionTimeoutSeconds: 150, progressTimeoutSeconds: 150 });
  });
});
