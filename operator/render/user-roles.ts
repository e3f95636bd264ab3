// The user-facing ClusterRoles, with KubeVirt's names, labels and rules (virt-operator's
// resource/generate/rbac/cluster.go), limited to what kubevm serves: a manifest or binding written
// for KubeVirt grants the same here. kubevirt.io:admin/edit/view aggregate into Kubernetes'
// admin/edit/view; kubevirt.io:migrate does not (since KubeVirt v1.5 namespace admins may only read
// migrations, migrating is granted explicitly); kubevirt.io:default and
// instancetype.kubevirt.io:view are bound to every authenticated user.
import type { V1PolicyRule } from '@kubernetes/client-node';
import { LAUNCHER_ENTRY, LAUNCHER_ENTRY_ROLE } from '../../runtime/contracts/guard-permissions.js';
import type { InstallTarget, Manifest } from '../install.js';
import { KUBEVIRT_APP_LABEL, managedLabels } from '../install.js';

const RBAC_API = 'rbac.authorization.k8s.io/v1';
const SUBRESOURCES = 'subresources.kubevirt.io';
const KUBEVIRT = 'kubevirt.io';
const INSTANCETYPE = 'instancetype.kubevirt.io';
const MIGRATIONS = 'migrations.kubevirt.io';
const INSTANCETYPES = ['virtualmachineinstancetypes', 'virtualmachineclusterinstancetypes', 'virtualmachinepreferences', 'virtualmachineclusterpreferences'];
const ALL = ['get', 'delete', 'create', 'update', 'patch', 'list', 'watch', 'deletecollection'];
const EDIT = ['get', 'delete', 'create', 'update', 'patch', 'list', 'watch'];
const READ = ['get', 'list', 'watch'];

export const USER_ROLE_NAMES = {
  admin: 'kubevirt.io:admin',
  edit: 'kubevirt.io:edit',
  view: 'kubevirt.io:view',
  migrate: 'kubevirt.io:migrate',
  default: 'kubevirt.io:default',
  instancetypeView: 'instancetype.kubevirt.io:view',
  /** kubevm's own: entering launcher pods (exec, attach, port-forward on the pod), never aggregated. */
  launcherEntry: LAUNCHER_ENTRY_ROLE,
} as const;

// The subresources kubevm's api-server serves. KubeVirt's rules name
// more (snapshots, exports, SEV, USB redirection, ...); those kinds do not exist here, so the
// roles do not mention them.
const VMI_READ_SUBRESOURCES = ['console', 'vnc', 'vnc/screenshot', 'portforward', 'guestosinfo', 'filesystemlist', 'userlist'].map((s) => `virtualmachineinstances/${s}`);
const VMI_ACTIONS = ['pause', 'unpause', 'freeze', 'unfreeze', 'softreboot', 'reset'].map((s) => `virtualmachineinstances/${s}`);
const VM_ACTIONS = ['start', 'stop', 'restart'].map((s) => `virtualmachines/${s}`);
const VMI_VIEW_SUBRESOURCES = ['guestosinfo', 'filesystemlist', 'userlist'].map((s) => `virtualmachineinstances/${s}`);

function editorRules(verbs: string[]): V1PolicyRule[] {
  return [
    { apiGroups: [SUBRESOURCES], resources: VMI_READ_SUBRESOURCES, verbs: ['get'] },
    { apiGroups: [SUBRESOURCES], resources: VMI_ACTIONS, verbs: ['update'] },
    { apiGroups: [SUBRESOURCES], resources: VM_ACTIONS, verbs: ['update'] },
    { apiGroups: [SUBRESOURCES], resources: ['virtualmachines/portforward'], verbs: ['get'] },
    { apiGroups: [KUBEVIRT], resources: ['virtualmachines', 'virtualmachineinstances'], verbs },
    // Since KubeVirt v1.5 only kubevirt.io:migrate creates migrations.
    { apiGroups: [KUBEVIRT], resources: ['virtualmachineinstancemigrations'], verbs: READ },
    { apiGroups: [INSTANCETYPE], resources: INSTANCETYPES, verbs },
    { apiGroups: [MIGRATIONS], resources: ['migrationpolicies'], verbs: READ },
  ];
}

/** The rules of each user-facing ClusterRole. */
export const USER_ROLE_RULES: Record<keyof typeof USER_ROLE_NAMES, V1PolicyRule[]> = {
  admin: editorRules(ALL),
  edit: [...editorRules(EDIT), { apiGroups: [KUBEVIRT], resources: ['kubevirts'], verbs: ['get', 'list'] }],
  view: [
    { apiGroups: [KUBEVIRT], resources: ['kubevirts'], verbs: ['get', 'list'] },
    { apiGroups: [SUBRESOURCES], resources: VMI_VIEW_SUBRESOURCES, verbs: ['get'] },
    { apiGroups: [KUBEVIRT], resources: ['virtualmachines', 'virtualmachineinstances', 'virtualmachineinstancemigrations'], verbs: READ },
    { apiGroups: [INSTANCETYPE], resources: INSTANCETYPES, verbs: READ },
    { apiGroups: [MIGRATIONS], resources: ['migrationpolicies'], verbs: READ },
  ],
  migrate: [
    { apiGroups: [SUBRESOURCES], resources: ['virtualmachines/migrate'], verbs: ['update'] },
    { apiGroups: [KUBEVIRT], resources: ['virtualmachineinstancemigrations'], verbs: ALL },
  ],
  default: [
    { apiGroups: [KUBEVIRT], resources: ['kubevirts'], verbs: ['get', 'list'] },
    { apiGroups: [SUBRESOURCES], resources: ['version'], verbs: ['get', 'list'] },
  ],
  instancetypeView: [{ apiGroups: [INSTANCETYPE], resources: ['virtualmachineclusterinstancetypes', 'virtualmachineclusterpreferences'], verbs: READ }],
  // The admission guard's permission (api-server/admission/guards.ts); pods/exec itself still
  // comes from Kubernetes' edit or admin role.
  launcherEntry: [{ apiGroups: [LAUNCHER_ENTRY.group], resources: [`${LAUNCHER_ENTRY.resource}/${LAUNCHER_ENTRY.subresource}`], verbs: [...LAUNCHER_ENTRY.verbs] }],
};

const AGGREGATE_TO: Partial<Record<keyof typeof USER_ROLE_NAMES, string>> = { admin: 'admin', edit: 'edit', view: 'view' };
// KubeVirt marks the roles bound to everyone as bootstrapping defaults that may be auto-updated.
const BOUND_TO_ALL: ReadonlyArray<keyof typeof USER_ROLE_NAMES> = ['default', 'instancetypeView'];

export function renderUserRoles(target: InstallTarget): Manifest[] {
  const out: Manifest[] = [];
  for (const key of Object.keys(USER_ROLE_NAMES) as Array<keyof typeof USER_ROLE_NAMES>) {
    const name = USER_ROLE_NAMES[key];
    const labels: Record<string, string> = { ...managedLabels('user-roles', target), [KUBEVIRT_APP_LABEL]: '' };
    const aggregate = AGGREGATE_TO[key];
    if (aggregate) labels[`rbac.authorization.k8s.io/aggregate-to-${aggregate}`] = 'true';
    const boundToAll = BOUND_TO_ALL.includes(key);
    if (key === 'default') labels['kubernetes.io/bootstrapping'] = 'rbac-defaults';
    const annotations = boundToAll ? { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } : undefined;
    out.push({ apiVersion: RBAC_API, kind: 'ClusterRole', metadata: { name, labels, ...(annotations ? { annotations } : {}) }, rules: USER_ROLE_RULES[key] });
    if (boundToAll) {
      out.push({
        apiVersion: RBAC_API,
        kind: 'ClusterRoleBinding',
        metadata: { name, labels: { ...managedLabels('user-roles', target), [KUBEVIRT_APP_LABEL]: '' }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }],
      });
    }
  }
  return out;
}
