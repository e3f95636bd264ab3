// Shapes shared by every kind: object metadata, quantities, timestamps, conditions.
// Kubernetes validates metadata itself, so ObjectMeta is loose (unknown keys pass) but typed where
// controllers read it.
import { z } from 'zod';
import { quantityInRange } from '../quantity.js';

/**
 * The CRD marker for int-or-string values. The generator turns a schema carrying this marker into
 * `anyOf: [{type: integer}, {type: string}]` with `x-kubernetes-int-or-string: true`, which is the
 * only anyOf a structural schema allows at that position.
 */
export const INT_OR_STRING = 'x-kubernetes-int-or-string';
/** The CRD marker for an object whose content the API server keeps without a schema. */
export const PRESERVE_UNKNOWN_FIELDS = 'x-kubernetes-preserve-unknown-fields';

// The grammar of resource.Quantity (k8s.io/apimachinery/pkg/api/resource): a signed decimal with
// an optional binary suffix (Ki..Ei), decimal suffix (n, u, m, k, M..E) or exponent.
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** A Kubernetes resource quantity such as `2Gi`, `500m` or `1` (a string, or a plain number). */
export const Quantity = z
  .union([
    z.int(),
    z
      .string()
      .regex(new RegExp(QUANTITY_PATTERN), 'must be a Kubernetes quantity such as 1Gi, 500m or 2')
      .refine(quantityInRange, 'is out of range: at most 2^63 - 1 and 40 significant digits, as Kubernetes quantities'),
  ])
  .meta({ [INT_OR_STRING]: true, pattern: QUANTITY_PATTERN });
export type Quantity = z.infer<typeof Quantity>;

/** An integer or a string, as Kubernetes' intstr.IntOrString (e.g. a port number or name, 10%). */
export const IntOrString = z.union([z.int(), z.string()]).meta({ [INT_OR_STRING]: true });
export type IntOrString = z.infer<typeof IntOrString>;

/** Resource name → quantity, as core/v1 ResourceList (`cpu`, `memory`, `hugepages-2Mi`, ...). */
export const ResourceList = z.record(z.string(), Quantity);
export type ResourceList = z.infer<typeof ResourceList>;

/**
 * An RFC 3339 timestamp as metav1.Time serialises it. Go writes an unset time as `null`, and
 * KubeVirt's objects carry such nulls (e.g. `lastProbeTime: null`), so timestamps are nullable.
 */
export const Time = z.string().meta({ format: 'date-time' }).nullable();
export type Time = z.infer<typeof Time>;

export const ConditionStatus = z.enum(['True', 'False', 'Unknown']).describe('Whether the condition holds: True, False or Unknown.');
export type ConditionStatus = z.infer<typeof ConditionStatus>;

/**
 * A status condition as KubeVirt and Kubernetes write them. Each kind gives its own descriptions
 * (they end up in its CRD); the shape is this one, and the runtime's conditions helpers use it.
 */
export function conditionSchema(typeDescription: string, description: string) {
  return z
    .strictObject({
      type: z.string().describe(typeDescription),
      status: ConditionStatus,
      lastProbeTime: Time.optional().describe('When the condition was last probed.'),
      lastTransitionTime: Time.optional().describe('When the condition last changed status.'),
      reason: z.string().optional().describe('A CamelCase reason for the last transition.'),
      message: z.string().optional().describe('A human-readable explanation.'),
    })
    .describe(description);
}

export const Condition = conditionSchema('The condition type, e.g. Ready.', 'An observation about the object.');
export type Condition = z.infer<typeof Condition>;

export const OwnerReference = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof OwnerReference>;

/**
 * metav1.ObjectMeta. Loose on purpose: the API server owns its validation; kubevm only types the
 * fields its controllers read and write. In a CRD, metadata is plain `type: object`.
 */
export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.int().optional(),
  creationTimestamp: Time.optional(),
  deletionTimestamp: Time.optional(),
  deletionGracePeriodSeconds: z.int().nullable().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ownerReferences: z.array(OwnerReference).optional(),
  finalizers: z.array(z.string()).optional(),
  managedFields: z.array(z.unknown()).optional(),
}).describe('Standard object metadata.');
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** The object header every kind shares: apiVersion, kind and metadata. */
export function typeMeta<const ApiVersion extends string, const Kind extends string>(apiVersion: ApiVersion, kind: Kind) {
  return {
    apiVersion: z.literal(apiVersion).describe('The versioned schema of this representation of an object.'),
    kind: z.literal(kind).describe('The REST resource this object represents.'),
    metadata: ObjectMeta.optional(),
  };
}

/** How every kubevm resource describes itself to the CRD generator and to clients. */
export interface ResourceNames {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  categories: readonly string[];
  scope: 'Namespaced' | 'Cluster';
}

/** `group/version` as it appears in apiVersion. */
export function apiVersionOf(names: Pick<ResourceNames, 'group' | 'version'>): string {
  return `${names.group}/${names.version}`;
}
