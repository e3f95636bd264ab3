// Every kind kubevm serves: its names, its schema, and how the CRD presents it. The CRD generator,
// the docs generator, the operator (which installs the CRDs) and the webhooks all read this list.
import type { z } from 'zod';
import { formatIssues } from './issues.js';
import { VirtualMachineClusterInstancetypeNames, VirtualMachineClusterInstancetypeSchema, VirtualMachineClusterPreferenceNames, VirtualMachineClusterPreferenceSchema, VirtualMachineInstancetypeNames, VirtualMachineInstancetypeSchema, VirtualMachinePreferenceNames, VirtualMachinePreferenceSchema } from './instancetype.js';
import { KubeVirtNames, KubeVirtSchema } from './kubevirt/v1/kubevirt.js';
import { VirtualMachineNames, VirtualMachineSchema } from './kubevirt/v1/virtualmachine.js';
import { VirtualMachineInstanceNames, VirtualMachineInstanceSchema } from './kubevirt/v1/virtualmachineinstance.js';
import { VirtualMachineInstanceMigrationNames, VirtualMachineInstanceMigrationSchema } from './kubevirt/v1/virtualmachineinstancemigration.js';
import type { ResourceNames } from './meta.js';
import { MigrationPolicyNames, MigrationPolicySchema } from './migrations.js';
import { UNSUPPORTED_FIELDS } from './unsupported.js';

/** An additionalPrinterColumns entry of a CRD version. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface ApiResource {
  names: ResourceNames;
  schema: z.ZodType;
  printerColumns: readonly PrinterColumn[];
  /** Whether the kind has a status subresource (spec and status are written separately). */
  statusSubresource: boolean;
  /** KubeVirt fields of this kind that kubevm rejects as unsupported. */
  unsupportedFields: readonly string[];
  /** JSON paths the API server may filter on with field selectors (CRD selectableFields). */
  selectableFields?: readonly string[];
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const phase: PrinterColumn = { name: 'Phase', type: 'string', jsonPath: '.status.phase' };
const conditionStatus = (name: string, type: string, priority?: number): PrinterColumn => ({
  name,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=='${type}')].status`,
  ...(priority === undefined ? {} : { priority }),
});

// Columns, short names, categories and scope as KubeVirt's CRDs, so `kubectl get vm,vmi,vmim`
// reads the same on both.
export const API_RESOURCES: readonly ApiResource[] = [
  {
    names: VirtualMachineNames,
    schema: VirtualMachineSchema,
    printerColumns: [
      age,
      { name: 'Status', type: 'string', jsonPath: '.status.printableStatus', description: 'Human Readable Status' },
      conditionStatus('Ready', 'Ready'),
    ],
    statusSubresource: true,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachine ?? [],
  },
  {
    names: VirtualMachineInstanceNames,
    schema: VirtualMachineInstanceSchema,
    printerColumns: [
      age,
      phase,
      { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddress' },
      { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
      conditionStatus('Ready', 'Ready'),
      conditionStatus('Live-Migratable', 'LiveMigratable', 1),
      conditionStatus('Paused', 'Paused', 1),
    ],
    statusSubresource: true,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachineInstance ?? [],
    // The node handler watches only its node's VMIs with `status.nodeName=<node>`: a field
    // selector costs no extra write, where a node label on every VMI would.
    selectableFields: ['.status.nodeName'],
  },
  {
    names: VirtualMachineInstanceMigrationNames,
    schema: VirtualMachineInstanceMigrationSchema,
    printerColumns: [
      { ...phase, description: 'The current phase of VM instance migration' },
      { name: 'VMI', type: 'string', jsonPath: '.spec.vmiName', description: 'The name of the VMI to perform the migration on' },
    ],
    statusSubresource: true,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachineInstanceMigration ?? [],
  },
  {
    names: KubeVirtNames,
    schema: KubeVirtSchema,
    printerColumns: [age, phase],
    statusSubresource: true,
    unsupportedFields: UNSUPPORTED_FIELDS.KubeVirt ?? [],
  },
  {
    names: VirtualMachineInstancetypeNames,
    schema: VirtualMachineInstancetypeSchema,
    printerColumns: [],
    statusSubresource: false,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachineInstancetype ?? [],
  },
  {
    names: VirtualMachineClusterInstancetypeNames,
    schema: VirtualMachineClusterInstancetypeSchema,
    printerColumns: [],
    statusSubresource: false,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachineClusterInstancetype ?? [],
  },
  {
    names: VirtualMachinePreferenceNames,
    schema: VirtualMachinePreferenceSchema,
    printerColumns: [],
    statusSubresource: false,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachinePreference ?? [],
  },
  {
    names: VirtualMachineClusterPreferenceNames,
    schema: VirtualMachineClusterPreferenceSchema,
    printerColumns: [],
    statusSubresource: false,
    unsupportedFields: UNSUPPORTED_FIELDS.VirtualMachineClusterPreference ?? [],
  },
  {
    names: MigrationPolicyNames,
    schema: MigrationPolicySchema,
    printerColumns: [],
    statusSubresource: true,
    unsupportedFields: UNSUPPORTED_FIELDS.MigrationPolicy ?? [],
  },
];

/** The resource for an apiVersion and kind, or undefined when kubevm does not serve it. */
export function findResource(apiVersion: string, kind: string): ApiResource | undefined {
  return API_RESOURCES.find((resource) => `${resource.names.group}/${resource.names.version}` === apiVersion && resource.names.kind === kind);
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/**
 * Validates an object against its kind's schema: the check the webhooks and controllers run.
 * Errors name the field path (`spec.template.spec.domain.foo: unknown field "foo"`).
 */
export function validateObject<T>(schema: z.ZodType<T>, object: unknown, kind?: string): ValidationResult<T> {
  const result = schema.safeParse(object, { reportInput: true });
  return result.success ? { ok: true, value: result.data } : { ok: false, errors: formatIssues(result.error.issues, kind) };
}

/** An informer's validator for one kind: the field-path messages of an invalid object, none for a valid one. */
export function schemaValidator(schema: z.ZodType, kind: string): (object: unknown) => readonly string[] {
  return (object) => {
    const result = validateObject(schema, object, kind);
    return result.ok ? [] : result.errors;
  };
}

/** Validates any kubevm object, picking the schema by its apiVersion and kind. */
export function validateManifest(object: unknown): ValidationResult<unknown> {
  const header = (object ?? {}) as { apiVersion?: unknown; kind?: unknown };
  const resource = typeof header.apiVersion === 'string' && typeof header.kind === 'string' ? findResource(header.apiVersion, header.kind) : undefined;
  if (!resource) {
    return { ok: false, errors: [`<root>: kubevm does not serve apiVersion ${JSON.stringify(header.apiVersion)} kind ${JSON.stringify(header.kind)}`] };
  }
  return validateObject(resource.schema, object, resource.names.kind);
}
