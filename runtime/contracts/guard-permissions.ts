// The permissions kubevm's guards check with a SubjectAccessReview (SECURITY.md, "The three
// guards"), declared once: the validating webhook asks for them, the operator renders the role that
// grants entering launcher pods, and the docs name them. None is granted by an aggregated role
// (kubevirt.io:admin/edit/view, Kubernetes' admin/edit/view): an admin grants them on purpose.

/** The API group of both permissions: KubeVirt's subresource group, where RBAC rules for VMs already live. */
export const GUARD_GROUP = 'subresources.kubevirt.io';

/**
 * Entering a launcher pod (`kubectl exec`, `attach`, `port-forward` on the pod, which reach QEMU's
 * process and its sockets directly): verb `exec`, `attach` or `portforward` on
 * `virtualmachineinstances/launcher`, named by the VMI. Normal VM use (console, VNC, the
 * `virtualmachineinstances/portforward` subresource) never needs it.
 */
export const LAUNCHER_ENTRY = {
  group: GUARD_GROUP,
  resource: 'virtualmachineinstances',
  subresource: 'launcher',
  verbs: ['exec', 'attach', 'portforward'],
} as const;
export type LauncherEntryVerb = (typeof LAUNCHER_ENTRY.verbs)[number];

/** The ClusterRole the operator renders with the three LAUNCHER_ENTRY verbs; bound by an admin, never aggregated. */
export const LAUNCHER_ENTRY_ROLE = 'kubevm.io:launcher-entry';

/**
 * Requesting a host device or GPU in a VM or VMI (besides the KubeVirt CR permitting its resource
 * name): verb `use` on `hostdevices`, the resource name (e.g. `nvidia.com/GP100`) as the name.
 * Granted per namespace (Role) or cluster-wide (ClusterRole), optionally limited by resourceNames.
 */
export const HOST_DEVICE_USE = { group: GUARD_GROUP, resource: 'hostdevices', verb: 'use' } as const;

/** `verb resource/subresource in API group "g"`, as denial messages name a permission. */
export function describePermission(p: { verb: string; group: string; resource: string; subresource?: string; name?: string }): string {
  const resource = p.subresource ? `${p.resource}/${p.subresource}` : p.resource;
  return `"${p.verb}" on "${resource}" in API group "${p.group}"${p.name ? ` (name ${JSON.stringify(p.name)})` : ''}`;
}
