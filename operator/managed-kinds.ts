// Every kind the operator renders, with how to reach it. The operator watches each of them
// (label-selected: only what it manages) to repair drift, and walks them on uninstall.
import type { ResourceDescriptor } from '../runtime/kube.js';

export const MANAGED_KINDS = {
  CustomResourceDefinition: { group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
  PriorityClass: { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses', kind: 'PriorityClass', namespaced: false },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', kind: 'ClusterRole', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', kind: 'Role', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings', kind: 'RoleBinding', namespaced: true },
  ServiceAccount: { group: '', version: 'v1', resource: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true },
  DaemonSet: { group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', namespaced: true },
  PodDisruptionBudget: { group: 'policy', version: 'v1', resource: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true },
  Service: { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true },
  APIService: { group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices', kind: 'APIService', namespaced: false },
  ValidatingAdmissionPolicy: { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicies', kind: 'ValidatingAdmissionPolicy', namespaced: false },
  ValidatingAdmissionPolicyBinding: { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicybindings', kind: 'ValidatingAdmissionPolicyBinding', namespaced: false },
  ValidatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  MutatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  // Watched in the operator's namespace only: its rights on Secrets end there.
  Secret: { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true },
} as const satisfies Record<string, ResourceDescriptor>;
export type ManagedKind = keyof typeof MANAGED_KINDS;

/** Removal order on uninstall: the workloads first (they use the rest), the CRDs last. */
export const REMOVAL_ORDER: readonly ManagedKind[] = [
  // The webhook fails closed: it goes before the api-server that answers it.
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  // The aggregated API first: the kube-apiserver stops routing to the api-server before it goes.
  'APIService',
  'Deployment',
  'DaemonSet',
  // The confinement policies outlive the components they confine (removed after them).
  'ValidatingAdmissionPolicyBinding',
  'ValidatingAdmissionPolicy',
  'PodDisruptionBudget',
  'Service',
  'Secret',
  'RoleBinding',
  'ClusterRoleBinding',
  'Role',
  'ClusterRole',
  'ServiceAccount',
  'PriorityClass',
  'CustomResourceDefinition',
];

export function isManagedKind(kind: string): kind is ManagedKind {
  return Object.hasOwn(MANAGED_KINDS, kind);
}

/** Kinds the operator watches in its own namespace only (the rest cluster-wide, label-selected). */
export const NAMESPACE_SCOPED_WATCH: ReadonlySet<ManagedKind> = new Set<ManagedKind>(['Secret']);
