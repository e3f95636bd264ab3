// The launcher's input (ADR 0007), declared once: the VMI a launcher runs reaches it from its node
// handler over a socket in the pod's private directory, as KubeVirt's virt-handler hands the domain
// to virt-launcher, not through the API server. The launcher listens on `input.sock` until a
// delivery names the VMI of its own pod (KUBEVM_VMI_UID, set by the controller in the pod's spec),
// answers, removes the socket and goes on; the handler sends one line and reads one.
//
// Why not a Secret the pod mounts: the kubelet reads a pod's Secrets through the node authorizer,
// which learns that the pod is on the node a moment after the kubelet does. The first read is then
// refused and retried after about a second (bench/vm-startup.md: 6 of 10 pods of a burst), a second
// on every start. Why not an annotation: the spec carries cloud-init user data, and more people may
// read pods than Secrets.
import { z } from 'zod';
import type { VirtualMachineInstance } from '../api/kubevirt/v1/virtualmachineinstance.js';

/** The longest delivery line: a VMI object is at most etcd's 1.5 MiB, JSON re-encoding aside. */
export const LAUNCHER_INPUT_MAX_BYTES = 3 * 1024 * 1024;
/** The longest answer line. */
export const LAUNCHER_INPUT_ANSWER_MAX_BYTES = 64 * 1024;

/** What the handler sends: the part of the VMI the launcher runs (launcherInputVmi). */
export const LauncherInputDelivery = z.object({ vmi: z.record(z.string(), z.unknown()) });
export type LauncherInputDelivery = z.infer<typeof LauncherInputDelivery>;

/** What the launcher answers: taken, or refused with the reason (the launcher then keeps listening). */
export const LauncherInputAnswer = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), error: z.string() })]);
export type LauncherInputAnswer = z.infer<typeof LauncherInputAnswer>;

/** The part of the VMI a launcher runs: its identity and spec, nothing of its status. */
export function launcherInputVmi(vmi: VirtualMachineInstance): Record<string, unknown> {
  const metadata = vmi.metadata ?? {};
  return {
    apiVersion: vmi.apiVersion,
    kind: vmi.kind,
    metadata: { name: metadata.name, namespace: metadata.namespace, uid: metadata.uid },
    spec: vmi.spec,
  };
}
