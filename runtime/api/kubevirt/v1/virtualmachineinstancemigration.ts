// VirtualMachineInstanceMigration (kubevirt.io/v1): a request to live-migrate one VMI.
import { z } from 'zod';
import { conditionSchema, Time, typeMeta, type ResourceNames } from '../../meta.js';
import { KUBEVIRT_API_VERSION, KUBEVIRT_GROUP, KUBEVIRT_VERSION, VirtualMachineInstanceMigrationState } from './virtualmachineinstance.js';

export const VirtualMachineInstanceMigrationNames = {
  group: KUBEVIRT_GROUP,
  version: KUBEVIRT_VERSION,
  kind: 'VirtualMachineInstanceMigration',
  plural: 'virtualmachineinstancemigrations',
  singular: 'virtualmachineinstancemigration',
  shortNames: ['vmim', 'vmims'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const MigrationPhase = z
  .enum(['Pending', 'Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running', 'Succeeded', 'Failed', 'WaitingForSync', 'Synchronizing'])
  .describe(
    'Where the migration is: Pending, Scheduling (target pod created), Scheduled (target pod on a node), PreparingTarget, ' +
      'TargetReady, Running (memory is being copied), Succeeded, Failed.',
  );
export type MigrationPhase = z.infer<typeof MigrationPhase>;

export const VirtualMachineInstanceMigrationSpec = z
  .strictObject({
    vmiName: z.string().min(1).describe('The name of the VirtualMachineInstance to migrate, in the same namespace.'),
    addedNodeSelector: z
      .record(z.string(), z.string())
      .optional()
      .describe('Extra node labels the target node must have, on top of the VMI\'s own node selector.'),
    priority: z
      .enum(['system-critical', 'user-triggered', 'system-maintenance'])
      .optional()
      .describe('The priority of the migration in the migration queue.'),
  })
  .describe('The desired state of a migration.');
export type VirtualMachineInstanceMigrationSpec = z.infer<typeof VirtualMachineInstanceMigrationSpec>;

export const VirtualMachineInstanceMigrationCondition = conditionSchema(
  'The condition type, e.g. migrationAbortRequested.',
  'An observation about the migration.',
);

export const VirtualMachineInstanceMigrationStatus = z
  .strictObject({
    phase: MigrationPhase.optional(),
    conditions: z.array(VirtualMachineInstanceMigrationCondition).optional().describe('The conditions of the migration.'),
    phaseTransitionTimestamps: z
      .array(
        z
          .strictObject({
            phase: MigrationPhase.optional(),
            phaseTransitionTimestamp: Time.optional().describe('When the migration entered the phase.'),
          })
          .describe('When the migration entered a phase.'),
      )
      .optional()
      .describe('When the migration entered each phase.'),
    migrationState: VirtualMachineInstanceMigrationState.optional(),
  })
  .describe('The observed state of a migration.');
export type VirtualMachineInstanceMigrationStatus = z.infer<typeof VirtualMachineInstanceMigrationStatus>;

export const VirtualMachineInstanceMigrationSchema = z
  .strictObject({
    ...typeMeta(KUBEVIRT_API_VERSION, 'VirtualMachineInstanceMigration'),
    spec: VirtualMachineInstanceMigrationSpec,
    status: VirtualMachineInstanceMigrationStatus.optional(),
  })
  .describe('A live migration of one VirtualMachineInstance to another node.');
export type VirtualMachineInstanceMigration = z.infer<typeof VirtualMachineInstanceMigrationSchema>;
