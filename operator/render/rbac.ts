// Each component's identity and exactly the rights its code uses (least privilege), rendered in
// code; each rule names the code path that needs it. These were deploy/*/rbac.yaml; a test checks
// the two agree until deploy/ is generated from here.
import type { V1PolicyRule, RbacV1Subject } from '@kubernetes/client-node';
import type { ComponentKey, InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, managedLabels } from '../install.js';
import { METRICS_PATH, METRICS_READER_ROLE } from '../../runtime/metrics-server.js';

const RBAC_API = 'rbac.authorization.k8s.io/v1';

/** A rule with the reason it exists; the reason is documentation, not sent. */
export interface Grant extends V1PolicyRule {
  why: string;
}

const INSTANCETYPE_RESOURCES = [
  'virtualmachineinstancetypes',
  'virtualmachineclusterinstancetypes',
  'virtualmachinepreferences',
  'virtualmachineclusterpreferences',
];

/** Every component's metrics endpoint (runtime/metrics-server.ts): a scraper's token, then its access to /metrics. */
export const METRICS_AUTH_RULES: readonly V1PolicyRule[] = [
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
];
const METRICS_AUTH_GRANTS: readonly Grant[] = METRICS_AUTH_RULES.map((rule) => ({ ...rule, why: "The metrics endpoint (runtime/metrics-server.ts): a scraper's token is reviewed, then its access to /metrics." }));

/** The controller (KubeVirt's virt-controller): VM → VMI → launcher pod. */
export const CONTROLLER_GRANTS: readonly Grant[] = [
  { why: 'VM controller: informer (list, watch); a Start request on a Halted VM sets runStrategy, and the VM finalizer is set and removed (JSON patches).', apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['list', 'watch', 'patch'] },
  { why: 'VM status, computed once per reconcile and written when changed.', apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['update'] },
  { why: 'VMI: informer; create, a get that lets a deleted VM go or deletes the VMI of a deleted VM; the VMI finalizer and an orphaned owner reference (JSON patches).', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'create', 'delete', 'patch'] },
  { why: 'VMI phases up to Scheduled, nodeName, activePods, the removal of evacuationNodeName: a JSON patch of the status subresource (ADR 0008).', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances/status'], verbs: ['patch'] },
  { why: 'developerConfiguration.useEmulation decides whether launcher pods request /dev/kvm.', apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['list', 'watch'] },
  { why: 'Instancetype and preference expansion reads them from informers.', apiGroups: ['instancetype.kubevirt.io'], resources: INSTANCETYPE_RESOURCES, verbs: ['list', 'watch'] },
  { why: "The VM's snapshot of its instancetype/preference: created once, read back by name.", apiGroups: ['apps'], resources: ['controllerrevisions'], verbs: ['get', 'create'] },
  { why: 'Launcher pods: informer, create, a get after AlreadyExists, delete when the VMI is deleted.', apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { why: "A VMI's PVCs must exist before its launcher pod is created (ErrorPvcNotFound otherwise); their access modes make the VMI LiveMigratable or not.", apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get'] },
  { why: 'Migration controller: informer of VirtualMachineInstanceMigrations; the evacuation controller creates one for a VMI a drain marked (generateName kubevirt-evacuation-).', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ['list', 'watch', 'create'] },
  { why: "The migration's status (phase, migrationState, conditions): a JSON patch of the status subresource.", apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations/status'], verbs: ['patch'] },
  { why: 'The MigrationPolicy that matches a VMI (listed when its target pod is created) and the labels of its namespace.', apiGroups: ['migrations.kubevirt.io'], resources: ['migrationpolicies'], verbs: ['list'] },
  { why: "A MigrationPolicy's namespaceSelector is matched against the VMI's namespace's labels.", apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
  { why: 'Events on VMs and VMIs.', apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ...METRICS_AUTH_GRANTS,
];

/** The node handler (KubeVirt's virt-handler): the launchers of its node. */
export const NODE_HANDLER_GRANTS: readonly Grant[] = [
  { why: 'The VMI informer (field selector status.nodeName) and the soft-reboot request, consumed by a JSON patch of its annotation.', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'patch'] },
  { why: 'The status the handler owns: a JSON patch of those fields of the status subresource (ADR 0008); a migration target\'s handler writes the VMI\'s migrationState too (a get first: the VMI is not on its node yet).', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances/status'], verbs: ['patch'] },
  { why: 'Migrations: the target node prepares the incoming launcher for one, the source aborts one that is deleted (informer).', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ['list', 'watch'] },
  { why: 'Node labels and the kubevirt.io/heartbeat annotation (read, then merge patch).', apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] },
  { why: 'Its node conditions (kubevm.io/CPUVulnerable, NestedVirtualization, KSM): a strategic merge patch by condition type.', apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
  { why: 'Events on the VMI for the transitions it reports.', apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { why: "The launchers' input: an informer of the launcher pods bound to its node (field selector spec.nodeName), each handed its VMI (a get of the VMI). Read only.", apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  ...METRICS_AUTH_GRANTS,
];

/** Lets a scraper (Prometheus' service account) read every component's /metrics; an admin binds it. */
export function renderMetricsReaderRole(target: InstallTarget): Manifest {
  return {
    apiVersion: RBAC_API,
    kind: 'ClusterRole',
    metadata: { name: METRICS_READER_ROLE, labels: managedLabels('metrics', target) },
    rules: [{ nonResourceURLs: [METRICS_PATH], verbs: ['get'] }],
  };
}

function policyRules(grants: readonly Grant[]): V1PolicyRule[] {
  return grants.map(({ why: _why, ...rule }) => rule);
}

function serviceAccountSubject(component: ComponentKey, target: InstallTarget): RbacV1Subject {
  return { kind: 'ServiceAccount', name: COMPONENTS[component].name, namespace: target.namespace };
}

export function serviceAccount(component: ComponentKey, label: string, target: InstallTarget): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: COMPONENTS[component].name, namespace: target.namespace, labels: managedLabels(label, target) },
  };
}

export function clusterRoleWithBinding(component: ComponentKey, label: string, grants: readonly Grant[], target: InstallTarget): Manifest[] {
  const name = COMPONENTS[component].name;
  const labels = managedLabels(label, target);
  return [
    { apiVersion: RBAC_API, kind: 'ClusterRole', metadata: { name, labels }, rules: policyRules(grants) },
    {
      apiVersion: RBAC_API,
      kind: 'ClusterRoleBinding',
      metadata: { name, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [serviceAccountSubject(component, target)],
    },
  ];
}

/** A Role in the component's namespace with these grants, and its binding. */
export function namespaceRoleWithBinding(component: ComponentKey, label: string, name: string, grants: readonly Grant[], target: InstallTarget): Manifest[] {
  const labels = managedLabels(label, target);
  return [
    { apiVersion: RBAC_API, kind: 'Role', metadata: { name, namespace: target.namespace, labels }, rules: policyRules(grants) },
    {
      apiVersion: RBAC_API,
      kind: 'RoleBinding',
      metadata: { name, namespace: target.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [serviceAccountSubject(component, target)],
    },
  ];
}

/** A Role on one Lease of the component's namespace, and its binding. */
function leaderElectionRole(component: ComponentKey, label: string, target: InstallTarget): Manifest[] {
  const lease = COMPONENTS[component].name;
  const name = `${lease}-leader-election`;
  const labels = managedLabels(label, target);
  return [
    {
      apiVersion: RBAC_API,
      kind: 'Role',
      metadata: { name, namespace: target.namespace, labels },
      rules: [
        // The first candidate creates the Lease, so "create" cannot be narrowed by resourceNames.
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [lease], verbs: ['get', 'update'] },
      ],
    },
    {
      apiVersion: RBAC_API,
      kind: 'RoleBinding',
      metadata: { name, namespace: target.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [serviceAccountSubject(component, target)],
    },
  ];
}

export function renderControllerRbac(target: InstallTarget): Manifest[] {
  return [
    serviceAccount('controller', 'controller', target),
    ...clusterRoleWithBinding('controller', 'controller', CONTROLLER_GRANTS, target),
    ...leaderElectionRole('controller', 'controller', target),
  ];
}

export function renderNodeHandlerRbac(target: InstallTarget): Manifest[] {
  return [serviceAccount('nodeHandler', 'node-handler', target), ...clusterRoleWithBinding('nodeHandler', 'node-handler', NODE_HANDLER_GRANTS, target)];
}
