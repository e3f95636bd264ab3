// Kubernetes core/v1 shapes that KubeVirt's API embeds (scheduling, references, resources).
// Written as strict zod objects like the rest of the API, so a typo inside an affinity term is
// rejected with its path instead of being pruned silently.
import { z } from 'zod';
import { Quantity, ResourceList } from './meta.js';

export const LocalObjectReference = z
  .strictObject({
    name: z.string().optional().describe('Name of the referenced object in the same namespace.'),
  })
  .meta({ 'x-kubernetes-map-type': 'atomic' })
  .describe('A reference to an object in the same namespace.');
export type LocalObjectReference = z.infer<typeof LocalObjectReference>;

export const PullPolicy = z
  .enum(['Always', 'Never', 'IfNotPresent'])
  .describe('When the image is pulled: Always, Never, or IfNotPresent (only when missing on the node).');
export type PullPolicy = z.infer<typeof PullPolicy>;

export const NodeSelectorOperator = z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']);

export const NodeSelectorRequirement = z
  .strictObject({
    key: z.string().describe('The label (or field) key the requirement applies to.'),
    operator: NodeSelectorOperator.describe('How the key relates to the values: In, NotIn, Exists, DoesNotExist, Gt or Lt.'),
    values: z.array(z.string()).optional().describe('Values to compare with; empty for Exists/DoesNotExist, a single integer for Gt/Lt.'),
  })
  .describe('A selector requirement on a node label or field.');
export type NodeSelectorRequirement = z.infer<typeof NodeSelectorRequirement>;

export const NodeSelectorTerm = z
  .strictObject({
    matchExpressions: z.array(NodeSelectorRequirement).optional().describe('Requirements on node labels, all of which must hold.'),
    matchFields: z.array(NodeSelectorRequirement).optional().describe('Requirements on node fields (only metadata.name), all of which must hold.'),
  })
  .meta({ 'x-kubernetes-map-type': 'atomic' })
  .describe('A term that matches nodes; the requirements of one term are ANDed.');
export type NodeSelectorTerm = z.infer<typeof NodeSelectorTerm>;

export const NodeSelector = z
  .strictObject({
    nodeSelectorTerms: z.array(NodeSelectorTerm).describe('Terms that are ORed: a node matching any term is selected.'),
  })
  .meta({ 'x-kubernetes-map-type': 'atomic' })
  .describe('A set of node selector terms.');
export type NodeSelector = z.infer<typeof NodeSelector>;

export const PreferredSchedulingTerm = z
  .strictObject({
    weight: z.int32().min(1).max(100).describe('Weight (1-100) added to a node that matches the preference.'),
    preference: NodeSelectorTerm.describe('The node selector term the weight applies to.'),
  })
  .describe('A weighted node preference.');

export const NodeAffinity = z
  .strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector.optional().describe('Nodes the VM may only be scheduled onto.'),
    preferredDuringSchedulingIgnoredDuringExecution: z
      .array(PreferredSchedulingTerm)
      .optional()
      .describe('Nodes the scheduler prefers, by summed weight.'),
  })
  .describe('Node affinity scheduling rules.');
export type NodeAffinity = z.infer<typeof NodeAffinity>;

export const LabelSelectorRequirement = z
  .strictObject({
    key: z.string().describe('The label key the requirement applies to.'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('How the key relates to the values.'),
    values: z.array(z.string()).optional().describe('Values to compare with; empty for Exists/DoesNotExist.'),
  })
  .describe('A label selector requirement.');

export const LabelSelector = z
  .strictObject({
    matchLabels: z.record(z.string(), z.string()).optional().describe('Labels that must all be present with these values.'),
    matchExpressions: z.array(LabelSelectorRequirement).optional().describe('Requirements that must all hold.'),
  })
  .meta({ 'x-kubernetes-map-type': 'atomic' })
  .describe('A label query over a set of objects.');
export type LabelSelector = z.infer<typeof LabelSelector>;

export const PodAffinityTerm = z
  .strictObject({
    labelSelector: LabelSelector.optional().describe('Pods this term matches.'),
    namespaceSelector: LabelSelector.optional().describe('Namespaces whose pods this term matches.'),
    namespaces: z.array(z.string()).optional().describe('Namespaces whose pods this term matches; empty means this object\'s namespace.'),
    topologyKey: z.string().describe('Node label whose value defines the co-location domain (e.g. kubernetes.io/hostname).'),
    matchLabelKeys: z.array(z.string()).optional().describe('Pod label keys whose values are taken from the incoming pod and ANDed into labelSelector.'),
    mismatchLabelKeys: z.array(z.string()).optional().describe('Pod label keys whose values from the incoming pod must not match.'),
  })
  .describe('Pods to be co-located with (affinity) or not (anti-affinity) within a topology domain.');
export type PodAffinityTerm = z.infer<typeof PodAffinityTerm>;

export const WeightedPodAffinityTerm = z
  .strictObject({
    weight: z.int32().min(1).max(100).describe('Weight (1-100) added to a node satisfying the term.'),
    podAffinityTerm: PodAffinityTerm.describe('The pod affinity term the weight applies to.'),
  })
  .describe('A weighted pod affinity term.');

const podAffinityRules = {
  requiredDuringSchedulingIgnoredDuringExecution: z.array(PodAffinityTerm).optional().describe('Terms that must hold for the VM to be scheduled onto a node.'),
  preferredDuringSchedulingIgnoredDuringExecution: z.array(WeightedPodAffinityTerm).optional().describe('Terms the scheduler prefers, by summed weight.'),
};

export const PodAffinity = z.strictObject(podAffinityRules).describe('Rules to co-locate the VM with other pods.');
export const PodAntiAffinity = z.strictObject(podAffinityRules).describe('Rules to keep the VM away from other pods.');

export const Affinity = z
  .strictObject({
    nodeAffinity: NodeAffinity.optional().describe('Node affinity scheduling rules.'),
    podAffinity: PodAffinity.optional().describe('Pod affinity scheduling rules.'),
    podAntiAffinity: PodAntiAffinity.optional().describe('Pod anti-affinity scheduling rules.'),
  })
  .describe('Scheduling constraints, as core/v1 Affinity.');
export type Affinity = z.infer<typeof Affinity>;

export const Toleration = z
  .strictObject({
    key: z.string().optional().describe('The taint key tolerated; empty with operator Exists tolerates every taint.'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Exists (any value) or Equal (the given value); Equal when unset.'),
    value: z.string().optional().describe('The taint value tolerated, for operator Equal.'),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional().describe('The taint effect tolerated; empty means all effects.'),
    tolerationSeconds: z.int().optional().describe('For NoExecute: how long the VM stays bound after the taint appears.'),
  })
  .describe('A taint the VM tolerates.');
export type Toleration = z.infer<typeof Toleration>;

export const ResourceRequirements = z
  .strictObject({
    requests: ResourceList.optional().describe('Minimum resources required.'),
    limits: ResourceList.optional().describe('Maximum resources allowed.'),
  })
  .describe('Compute resource requests and limits, as core/v1 ResourceRequirements.');
export type ResourceRequirements = z.infer<typeof ResourceRequirements>;

export const PersistentVolumeClaimVolumeSource = z
  .strictObject({
    claimName: z.string().min(1).describe('Name of a PersistentVolumeClaim in the same namespace.'),
    readOnly: z.boolean().optional().describe('Attach the claim read-only.'),
  })
  .describe('A reference to a PersistentVolumeClaim.');
export type PersistentVolumeClaimVolumeSource = z.infer<typeof PersistentVolumeClaimVolumeSource>;

export const PodQOSClass = z.enum(['Guaranteed', 'Burstable', 'BestEffort']);
export type PodQOSClass = z.infer<typeof PodQOSClass>;

export const DNSPolicy = z
  .enum(['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'])
  .describe('DNS policy of the VM\'s pod: ClusterFirstWithHostNet, ClusterFirst, Default or None.');

export const PodDNSConfig = z
  .strictObject({
    nameservers: z.array(z.string()).optional().describe('DNS server IP addresses.'),
    searches: z.array(z.string()).optional().describe('DNS search domains.'),
    options: z
      .array(z.strictObject({ name: z.string().optional().describe('Resolver option name.'), value: z.string().optional().describe('Resolver option value.') }).describe('A resolver option.'))
      .optional()
      .describe('Resolver options.'),
  })
  .describe('DNS parameters merged with those generated from dnsPolicy.');

export { Quantity, ResourceList };
