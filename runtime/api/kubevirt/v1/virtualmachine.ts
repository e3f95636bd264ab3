// VirtualMachine (kubevirt.io/v1): the stateful, start/stoppable VM that owns at most one
// VirtualMachineInstance at a time.
import { z } from 'zod';
import { conditionSchema, PRESERVE_UNKNOWN_FIELDS, Time, typeMeta, type ResourceNames } from '../../meta.js';
import { KUBEVIRT_API_VERSION, KUBEVIRT_GROUP, KUBEVIRT_VERSION, VirtualMachineInstanceSpec } from './virtualmachineinstance.js';

export const VirtualMachineNames = {
  group: KUBEVIRT_GROUP,
  version: KUBEVIRT_VERSION,
  kind: 'VirtualMachine',
  plural: 'virtualmachines',
  singular: 'virtualmachine',
  shortNames: ['vm', 'vms'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const RunStrategy = z
  .enum(['Always', 'Halted', 'Manual', 'RerunOnFailure', 'Once'])
  .describe(
    'When the VM runs. Always: keep an instance running, recreating it whenever it stops. ' +
      'Halted: keep it stopped. Manual: start and stop only on request (virtctl start/stop). ' +
      'RerunOnFailure: restart it when it fails, not when the guest shuts down. Once: run it once, never restart it.',
  );
export type RunStrategy = z.infer<typeof RunStrategy>;

export const InferFromVolumeFailurePolicy = z
  .enum(['Reject', 'Ignore'])
  .describe('When inferring from the volume fails: Reject the VM, or Ignore and go on without the reference.');

const matcherFields = {
  name: z.string().optional().describe('The name of the referenced object.'),
  revisionName: z
    .string()
    .optional()
    .describe('The ControllerRevision holding the copy in use; set when the VM is first started so later edits of the referenced object do not change it.'),
  inferFromVolume: z.string().optional().describe('Take the reference from the labels of the named volume (its PVC) instead of name/kind.'),
  inferFromVolumeFailurePolicy: InferFromVolumeFailurePolicy.optional(),
};

export const InstancetypeMatcher = z
  .strictObject({
    ...matcherFields,
    kind: z
      .string()
      .optional()
      .describe('VirtualMachineInstancetype (namespaced) or VirtualMachineClusterInstancetype (the default).'),
  })
  .describe('The instancetype providing the VM\'s CPU and memory.');
export type InstancetypeMatcher = z.infer<typeof InstancetypeMatcher>;

export const PreferenceMatcher = z
  .strictObject({
    ...matcherFields,
    kind: z
      .string()
      .optional()
      .describe('VirtualMachinePreference (namespaced) or VirtualMachineClusterPreference (the default).'),
  })
  .describe('The preference providing defaults for the VM\'s devices, firmware and features.');
export type PreferenceMatcher = z.infer<typeof PreferenceMatcher>;

/**
 * The metadata of the VMI created from the template. KubeVirt's CRD leaves it open
 * (preserve-unknown-fields), so it is loose here too; labels and annotations are typed.
 */
export const TemplateMeta = z
  .looseObject({
    name: z.string().optional().describe('Ignored: the VMI takes the VM\'s name.'),
    labels: z.record(z.string(), z.string()).optional().describe('Labels copied onto the VMI (and its launcher pod).'),
    annotations: z.record(z.string(), z.string()).optional().describe('Annotations copied onto the VMI.'),
    creationTimestamp: Time.optional().describe('Ignored; kubectl and Go clients write null here.'),
  })
  .meta({ [PRESERVE_UNKNOWN_FIELDS]: true })
  .nullable()
  .describe('Labels and annotations of the VirtualMachineInstance created from this template.');

export const VirtualMachineInstanceTemplateSpec = z
  .strictObject({
    metadata: TemplateMeta.optional(),
    spec: VirtualMachineInstanceSpec,
  })
  .describe('The VirtualMachineInstance the VM creates when it runs.');
export type VirtualMachineInstanceTemplateSpec = z.infer<typeof VirtualMachineInstanceTemplateSpec>;

export const VirtualMachineSpec = z
  .strictObject({
    runStrategy: RunStrategy.optional(),
    running: z.boolean().optional().describe('Deprecated: use runStrategy. true is runStrategy Always, false is Halted. Mutually exclusive with runStrategy.'),
    instancetype: InstancetypeMatcher.optional(),
    preference: PreferenceMatcher.optional(),
    template: VirtualMachineInstanceTemplateSpec,
  })
  .superRefine((spec, ctx) => {
    if (spec.running !== undefined && spec.runStrategy !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['running'], message: 'running and runStrategy are mutually exclusive; use runStrategy' });
    }
  })
  .describe('The desired state of a VirtualMachine.');
export type VirtualMachineSpec = z.infer<typeof VirtualMachineSpec>;

export const VirtualMachinePrintableStatus = z
  .enum([
    'Stopped',
    'Provisioning',
    'Starting',
    'Running',
    'Paused',
    'Stopping',
    'Terminating',
    'CrashLoopBackOff',
    'Migrating',
    'Unknown',
    'ErrorUnschedulable',
    'ErrImagePull',
    'ImagePullBackOff',
    'ErrorPvcNotFound',
    'DataVolumeError',
    'WaitingForVolumeBinding',
    'WaitingForReceiver',
  ])
  .describe('A one-word summary of the VM\'s state, shown by kubectl get vm.');
export type VirtualMachinePrintableStatus = z.infer<typeof VirtualMachinePrintableStatus>;

export const VirtualMachineCondition = conditionSchema(
  'The condition type, e.g. Ready, Paused, Failure, RestartRequired.',
  'An observation about the VM.',
);
export type VirtualMachineCondition = z.infer<typeof VirtualMachineCondition>;

export const VirtualMachineStateChangeRequest = z
  .strictObject({
    action: z.enum(['Start', 'Stop']).describe('Start or Stop the VM.'),
    data: z.record(z.string(), z.string()).optional().describe('Parameters of the request, e.g. paused: "true" for a paused start.'),
    uid: z.string().optional().describe('For Stop: the UID of the VMI to stop.'),
  })
  .describe('A pending start or stop request (from virtctl or the subresource API).');
export type VirtualMachineStateChangeRequest = z.infer<typeof VirtualMachineStateChangeRequest>;

export const VirtualMachineStartFailure = z
  .strictObject({
    consecutiveFailCount: z.int().optional().describe('Failed starts in a row.'),
    lastFailedVMIUID: z.string().optional().describe('The UID of the last VMI that failed.'),
    retryAfterTimestamp: Time.optional().describe('No new start before this time (crash-loop back-off).'),
  })
  .describe('Start failures, for the crash-loop back-off.');
export type VirtualMachineStartFailure = z.infer<typeof VirtualMachineStartFailure>;

export const InstancetypeStatusRef = z
  .strictObject({
    name: z.string().optional().describe('The name of the referenced object.'),
    kind: z.string().optional().describe('The kind of the referenced object.'),
    controllerRevisionRef: z
      .strictObject({ name: z.string().optional().describe('The ControllerRevision name.') })
      .optional()
      .describe('The ControllerRevision holding the copy in use.'),
    inferFromVolume: z.string().optional().describe('The volume the reference was inferred from.'),
    inferFromVolumeFailurePolicy: InferFromVolumeFailurePolicy.optional(),
  })
  .describe('The instancetype or preference in use.');

export const VirtualMachineStatus = z
  .strictObject({
    printableStatus: VirtualMachinePrintableStatus.optional(),
    created: z.boolean().optional().describe('A VirtualMachineInstance exists for this VM.'),
    ready: z.boolean().optional().describe('The VirtualMachineInstance is running and ready.'),
    conditions: z.array(VirtualMachineCondition).optional().describe('The conditions of the VM.'),
    stateChangeRequests: z.array(VirtualMachineStateChangeRequest).optional().describe('Pending start/stop requests, oldest first.'),
    startFailure: VirtualMachineStartFailure.optional(),
    observedGeneration: z.int().optional().describe('The VM generation the controller last acted on.'),
    desiredGeneration: z.int().optional().describe('The VM generation the running VMI should reflect.'),
    runStrategy: RunStrategy.optional().describe('The run strategy in effect.'),
    instancetypeRef: InstancetypeStatusRef.optional(),
    preferenceRef: InstancetypeStatusRef.optional(),
  })
  .describe('The observed state of a VirtualMachine.');
export type VirtualMachineStatus = z.infer<typeof VirtualMachineStatus>;

export const VirtualMachineSchema = z
  .strictObject({
    ...typeMeta(KUBEVIRT_API_VERSION, 'VirtualMachine'),
    spec: VirtualMachineSpec,
    status: VirtualMachineStatus.optional(),
  })
  .describe('A virtual machine: its template, and whether and how it runs.');
export type VirtualMachine = z.infer<typeof VirtualMachineSchema>;

