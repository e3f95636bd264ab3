// Two of the three RBAC guards (SECURITY.md, "The three guards"); the third, migration, is RBAC
// alone (kubevirt.io:migrate, see operator/render/user-roles.ts).
// - Entering a launcher pod (CONNECT on pods/exec, pods/attach, pods/portforward) needs a
//   permission no aggregated role grants: the pod holds QEMU, the guest's memory and its sockets,
//   and a user who may exec into pods in a namespace (every `edit` holder) would otherwise reach
//   them. Pods that are not launcher pods pass untouched.
// - A host device or GPU in a VM or VMI needs, besides the KubeVirt CR permitting its resource
//   name (rules.ts), that the requesting user may `use` that resource name.
// Each denial names the permission that is missing, so the admin knows what to grant.
import type { LauncherEntryVerb } from '../../runtime/contracts/guard-permissions.js';
import { HOST_DEVICE_USE, LAUNCHER_ENTRY, LAUNCHER_ENTRY_ROLE, describePermission } from '../../runtime/contracts/guard-permissions.js';
import type { DeviceHolder, Findings } from './rules.js';

/** Who sent the request, as the AdmissionReview says (passed on to SubjectAccessReviews as is). */
export interface RequestUser {
  username: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/** A permission to check: namespaced resource attributes of a SubjectAccessReview. */
export interface GuardAttributes {
  namespace: string;
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  name?: string;
}

export interface GuardDecision {
  allowed: boolean;
  reason: string;
}

/** What the guards read from the cluster. */
export interface GuardContext {
  /** The VMI a pod runs, when it is a launcher pod (label kubevirt.io=virt-launcher); undefined otherwise or when it does not exist. */
  launcherPodVmi(namespace: string, podName: string): Promise<string | undefined>;
  /** A SubjectAccessReview for the user. */
  authorize(user: RequestUser, attributes: GuardAttributes): Promise<GuardDecision>;
}

const CONNECT_SUBRESOURCES: Record<string, LauncherEntryVerb> = { exec: 'exec', attach: 'attach', portforward: 'portforward' };

/** The verb of LAUNCHER_ENTRY a CONNECT on this pod subresource needs, or undefined when it is not guarded. */
export function launcherEntryVerb(resource: { group: string; resource: string } | undefined, subResource: string | undefined): LauncherEntryVerb | undefined {
  if (!resource || resource.group !== '' || resource.resource !== 'pods') return undefined;
  return CONNECT_SUBRESOURCES[subResource ?? ''];
}

/**
 * A CONNECT into a pod: undefined when it may go ahead, else the denial message.
 * Throws when the cluster cannot answer (the caller fails closed).
 */
export async function judgeLauncherEntry(
  verb: LauncherEntryVerb,
  namespace: string,
  podName: string,
  user: RequestUser,
  context: GuardContext,
): Promise<string | undefined> {
  const vmi = await context.launcherPodVmi(namespace, podName);
  if (vmi === undefined) return undefined;
  const attributes: GuardAttributes = { namespace, verb, group: LAUNCHER_ENTRY.group, resource: LAUNCHER_ENTRY.resource, subresource: LAUNCHER_ENTRY.subresource, name: vmi };
  const decision = await context.authorize(user, attributes);
  if (decision.allowed) return undefined;
  const kubectlVerb = verb === 'portforward' ? 'port-forward' : verb;
  return (
    `pod "${podName}" is the launcher pod of VirtualMachineInstance "${vmi}": ${kubectlVerb} into it needs ${describePermission(attributes)} ` +
    `in the namespace "${namespace}", which user "${user.username}" does not have (the ClusterRole "${LAUNCHER_ENTRY_ROLE}" grants it; no aggregated role does). ` +
    `For the VM itself use its console, VNC or port-forward subresources (virtctl console, vnc, port-forward).`
  );
}

/**
 * Every host device and GPU of a holder (a VMI's domain.devices at `at`, an instancetype's spec)
 * that the user must be allowed to use: those not already in `before` (an update that keeps a
 * device does not ask again, so writers such as kubevm's controller adding a finalizer need no
 * device rights).
 */
export function requestedDeviceNames(holder: DeviceHolder, at: string, before: DeviceHolder | undefined): Array<{ path: string; name: string }> {
  const had = new Set([...(before?.hostDevices ?? []), ...(before?.gpus ?? [])].map((d) => d.deviceName));
  const out: Array<{ path: string; name: string }> = [];
  for (const field of ['hostDevices', 'gpus'] as const) {
    (holder[field] ?? []).forEach((device, i) => {
      if (device.deviceName && !had.has(device.deviceName)) out.push({ path: `${at}.${field}[${i}].deviceName`, name: device.deviceName });
    });
  }
  return out;
}

/** Adds a denial for each requested device the user may not use. Throws when the cluster cannot answer. */
export async function checkHostDeviceUse(
  devices: ReadonlyArray<{ path: string; name: string }>,
  namespace: string,
  user: RequestUser,
  context: GuardContext,
  findings: Findings,
): Promise<void> {
  const decided = new Map<string, GuardDecision>();
  for (const device of devices) {
    const attributes: GuardAttributes = { namespace, verb: HOST_DEVICE_USE.verb, group: HOST_DEVICE_USE.group, resource: HOST_DEVICE_USE.resource, name: device.name };
    const decision = decided.get(device.name) ?? (await context.authorize(user, attributes));
    decided.set(device.name, decision);
    if (!decision.allowed) {
      findings.denials.push(
        `${device.path}: user "${user.username}" may not use host device ${JSON.stringify(device.name)}: it needs ${describePermission(attributes)} in the namespace "${namespace}" (a Role or ClusterRole an admin binds; no aggregated role grants it)`,
      );
    }
  }
}
