// migrations.kubevirt.io/v1alpha1 MigrationPolicy: migration settings for the VMs its selectors
// match, overriding the cluster-wide ones in the KubeVirt configuration.
import { z } from 'zod';
import { Quantity, typeMeta, type ResourceNames } from './meta.js';

export const MIGRATIONS_GROUP = 'migrations.kubevirt.io';
export const MIGRATIONS_VERSION = 'v1alpha1';
export const MIGRATIONS_API_VERSION = `${MIGRATIONS_GROUP}/${MIGRATIONS_VERSION}` as const;

export const MigrationPolicyNames = {
  group: MIGRATIONS_GROUP,
  version: MIGRATIONS_VERSION,
  kind: 'MigrationPolicy',
  plural: 'migrationpolicies',
  singular: 'migrationpolicy',
  shortNames: [],
  categories: [],
  scope: 'Cluster',
} as const satisfies ResourceNames;

export const MigrationPolicySpec = z
  .strictObject({
    selectors: z
      .strictObject({
        namespaceSelector: z.record(z.string(), z.string()).optional().describe('Labels the VM\'s namespace must have.'),
        virtualMachineInstanceSelector: z.record(z.string(), z.string()).optional().describe('Labels the VirtualMachineInstance must have.'),
      })
      .describe('Which VMs the policy applies to; when several policies match, the one matching more labels wins.'),
    allowAutoConverge: z.boolean().optional().describe('Throttle the guest CPU when a migration does not converge.'),
    allowPostCopy: z.boolean().optional().describe('Switch to post-copy when a migration does not converge.'),
    allowWorkloadDisruption: z.boolean().optional().describe('Allow pausing the VM to finish a migration that does not converge.'),
    bandwidthPerMigration: Quantity.optional().describe('Bandwidth limit of each migration, e.g. 64Mi (per second).'),
    completionTimeoutPerGiB: z.int().min(0).optional().describe('Seconds per GiB of guest memory after which a migration is cancelled.'),
    maxDowntimeMs: z.int().min(0).optional().describe('The longest pause, in milliseconds, allowed for the final switch-over.'),
  })
  .describe('Migration settings and the VMs they apply to.');
export type MigrationPolicySpec = z.infer<typeof MigrationPolicySpec>;

export const MigrationPolicySchema = z
  .strictObject({
    ...typeMeta(MIGRATIONS_API_VERSION, 'MigrationPolicy'),
    spec: MigrationPolicySpec,
    status: z.strictObject({}).optional().describe('The observed state of the policy (currently empty).'),
  })
  .describe('Migration settings for the VMs its selectors match.');
export type MigrationPolicy = z.infer<typeof MigrationPolicySchema>;
