// VM lifecycle end to end on the full local cluster with kubevm installed (make images,
// scripts/install-kubevm.sh): the deployed controller and node handler, the real kubelet, real
// launcher pods running QEMU. What a user does is what the test does: kubectl apply a
// VirtualMachine, watch it run, read the guest's serial console, power the guest off, delete it.
//
// Assumes (the contract, not a live coordination):
// - kubevm is installed in namespace kubevirt (controller Deployment, node handler DaemonSet), the
//   KubeVirt CR sets developerConfiguration.useEmulation when the node has no KVM;
// - the test guest images of test/guests are in the node's containerd: a kernel-boot container
//   ($KUBEVM_E2E_KERNEL_IMAGE, /boot/vmlinuz and /boot/initramfs.cpio.gz) and a containerDisk
//   ($KUBEVM_E2E_DISK_IMAGE, /disk/disk.qcow2);
// - the launcher copies the serial console to its log when devices.logSerialConsole is true, and
//   the busybox guest prints KUBEVM-GUEST-BOOTED, runs a "#!" cloud-init user-data script, and
//   powers off on `poweroff -f` (the launcher then exits 0 and the node handler writes Succeeded);
// - a launcher pod deleted by force fails its VMI (the controller: pod gone → Failed).
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { HttpMethod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, localClusterSetting, requireCluster } from '../integration/runtime-support.js';
import { diskImage, kernelImage } from './guest-images.js';
import { requireKubevmController } from './kubevm-installed.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(600_000);


function kubectlBinary(): string {
  const path = localClusterSetting('KUBEVM_KUBECTL');
  return path && existsSync(path) ? path : 'kubectl';
}

function kubectl(args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectlBinary(), args, { env: process.env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`kubectl ${args.join(' ')}: ${stderr || stdout || error.message}`));
      else resolve(stdout);
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

interface VM extends KubeObject {
  status?: { printableStatus?: string; ready?: boolean; observedGeneration?: number; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}
interface VMI extends KubeObject {
  status?: { phase?: string; nodeName?: string; activePods?: Record<string, string> };
}
interface Pod extends KubeObject {
  status?: { phase?: string };
}

const vmResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };

let client: KubeClient;
let namespace: string;

/** A VirtualMachine manifest as a user writes it (YAML through kubectl). */
function vmYaml(name: string, runStrategy: string, options: { userData?: string; extraVolumes?: string; extraDisks?: string; diskImage?: string; nodeSelector?: string } = {}): string {
  const userData = options.userData ?? '#!/bin/sh\necho KUBEVM-E2E-USERDATA\n';
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  runStrategy: ${runStrategy}
  template:
    metadata:
      labels:
        kubevirt.io/vm: ${name}
    spec:
      terminationGracePeriodSeconds: 10
${options.nodeSelector ? `      nodeSelector:\n        ${options.nodeSelector}\n` : ''}      domain:
        memory:
          guest: 256Mi
        firmware:
          kernelBoot:
            kernelArgs: console=ttyS0 kubevm.counter=0
            container:
              image: ${kernelImage}
              imagePullPolicy: IfNotPresent
              kernelPath: /boot/vmlinuz
              initrdPath: /boot/initramfs.cpio.gz
        devices:
          logSerialConsole: true
          disks:
            - name: root
              disk:
                bus: virtio
            - name: cloudinit
              disk:
                bus: virtio
${options.extraDisks ?? ''}      volumes:
        - name: root
          containerDisk:
            image: ${options.diskImage ?? diskImage}
            imagePullPolicy: IfNotPresent
        - name: cloudinit
          cloudInitNoCloud:
            userData: |
${userData.split('\n').map((line) => `              ${line}`).join('\n')}
${options.extraVolumes ?? ''}`;
}

const vm = (name: string) => client.resource<VM>(vmResource).find(name, namespace);
const vmi = (name: string) => client.resource<VMI>(vmiResource).find(name, namespace);

async function launcherPod(name: string): Promise<Pod | undefined> {
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
  return pods.items.find((pod) => pod.metadata?.annotations?.['kubevirt.io/domain'] === name && !pod.metadata?.deletionTimestamp);
}

async function serialLog(podName: string): Promise<string> {
  try {
    const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${podName}/log`, { query: { container: 'compute' } });
    return typeof text === 'string' ? text : JSON.stringify(text);
  } catch {
    return '';
  }
}

async function printable(name: string): Promise<string | undefined> {
  return (await vm(name))?.status?.printableStatus;
}

/**
 * Proves the controller has reconciled the VM as it is now, instead of watching for a while: a
 * template label bumps the generation, and the controller writes status.observedGeneration at the
 * end of the reconcile that saw it, after any VMI it decided to create or delete.
 */
async function reconciled(name: string): Promise<void> {
  const poked = await client.resource<VM>(vmResource).patch(name, namespace, { spec: { template: { metadata: { labels: { 'kubevm.io/e2e-poke': String(Date.now()) } } } } }, 'merge');
  const generation = poked.metadata?.generation ?? 0;
  await eventually(`VM ${name} reconciled at generation ${generation}`, 60_000, async () => ((await vm(name))?.status?.observedGeneration ?? 0) >= generation);
}

async function runningVMIUid(name: string): Promise<string> {
  await eventually(`VMI ${name} Running`, 300_000, async () => (await vmi(name))?.status?.phase === 'Running');
  return (await vmi(name))?.metadata?.uid ?? '';
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  namespace = await createTestNamespace(client, 'kubevm-e2e-vm');
}, 120_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('VM lifecycle on the real cluster', () => {
  it('kubectl apply (Always) → VMI Running → guest booted; kubectl delete vm → nothing left', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('lifecycle', 'Always'));
    await runningVMIUid('lifecycle');
    await eventually('VM Running', 60_000, async () => (await printable('lifecycle')) === 'Running');
    const pod = await launcherPod('lifecycle');
    expect(pod).toBeDefined();
    await eventually('the guest to boot (serial console)', 300_000, async () => (await serialLog(pod?.metadata?.name ?? '')).includes('KUBEVM-GUEST-BOOTED'));
    // The guest runs cloud-init's user-data after its boot marker: wait for it, bounded.
    await eventually('the cloud-init user-data to run in the guest', 120_000, async () => (await serialLog(pod?.metadata?.name ?? '')).includes('KUBEVM-E2E-USERDATA'));
    expect((await kubectl(['get', 'vm', 'lifecycle', '-n', namespace])).split('\n')[1]).toMatch(/\bRunning\b/);

    await kubectl(['delete', 'vm', 'lifecycle', '-n', namespace, '--wait=true']);
    await eventually('VMI gone', 120_000, async () => (await vmi('lifecycle')) === undefined);
    await eventually('launcher pod gone', 120_000, async () => (await launcherPod('lifecycle')) === undefined);
  });

  // The guest powers itself off (Succeeded), or its launcher pod is killed (Failed):
  //   Always restarts after both; RerunOnFailure only after Failed; Once never.
  const poweroff = '#!/bin/sh\necho KUBEVM-E2E-USERDATA\nsleep 2\npoweroff -f\n';

  it('Always restarts a guest that powered itself off', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('always-off', 'Always', { userData: poweroff }));
    const first = await runningVMIUid('always-off');
    await eventually('a new VMI after the guest powered off', 300_000, async () => {
      const current = await vmi('always-off');
      return current !== undefined && current.metadata?.uid !== first;
    });
  });

  it('RerunOnFailure leaves a guest that powered off stopped, and restarts one that failed', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('rerun-off', 'RerunOnFailure', { userData: poweroff }));
    const off = await runningVMIUid('rerun-off');
    await eventually('Stopped after poweroff', 300_000, async () => (await printable('rerun-off')) === 'Stopped');
    // The controller stops (deletes) the Succeeded VMI, as KubeVirt does; it must not replace it.
    await reconciled('rerun-off');
    const after = await vmi('rerun-off');
    expect(after === undefined || after.metadata?.uid === off).toBe(true);
    if (after !== undefined) {
      await eventually('the Succeeded VMI deleted', 120_000, async () => (await vmi('rerun-off')) === undefined);
      await reconciled('rerun-off');
      expect(await vmi('rerun-off')).toBeUndefined();
    }

    await kubectl(['apply', '-f', '-'], vmYaml('rerun-fail', 'RerunOnFailure'));
    const first = await runningVMIUid('rerun-fail');
    const pod = await launcherPod('rerun-fail');
    await kubectl(['delete', 'pod', pod?.metadata?.name ?? '', '-n', namespace, '--grace-period=0', '--force']);
    await eventually('a restarted VMI after the failure', 300_000, async () => {
      const current = await vmi('rerun-fail');
      return current?.metadata?.uid !== undefined && current.metadata.uid !== first && current.status?.phase === 'Running';
    });
  });

  it('Once never restarts, whatever the outcome', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('once-off', 'Once', { userData: poweroff }));
    const first = await runningVMIUid('once-off');
    await eventually('VMI Succeeded', 300_000, async () => (await vmi('once-off'))?.status?.phase === 'Succeeded');
    await reconciled('once-off');
    const after = await vmi('once-off');
    expect(after?.metadata?.uid).toBe(first);
    expect(after?.metadata?.deletionTimestamp).toBeUndefined();
    expect(await printable('once-off')).toBe('Stopped');
  });

  it('Manual starts and stops only on request', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('manual', 'Manual'));
    await eventually('Stopped', 60_000, async () => (await printable('manual')) === 'Stopped');
    expect(await vmi('manual')).toBeUndefined();
    await client.resource<VM>(vmResource).patchStatus('manual', namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
    const uid = await runningVMIUid('manual');
    await client.resource<VM>(vmResource).patchStatus('manual', namespace, { status: { stateChangeRequests: [{ action: 'Stop', uid }] } });
    await eventually('VMI stopped', 180_000, async () => (await vmi('manual')) === undefined);
    await eventually('Stopped', 60_000, async () => (await printable('manual')) === 'Stopped');
  });
});

// Issue 6: killing the launcher process or the controller leader mid-lifecycle loses no VM and
// never makes a second launcher pod for it. (The node handler's restart is test/e2e/node-handler-restart.)
describe('component failures lose no VM', () => {
  /** Launcher pods of a VM that are not being deleted; sampled while waiting, never more than one. */
  async function livePods(name: string): Promise<number> {
    const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    return pods.items.filter((pod) => pod.metadata?.annotations?.['kubevirt.io/domain'] === name && !pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Failed' && pod.status?.phase !== 'Succeeded').length;
  }

  async function bootedAgain(name: string, notUid: string): Promise<void> {
    let most = 0;
    await eventually(`${name} running and booted again`, 300_000, async () => {
      most = Math.max(most, await livePods(name));
      const current = await vmi(name);
      if (!current || current.metadata?.uid === notUid || current.status?.phase !== 'Running') return false;
      const pod = await launcherPod(name);
      return (await serialLog(pod?.metadata?.name ?? '')).includes('KUBEVM-GUEST-BOOTED');
    });
    expect(most).toBeLessThanOrEqual(1);
    expect(await livePods(name)).toBe(1);
    expect(await printable(name)).toBe('Running');
  }

  it('a killed launcher process: the VM comes back (Always), with one launcher pod at any time', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('launcher-kill', 'Always'));
    const first = await runningVMIUid('launcher-kill');
    const pod = await launcherPod('launcher-kill');
    await eventually('the guest to boot', 300_000, async () => (await serialLog(pod?.metadata?.name ?? '')).includes('KUBEVM-GUEST-BOOTED'));
    // The test runs on the node: QEMU is named guest=<namespace>_<name>; its parent is the launcher.
    const qemu = execFileSync('pgrep', ['-f', `guest=${namespace}_launcher-kill,`], { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
    const launcherPid = Number(readFileSync(`/proc/${qemu}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
    expect(launcherPid).toBeGreaterThan(1);
    process.kill(launcherPid, 'SIGKILL');
    await bootedAgain('launcher-kill', first);
  });

  it('a killed controller leader mid-start: the new leader converges without a second VMI or pod', async () => {
    const leases = await client.request(HttpMethod.GET, '/apis/coordination.k8s.io/v1/namespaces/kubevirt/leases/kubevm-controller');
    const leader = (leases as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? '';
    expect(leader).not.toBe('');
    await kubectl(['apply', '-f', '-'], vmYaml('leader-kill', 'Always'));
    await kubectl(['delete', 'pod', leader, '-n', 'kubevirt', '--grace-period=0', '--force']);
    await bootedAgain('leader-kill', '');
    const vmis = await client.resource<VMI>(vmiResource).list({ namespace });
    expect(vmis.items.filter((item) => item.metadata?.name === 'leader-kill')).toHaveLength(1);
    const after = (await client.request(HttpMethod.GET, '/apis/coordination.k8s.io/v1/namespaces/kubevirt/leases/kubevm-controller')) as { spec?: { holderIdentity?: string } };
    expect(after.spec?.holderIdentity).not.toBe(leader);
  });
});

describe('start failures a user can act on', () => {
  async function failureOf(name: string, status: string, conditionType: string): Promise<string> {
    await eventually(`${name} ${status}`, 300_000, async () => (await printable(name)) === status);
    return (await vm(name))?.status?.conditions?.find((c) => c.type === conditionType)?.message ?? '';
  }

  it('an unschedulable VM shows ErrorUnschedulable with the scheduler\'s reason', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('unschedulable', 'Always', { nodeSelector: 'kubevm.io/no-such-node: "true"' }));
    const message = await failureOf('unschedulable', 'ErrorUnschedulable', 'PodScheduled');
    expect(message).toMatch(/node\(s\) didn't match Pod's node affinity\/selector|nodes are available/);
    expect(message).toContain('nodeSelector');
  });

  it('a missing PVC shows ErrorPvcNotFound naming the claim', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      vmYaml('no-pvc', 'Always', {
        extraDisks: '            - name: data\n              disk:\n                bus: virtio\n',
        extraVolumes: '        - name: data\n          persistentVolumeClaim:\n            claimName: does-not-exist\n',
      }),
    );
    const message = await failureOf('no-pvc', 'ErrorPvcNotFound', 'Synchronized');
    expect(message).toContain(`PersistentVolumeClaim ${namespace}/does-not-exist not found`);
  });

  it('a missing containerDisk image shows ErrImagePull (or ImagePullBackOff) naming the image', async () => {
    await kubectl(['apply', '-f', '-'], vmYaml('no-image', 'Always', { diskImage: 'localhost:5999/kubevm/does-not-exist:1' }));
    await eventually('an image pull error', 300_000, async () => ['ErrImagePull', 'ImagePullBackOff'].includes((await printable('no-image')) ?? ''));
    const message = (await vm('no-image'))?.status?.conditions?.find((c) => c.type === 'Synchronized')?.message ?? '';
    expect(message).toContain('does-not-exist');
  });
});
