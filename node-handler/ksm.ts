// Kernel samepage merging (KSM) on this node, as KubeVirt's virt-handler does it: on where the
// KubeVirt CR's ksmConfiguration.nodeLabelSelector selects the node, and turned off again only
// where kubevm turned it on (the node's kubevirt.io/ksm-handler-managed annotation remembers that),
// so an admin's own setting is left alone. KSM merges identical pages across guests, which is a
// side channel between them: off is the safe default (SECURITY.md).
// The KSM directory is writable only when the operator mounts it (the KubeVirt CR has a
// ksmConfiguration); otherwise the handler reads it through its container's read-only /sys.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KSMConfiguration } from '../runtime/api/index.js';
import { matchesLabelSelector } from '../runtime/label-selector.js';

/** Where the host's KSM switches are: the container's own (read-only) sysfs by default. */
export const DEFAULT_KSM_DIR = '/sys/kernel/mm/ksm';

export type KsmReason = 'EnabledBySelector' | 'NotSelected' | 'EnabledOutsideKubevm' | 'NotWritable' | 'Unavailable';

export interface KsmOutcome {
  /** KSM runs on the node now (whoever turned it on); undefined when the kernel offers no KSM. */
  running: boolean | undefined;
  /** KSM runs because kubevm turned it on (the annotation's new value). */
  managed: boolean;
  reason: KsmReason;
  message: string;
}

export interface KsmInput {
  ksmDir: string;
  /** The KubeVirt CR's ksmConfiguration; undefined: KSM is not configured (no node selected). */
  configuration: KSMConfiguration | undefined;
  nodeLabels: Readonly<Record<string, string>>;
  /** The node's kubevirt.io/ksm-handler-managed annotation was "true". */
  managedBefore: boolean;
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Reads KSM's state and turns it on or off as the configuration says; never throws. */
export async function reconcileKsm(input: KsmInput): Promise<KsmOutcome> {
  const runFile = path.join(input.ksmDir, 'run');
  let running: boolean;
  try {
    running = (await readFile(runFile, 'utf8')).trim() === '1';
  } catch (error) {
    return { running: undefined, managed: false, reason: 'Unavailable', message: `this kernel offers no KSM (${errorText(error)})` };
  }
  const selected = matchesLabelSelector(input.configuration?.nodeLabelSelector, input.nodeLabels);
  const write = async (value: '0' | '1'): Promise<string | undefined> => {
    try {
      await writeFile(runFile, `${value}\n`);
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  };
  if (selected) {
    if (running) return { running, managed: true, reason: 'EnabledBySelector', message: 'KSM runs: the KubeVirt CR\'s ksmConfiguration.nodeLabelSelector selects this node' };
    const failed = await write('1');
    if (failed === undefined) return { running: true, managed: true, reason: 'EnabledBySelector', message: 'KSM turned on: the KubeVirt CR\'s ksmConfiguration.nodeLabelSelector selects this node' };
    return { running: false, managed: false, reason: 'NotWritable', message: `ksmConfiguration selects this node but KSM could not be turned on: ${failed}` };
  }
  if (running && input.managedBefore) {
    const failed = await write('0');
    if (failed === undefined) return { running: false, managed: false, reason: 'NotSelected', message: 'KSM turned off: ksmConfiguration no longer selects this node' };
    return {
      running: true,
      managed: true,
      reason: 'NotWritable',
      message:
        `kubevm turned KSM on here and ksmConfiguration no longer selects this node, but it could not turn it off: ${failed} ` +
        '(the KSM directory is mounted only while the KubeVirt CR has a ksmConfiguration: set a nodeLabelSelector that matches no node before removing it)',
    };
  }
  if (running) return { running, managed: false, reason: 'EnabledOutsideKubevm', message: 'KSM runs, turned on outside kubevm (ksmConfiguration does not select this node; kubevm leaves it as it is)' };
  return { running, managed: false, reason: 'NotSelected', message: 'KSM is off: ksmConfiguration does not select this node' };
}
