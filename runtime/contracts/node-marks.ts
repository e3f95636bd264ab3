// The labels and annotation the node handler puts on its node, declared once: the node handler
// writes them, the controller and the scheduler read them, and the operator removes them when
// kubevm is uninstalled (nothing of kubevm's stays on a node).

/** KubeVirt's: the node runs a healthy handler and may receive VMs. */
export const schedulableLabel = 'kubevirt.io/schedulable';
/** KubeVirt's: RFC 3339 time of the handler's last heartbeat. */
export const heartbeatAnnotation = 'kubevirt.io/heartbeat';
/** KubeVirt's prefix: cpu-vendor.node.kubevirt.io/Intel=true. */
export const cpuVendorLabelPrefix = 'cpu-vendor.node.kubevirt.io/';
export const kvmUsableLabel = 'kubevm.io/kvm-usable';
export const hostCpuModelLabel = 'kubevm.io/host-cpu-model';
export const qemuVersionLabel = 'kubevm.io/qemu-version';
/** cpu-vulnerability.node.kubevm.io/<name>=not-affected|mitigated|vulnerable|unknown, one per file of /sys/devices/system/cpu/vulnerabilities. */
export const cpuVulnerabilityLabelPrefix = 'cpu-vulnerability.node.kubevm.io/';
/** "true" when any CPU vulnerability is reported unmitigated: keep sensitive VMs off (nodeSelector "false"). */
export const cpuVulnerableLabel = 'kubevm.io/cpu-vulnerable';
/** Whether this node's KVM offers nested virtualization to its guests (kvm_intel/kvm_amd `nested`). */
export const nestedVirtualizationLabel = 'kubevm.io/nested-virtualization';
/**
 * Whether KVM ran guests on this node, as the launchers found it: "true" once a launcher's probe
 * (QEMU creating a KVM VM) succeeded, "false" when the launchers probed and fell back to TCG.
 * Unlike kvm-usable (the device opens), this is evidence; absent until a launcher has probed, and
 * kept across handler restarts until new evidence.
 */
export const kvmVerifiedLabel = 'kubevm.io/kvm-verified';
/** Whether the node itself is a virtual machine (the CPU's `hypervisor` flag): its guests are nested. */
export const nodeIsVirtualLabel = 'kubevm.io/node-is-virtual';

/** KubeVirt's: "true" where the node handler turned KSM on (ksmConfiguration selects the node). */
export const ksmEnabledLabel = 'kubevirt.io/ksm-enabled';
/** KubeVirt's: "true" while KSM runs because the node handler turned it on, so it turns off only what it turned on. */
export const ksmHandlerManagedAnnotation = 'kubevirt.io/ksm-handler-managed';

/** Node conditions the node handler writes (nodes/status), kubevm's names: True, False or Unknown with a reason. */
export const cpuVulnerableCondition = 'kubevm.io/CPUVulnerable';
export const nestedVirtualizationCondition = 'kubevm.io/NestedVirtualization';
export const ksmCondition = 'kubevm.io/KSM';
export const NODE_HANDLER_CONDITIONS: readonly string[] = [cpuVulnerableCondition, nestedVirtualizationCondition, ksmCondition];

const NODE_HANDLER_MARKS: readonly string[] = [
  schedulableLabel,
  heartbeatAnnotation,
  kvmUsableLabel,
  hostCpuModelLabel,
  qemuVersionLabel,
  cpuVulnerableLabel,
  nestedVirtualizationLabel,
  kvmVerifiedLabel,
  nodeIsVirtualLabel,
  ksmEnabledLabel,
  ksmHandlerManagedAnnotation,
];

/** Whether a node label or annotation key is one the node handler writes. */
export function isNodeHandlerMark(key: string): boolean {
  return NODE_HANDLER_MARKS.includes(key) || key.startsWith(cpuVendorLabelPrefix) || key.startsWith(cpuVulnerabilityLabelPrefix);
}
