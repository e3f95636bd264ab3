// What the node handler tells the cluster about its node: labels the scheduler and the controller
// select on (KubeVirt's names where the meaning is the same) and a heartbeat, so the controller can
// tell a dead handler (stale heartbeat) from a quiet one (fresh heartbeat, nothing to report).
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { KSMConfiguration } from '../runtime/api/index.js';
import type { KubeClient } from '../runtime/kube.js';
import { coreResources } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';
import { silentLogger } from '../runtime/logging.js';
import {
  cpuVendorLabelPrefix,
  cpuVulnerabilityLabelPrefix,
  cpuVulnerableCondition,
  cpuVulnerableLabel,
  heartbeatAnnotation,
  ksmCondition,
  ksmEnabledLabel,
  ksmHandlerManagedAnnotation,
  nestedVirtualizationCondition,
  hostCpuModelLabel,
  kvmUsableLabel,
  kvmVerifiedLabel,
  nestedVirtualizationLabel,
  nodeIsVirtualLabel,
  qemuVersionLabel,
  schedulableLabel,
} from '../runtime/contracts/node-marks.js';
import { DEFAULT_KSM_DIR, reconcileKsm } from './ksm.js';
import type { KsmOutcome } from './ksm.js';

/** How often the heartbeat is renewed; KubeVirt's virt-handler also beats once a minute. */
export const heartbeatPeriodMs = 60_000;

export type VulnerabilityState = 'not-affected' | 'mitigated' | 'vulnerable' | 'unknown';

export interface HostFacts {
  /** /dev/kvm exists and this process can open it read-write. */
  kvmUsable: boolean;
  /** /proc/cpuinfo's "model name" of the first CPU. */
  cpuModelName?: string;
  /** /proc/cpuinfo's vendor_id. */
  cpuVendorId?: string;
  /** e.g. 7.2.22, from `qemu-system-x86_64 --version`. */
  qemuVersion?: string;
  /** The kernel's verdict per CPU vulnerability (/sys/devices/system/cpu/vulnerabilities). */
  cpuVulnerabilities?: Record<string, VulnerabilityState>;
  /** kvm_intel's or kvm_amd's `nested` parameter; undefined when neither module is loaded. */
  nestedVirtualization?: boolean;
  /** The CPU flags include `hypervisor`. */
  nodeIsVirtual?: boolean;
}

/** The state a vulnerabilities file states ("Not affected", "Mitigation: ...", "Vulnerable...", "Unknown: ..."). */
export function vulnerabilityState(text: string): VulnerabilityState {
  const line = text.trim();
  if (/^Not affected/i.test(line)) return 'not-affected';
  if (/^Mitigation/i.test(line)) return 'mitigated';
  if (/^Vulnerable/i.test(line)) return 'vulnerable';
  return 'unknown';
}

/** A label value: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. */
export function toLabelValue(text: string): string {
  return text
    .replace(/\([^)]*\)/g, ' ')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

const vendorNames: Record<string, string> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD' };

/** The verdict of the launchers' KVM probes on this node: any success wins; undefined without a probe. */
export function kvmVerdict(probes: ReadonlyArray<'usable' | 'unusable' | undefined>): boolean | undefined {
  if (probes.includes('usable')) return true;
  return probes.includes('unusable') ? false : undefined;
}

/** The labels the node should carry, as a pure function of the host facts (and the launchers' KVM verdict). */
export function nodeLabels(facts: HostFacts, kvmVerified?: boolean): Record<string, string> {
  const labels: Record<string, string> = {
    [schedulableLabel]: 'true',
    [kvmUsableLabel]: String(facts.kvmUsable),
  };
  if (facts.cpuModelName) {
    const model = toLabelValue(facts.cpuModelName);
    if (model) labels[hostCpuModelLabel] = model;
  }
  if (facts.cpuVendorId) {
    const vendor = vendorNames[facts.cpuVendorId] ?? toLabelValue(facts.cpuVendorId);
    if (vendor) labels[`${cpuVendorLabelPrefix}${vendor}`] = 'true';
  }
  if (facts.qemuVersion) {
    const version = toLabelValue(facts.qemuVersion);
    if (version) labels[qemuVersionLabel] = version;
  }
  if (facts.cpuVulnerabilities) {
    const entries = Object.entries(facts.cpuVulnerabilities).filter(([name]) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name));
    for (const [name, state] of entries) labels[`${cpuVulnerabilityLabelPrefix}${name}`] = state;
    labels[cpuVulnerableLabel] = String(entries.some(([, state]) => state === 'vulnerable'));
  }
  if (facts.nestedVirtualization !== undefined) labels[nestedVirtualizationLabel] = String(facts.nestedVirtualization);
  if (facts.nodeIsVirtual !== undefined) labels[nodeIsVirtualLabel] = String(facts.nodeIsVirtual);
  if (kvmVerified !== undefined) labels[kvmVerifiedLabel] = String(kvmVerified);
  return labels;
}

/** Reads one field of the first processor block of /proc/cpuinfo. */
export function cpuinfoField(cpuinfo: string, field: string): string | undefined {
  const line = cpuinfo.split('\n').find((candidate) => candidate.split(':')[0]?.trim() === field);
  return line?.slice(line.indexOf(':') + 1).trim() || undefined;
}

/** The version from `qemu-system-x86_64 --version` output. */
export function parseQemuVersion(output: string): string | undefined {
  return /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(output)?.[1];
}

export interface HostProbeOptions {
  devRoot?: string;
  procRoot?: string;
  /** sysfs; the container's own /sys shows the host's CPU and kernel modules. */
  sysRoot?: string;
  qemuBinary?: string;
}

/**
 * Looks at the host. "KVM usable" means the device opens read-write; a nested KVM that opens but
 * cannot run a given guest is caught per VM by the launcher, which falls back to TCG when the VMI
 * allows emulation and reports it in the VMI's kubevm.io/Emulation condition.
 */
export async function probeHost(options: HostProbeOptions = {}): Promise<HostFacts> {
  const kvm = path.join(options.devRoot ?? '/', 'dev/kvm');
  let kvmUsable: boolean;
  try {
    kvmUsable = (await stat(kvm)).isCharacterDevice();
    if (kvmUsable) await access(kvm, constants.R_OK | constants.W_OK);
  } catch {
    kvmUsable = false;
  }
  const facts: HostFacts = { kvmUsable };
  try {
    const cpuinfo = await readFile(path.join(options.procRoot ?? '/proc', 'cpuinfo'), 'utf8');
    const model = cpuinfoField(cpuinfo, 'model name');
    const vendor = cpuinfoField(cpuinfo, 'vendor_id');
    if (model) facts.cpuModelName = model;
    if (vendor) facts.cpuVendorId = vendor;
    facts.nodeIsVirtual = (cpuinfoField(cpuinfo, 'flags') ?? '').split(/\s+/).includes('hypervisor');
  } catch {
    // No /proc/cpuinfo (not Linux): no CPU labels.
  }
  const sys = options.sysRoot ?? '/sys';
  try {
    const dir = path.join(sys, 'devices/system/cpu/vulnerabilities');
    const vulnerabilities: Record<string, VulnerabilityState> = {};
    for (const name of (await readdir(dir)).sort()) vulnerabilities[name] = vulnerabilityState(await readFile(path.join(dir, name), 'utf8'));
    facts.cpuVulnerabilities = vulnerabilities;
  } catch {
    // An old kernel without the directory: no vulnerability labels (unknown is not "not vulnerable").
  }
  for (const module of ['kvm_intel', 'kvm_amd']) {
    const nested = await readFile(path.join(sys, 'module', module, 'parameters/nested'), 'utf8').catch(() => undefined);
    if (nested !== undefined) facts.nestedVirtualization = /^(Y|1)/.test(nested.trim());
  }
  try {
    const { stdout } = await promisify(execFile)(options.qemuBinary ?? 'qemu-system-x86_64', ['--version'], { timeout: 5000 });
    const version = parseQemuVersion(stdout);
    if (version) facts.qemuVersion = version;
  } catch {
    // QEMU not in this image: no version label.
  }
  return facts;
}

/** Labels this handler manages, so a fact that went away also takes its label away. */
function isManagedLabel(key: string): boolean {
  return (
    [schedulableLabel, kvmUsableLabel, hostCpuModelLabel, qemuVersionLabel, cpuVulnerableLabel, nestedVirtualizationLabel, nodeIsVirtualLabel, ksmEnabledLabel].includes(key) ||
    key.startsWith(cpuVendorLabelPrefix) ||
    key.startsWith(cpuVulnerabilityLabelPrefix)
  );
}

/**
 * The merge patch that brings the node's managed labels to `wanted` and renews the heartbeat.
 * Labels that are already right are left out, so a steady node costs one small patch a minute.
 */
export function nodePatch(
  current: Record<string, string> | undefined,
  wanted: Record<string, string>,
  now: Date,
  annotations: Record<string, string> = {},
): { metadata: { labels?: Record<string, string | null>; annotations: Record<string, string> } } {
  const labels: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(wanted)) if (current?.[key] !== value) labels[key] = value;
  for (const key of Object.keys(current ?? {})) if (isManagedLabel(key) && !(key in wanted)) labels[key] = null;
  return {
    metadata: {
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      annotations: { ...annotations, [heartbeatAnnotation]: `${now.toISOString().slice(0, 19)}Z` },
    },
  };
}

/** The labels and annotation KSM's outcome puts on the node (KubeVirt's names). */
export function ksmMarks(ksm: KsmOutcome): { labels: Record<string, string>; annotations: Record<string, string> } {
  return { labels: { [ksmEnabledLabel]: String(ksm.managed && ksm.running === true) }, annotations: { [ksmHandlerManagedAnnotation]: String(ksm.managed) } };
}

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
}

type WantedCondition = Omit<NodeCondition, 'lastTransitionTime' | 'lastHeartbeatTime'>;

const namesIn = (states: Record<string, VulnerabilityState>, state: VulnerabilityState): string[] => Object.keys(states).filter((name) => states[name] === state);

/**
 * The node conditions the handler owns, as a pure function of what it found: the CPU's
 * vulnerability verdicts, nested virtualization, KSM. Admins see them in `kubectl describe node`;
 * the labels carry the same facts for node selectors.
 */
export function nodeConditions(facts: HostFacts, ksm: KsmOutcome): WantedCondition[] {
  const conditions: WantedCondition[] = [];
  const states = facts.cpuVulnerabilities;
  if (!states || Object.keys(states).length === 0) {
    conditions.push({ type: cpuVulnerableCondition, status: 'Unknown', reason: 'NotReported', message: 'the kernel reports no CPU vulnerabilities (/sys/devices/system/cpu/vulnerabilities is missing or empty)' });
  } else {
    const vulnerable = namesIn(states, 'vulnerable');
    const mitigated = namesIn(states, 'mitigated');
    const unknown = namesIn(states, 'unknown');
    const detail = [`vulnerable: ${vulnerable.join(', ') || 'none'}`, `mitigated: ${mitigated.join(', ') || 'none'}`, ...(unknown.length > 0 ? [`unknown: ${unknown.join(', ')}`] : [])].join('; ');
    conditions.push(
      vulnerable.length > 0
        ? { type: cpuVulnerableCondition, status: 'True', reason: 'Vulnerable', message: `${detail}; keep sensitive VMs off this node (nodeSelector ${cpuVulnerableLabel}: "false")` }
        : { type: cpuVulnerableCondition, status: 'False', reason: mitigated.length > 0 ? 'Mitigated' : 'NotAffected', message: detail },
    );
  }
  const virtualNode = facts.nodeIsVirtual ? '; this node is itself a virtual machine (CPU flag hypervisor): its guests are nested' : '';
  conditions.push(
    facts.nestedVirtualization === undefined
      ? { type: nestedVirtualizationCondition, status: 'Unknown', reason: 'KvmModuleNotLoaded', message: `neither kvm_intel nor kvm_amd is loaded${virtualNode}` }
      : facts.nestedVirtualization
        ? { type: nestedVirtualizationCondition, status: 'True', reason: 'Enabled', message: `KVM's nested parameter is on: guests here may run hypervisors of their own${virtualNode}` }
        : { type: nestedVirtualizationCondition, status: 'False', reason: 'Disabled', message: `KVM's nested parameter is off${virtualNode}` },
  );
  conditions.push({ type: ksmCondition, status: ksm.running === undefined ? 'Unknown' : ksm.running ? 'True' : 'False', reason: ksm.reason, message: ksm.message });
  return conditions;
}

/**
 * The conditions to write: only those whose status, reason or message changed (a steady node
 * costs no status write). lastTransitionTime moves only when the status flips; times are
 * truncated to seconds, as the API server stores them.
 */
export function conditionsPatch(current: readonly NodeCondition[] | undefined, wanted: readonly WantedCondition[], now: Date): NodeCondition[] {
  const stamp = `${now.toISOString().slice(0, 19)}Z`;
  return wanted.flatMap((condition) => {
    const before = current?.find((c) => c.type === condition.type);
    if (before && before.status === condition.status && before.reason === condition.reason && before.message === condition.message) return [];
    const lastTransitionTime = before && before.status === condition.status && before.lastTransitionTime ? before.lastTransitionTime : stamp;
    return [{ ...condition, lastTransitionTime, lastHeartbeatTime: stamp }];
  });
}

interface NodeObject {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  status?: { conditions?: NodeCondition[] };
}

/** Labels the node and beats the heartbeat every period until stopped. */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private facts: HostFacts | undefined;
  private lastBeat: Date | undefined;
  private lastKsmReason: string | undefined;
  private readonly log: Logger;

  constructor(
    private readonly client: KubeClient,
    private readonly nodeName: string,
    private readonly options: HostProbeOptions & {
      periodMs?: number;
      log?: Logger;
      kvmVerified?: () => boolean | undefined;
      /** The KubeVirt CR's ksmConfiguration (from the DaemonSet); undefined: KSM not configured. */
      ksmConfiguration?: KSMConfiguration;
      /** Where the host's KSM switches are (writable only when the operator mounts them). */
      ksmDir?: string;
    } = {},
  ) {
    this.log = (options.log ?? silentLogger).child({ module: 'heartbeat', node: nodeName });
  }

  /** When the heartbeat was last written successfully. */
  get lastHeartbeat(): Date | undefined {
    return this.lastBeat;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.periodMs ?? heartbeatPeriodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One beat: re-probe the host (devices and QEMU can change under us), KSM, patch, remember. */
  async beat(): Promise<void> {
    try {
      this.facts = await probeHost(this.options);
      const nodes = this.client.resource<NodeObject>(coreResources.nodes);
      const node = await nodes.get(this.nodeName);
      const ksm = await reconcileKsm({
        ksmDir: this.options.ksmDir ?? DEFAULT_KSM_DIR,
        configuration: this.options.ksmConfiguration,
        nodeLabels: node.metadata?.labels ?? {},
        managedBefore: node.metadata?.annotations?.[ksmHandlerManagedAnnotation] === 'true',
      });
      if (ksm.reason === 'NotWritable' || ksm.reason !== this.lastKsmReason) this.log.info({ ksm }, ksm.message);
      this.lastKsmReason = ksm.reason;
      const now = new Date();
      const marks = ksmMarks(ksm);
      const labels = { ...nodeLabels(this.facts, this.options.kvmVerified?.()), ...marks.labels };
      await nodes.patch(this.nodeName, undefined, nodePatch(node.metadata?.labels, labels, now, marks.annotations), 'merge', { fieldManager: 'kubevm-node-handler' });
      const conditions = conditionsPatch(node.status?.conditions, nodeConditions(this.facts, ksm), now);
      // Conditions merge by type (strategic merge): the kubelet's own stay untouched.
      if (conditions.length > 0) await nodes.patchStatus(this.nodeName, undefined, { status: { conditions } }, 'strategic', { fieldManager: 'kubevm-node-handler' });
      this.lastBeat = now;
    } catch (error) {
      this.log.warn({ err: error }, 'heartbeat failed; retrying at the next period');
    }
  }
}
