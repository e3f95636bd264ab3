// KVM when the pod can use /dev/kvm, else TCG emulation only when the cluster allows it
// (KubeVirt's spec.configuration.developerConfiguration.useEmulation).
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import type { Accelerator } from './qemu-args.js';

export interface AccelDecision {
  accel: Accelerator;
  /** Why: shown in the launcher's status and the VMI condition message. */
  reason: string;
  /** What the KVM probe found, when there was one (the node's evidence that KVM runs guests). */
  kvmProbe?: 'usable' | 'unusable';
}

export interface AccelOptions {
  kvmDevice: string;
  allowEmulation: boolean;
  /** 'auto' probes; 'kvm'/'tcg' force (tests force tcg where KVM cannot run guests). */
  mode: 'auto' | Accelerator;
  qemuBinary: string;
}

/**
 * Asks QEMU itself to create a KVM VM (machine none, nothing runs). Catches a missing or
 * inaccessible /dev/kvm and a module that refuses KVM_CREATE_VM; a KVM that creates VMs but
 * cannot run vCPUs (some nested setups) passes, and the guest start then fails visibly.
 */
export function probeKvm(qemuBinary: string, timeoutMs = 10_000): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const child = spawn(qemuBinary, ['-machine', 'none,accel=kvm', '-nodefaults', '-no-user-config', '-display', 'none', '-S', '-qmp', 'stdio'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, detail: stderr.trim() || `exit ${code}` });
    });
    child.stdin.end('{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n');
  });
}

export async function chooseAccelerator(opts: AccelOptions): Promise<AccelDecision> {
  if (opts.mode === 'tcg') {
    if (!opts.allowEmulation) throw new Error('TCG was requested but emulation is not allowed (useEmulation is off)');
    return { accel: 'tcg', reason: 'emulation (TCG) configured for this launcher' };
  }
  let kvmProblem: string;
  // Evidence about the node only when the pod has the device: without it (an emulating VM's pod
  // does not request it) the probe says nothing about the node's KVM.
  let kvmProbe: 'unusable' | undefined;
  try {
    await access(opts.kvmDevice, constants.R_OK | constants.W_OK);
    const probe = await probeKvm(opts.qemuBinary);
    if (probe.ok) return { accel: 'kvm', reason: `${opts.kvmDevice} is usable`, kvmProbe: 'usable' };
    kvmProblem = `QEMU cannot use KVM: ${probe.detail}`;
    kvmProbe = 'unusable';
  } catch (err) {
    kvmProblem = `${opts.kvmDevice} is not accessible: ${(err as Error).message}`;
  }
  if (opts.mode === 'kvm') throw new Error(`KVM was requested but ${kvmProblem}`);
  if (opts.allowEmulation) return { accel: 'tcg', reason: `${kvmProblem}; using emulation (TCG) because useEmulation is on`, ...(kvmProbe ? { kvmProbe } : {}) };
  throw new Error(`${kvmProblem}, and emulation is not allowed (useEmulation is off): the VM cannot run on this node`);
}
