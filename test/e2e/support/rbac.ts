// Grants for the restricted users of the local cluster (kubevm-ns-editor, kubevm-viewer, ...)
// in a suite's own namespace: a Role with the rules and a RoleBinding to the user, applied by
// kubectl as the admin.
import type { ClusterEnv } from '../../cluster/cluster-env.js';
import { kubectl } from '../../cluster/cluster-env.js';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Role `role` with `rules` in `namespace`, bound to the user `user`. */
export async function grant(env: ClusterEnv, namespace: string, role: string, user: string, rules: PolicyRule[]): Promise<void> {
  const objects = [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: role, namespace }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${role}-${user}`, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    },
  ];
  await kubectl(env, ['apply', '-f', '-'], { input: objects.map((o) => JSON.stringify(o)).join('\n') });
}
