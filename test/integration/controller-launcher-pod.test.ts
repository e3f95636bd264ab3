// The rendered launcher pod on the REAL kubelet and containerd, in a namespace that enforces the
// Restricted Pod Security Standard: its security context (uid 107, read-only root, no capabilities)
// is admitted and runs, it binds port 80 as uid 107 (the pod's ip_unprivileged_port_start sysctl;
// NET_BIND_SERVICE alone does not, shown by a contrast pod), and the copy (beside the launcher,
// ADR 0006) of a FROM-scratch containerDisk image and of a kernelBoot image lands where the launcher reads them
// (/var/run/kubevirt/container-disks/<volume>/disk/..., /var/run/kubevirt/kernel-boot/boot/...).
// A stand-in launcher (busybox, which is also the copier the real launcher image must carry as
// /bin/busybox) prints what it sees, the VMI file it reads (as uid 107) included. A missing containerDisk image shows as ErrImagePull on the VM.
// Paths inside images reach the copier as literal arguments: shell syntax in them is never run, and
// a path that does not exist or is malformed fails its copy with a message naming the field.
// Needs the full local cluster (make cluster-up; images are built with local-cluster/build-image.sh)
// and no installed kubevm; fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpMethod } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import { ControllerManager } from '../../controller/manager.js';
import type { VirtualMachine, VirtualMachineInstance } from '../../controller/api.js';
import { vmResource } from '../../controller/vm/controller.js';
import { vmiResource } from '../../controller/vmi/controller.js';
import { applyKubevmCrds, clusterClient, useLocalClusterKubeconfig, createTestNamespace, requireCluster, requireNoInstalledController } from './runtime-support.js';
import { eventually } from '../support/eventually.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';
import { renderLauncherPod } from '../../controller/vmi/launcher-pod.js';
import { podFailureMessage } from '../../controller/vmi/status.js';

jest.setTimeout(300_000);

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
useLocalClusterKubeconfig();

const LAUNCHER = 'kubevm-it/fake-launcher:1';
const RESTRICTED_LABELS = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' };
const DISK = 'kubevm-it/fake-disk:1';
type Pod = V1Pod & KubeObject;
const ODD_NAME = 'a$(id)b`id`c\'d"e;f g&&h|i.qcow2';
const launcherConfig = { launcherImage: LAUNCHER, launcherImagePullPolicy: 'IfNotPresent' as const, useEmulation: true };

let client: KubeClient;
let namespace: string;
let manager: ControllerManager | undefined;

function buildImages(): void {
  const work = mkdtempSync(join(tmpdir(), 'kubevm-ctl-images-'));
  try {
    mkdirSync(join(work, 'launcher', 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(work, 'launcher', 'bin', 'busybox'));
    chmodSync(join(work, 'launcher', 'bin', 'busybox'), 0o755);
    // A containerDisk as KubeVirt's convention has it: FROM scratch, /disk/<file>; plus /boot.
    mkdirSync(join(work, 'disk', 'disk'), { recursive: true });
    mkdirSync(join(work, 'disk', 'boot'), { recursive: true });
    writeFileSync(join(work, 'disk', 'disk', 'disk.qcow2'), 'KUBEVM-IT-DISK\n');
    writeFileSync(join(work, 'disk', 'boot', 'vmlinuz'), 'KUBEVM-IT-KERNEL\n');
    // A file whose name is shell syntax: copied by that literal name, or not at all.
    mkdirSync(join(work, 'disk', 'odd'), { recursive: true });
    writeFileSync(join(work, 'disk', 'odd', ODD_NAME), 'KUBEVM-IT-ODD\n');
    for (const [ref, dir] of [[LAUNCHER, 'launcher'], [DISK, 'disk']] as const) {
      execFileSync('bash', [join(repoRoot, 'local-cluster', 'build-image.sh'), ref, join(work, dir)], { stdio: 'pipe', timeout: 60_000 });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function logsOf(pod: string): Promise<string> {
  try {
    const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { query: { container: 'compute' } });
    return typeof text === 'string' ? text : '';
  } catch {
    return '';
  }
}

function vm(name: string, diskImage: string, diskPath?: string): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: diskPath === undefined ? 'Always' : 'Once',
      template: {
        spec: {
          domain: {
            memory: { guest: '64Mi' },
            firmware: { kernelBoot: { container: { image: DISK, kernelPath: '/boot/vmlinuz' } } },
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
          },
          volumes: [{ name: 'root', containerDisk: { image: diskImage, ...(diskPath !== undefined ? { path: diskPath } : {}) } }],
        },
      },
    },
  };
}

/** The message of the first image copy that failed. */
async function copyFailure(podName: string): Promise<{ container: string; message: string }> {
  const pods = client.resource<Pod>(coreResources.pods);
  return eventually(`an image copy of ${podName} to fail`, 120_000, async () => {
    const pod = await pods.get(podName, namespace);
    for (const status of (pod.status?.containerStatuses ?? []).filter((s) => s.name !== 'compute')) {
      const terminated = status.state?.terminated;
      if (terminated && terminated.exitCode !== 0) return { container: status.name, message: terminated.message ?? '' };
    }
    return undefined;
  });
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireNoInstalledController(client);
  buildImages();
  await applyKubevmCrds(client, 'kubevm-controller-test');
  namespace = await createTestNamespace(client, 'kubevm-ctl-pod');
  // Launcher pods pass the Restricted Pod Security Standard: the API server refuses any that does not.
  await client.resource<KubeObject>(coreResources.namespaces).patch(namespace, undefined, { metadata: { labels: RESTRICTED_LABELS } }, 'merge');
  manager = new ControllerManager(
    client,
    {
      ...launcherConfig,
      // Like a launcher: wait for the image copies beside it (a failed one fails it with the copy's
      // message), then hold the lifeline (compute's postStart hook created it before the copies
      // started); then print what it sees and stay up.
      launcherCommand: [
        '/bin/busybox',
        'sh',
        '-c',
        'd=/var/run/kubevm/image-copies; ' +
          'for f in container-disk-root kernel-boot; do until [ -e "$d/$f" ]; do sleep 0.05; done; ' +
          'if [ "$(head -n 1 "$d/$f")" != ok ]; then exec 3<>"$d/launcher.lifeline"; tail -n +2 "$d/$f" >&2; exit 1; fi; done; ' +
          'exec 3<>"$d/launcher.lifeline"; ' +
          'find /var/run/kubevirt/container-disks /var/run/kubevirt/kernel-boot -type f -exec /bin/busybox sh -c \'echo "$1: $(cat "$1")"\' _ {} \\; ; ' +
          'touch /probe 2>/dev/null && echo ROOT-WRITABLE || echo ROOT-READ-ONLY; id; ' +
          // What QEMU's hostfwd does for a guest's declared port 80: bind it in the pod, as uid 107.
          '/bin/busybox httpd -p 80 -h /var/run/kubevm-private && echo BOUND-PORT-80 || echo PORT-80-REFUSED; ' +
          // The VMI it would take from its node handler (none runs here): the pod names its uid.
          'echo "STAND-IN-DONE VMI-UID=$KUBEVM_VMI_UID"; exec /bin/busybox sleep 3600',
      ],
      namespace,
      leaseName: 'unused',
      leaderElection: false,
      identity: 'launcher-pod-test',
      vmWorkers: 1,
      vmiWorkers: 1,
      watchNamespace: namespace,
    },
    silentLogger,
  );
  manager.start();
  await eventually('informers to sync', 30_000, () => manager?.hasSynced() ?? false);
});

afterAll(async () => {
  await manager?.stop();
  if (namespace) await deleteNamespaceWithoutController(client, namespace);
  client?.close();
});

describe('the launcher pod on the real kubelet', () => {
  it('runs with its security context; containerDisk and kernelBoot files are where the launcher reads them', async () => {
    await client.resource<VirtualMachine>(vmResource).create(vm('copied', DISK));
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    await eventually('VMI Scheduled (pod Ready)', 120_000, async () => (await vmis.find('copied', namespace))?.status?.phase === 'Scheduled');
    const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    const pod = pods.items[0];
    expect(pods.items).toHaveLength(1);
    let log = '';
    await eventually('the stand-in launcher to report', 30_000, async () => (log = await logsOf(pod?.metadata?.name ?? '')).includes('STAND-IN-DONE'));
    expect(log).toContain('/var/run/kubevirt/container-disks/root/disk/disk.qcow2: KUBEVM-IT-DISK');
    expect(log).toContain('/var/run/kubevirt/kernel-boot/boot/vmlinuz: KUBEVM-IT-KERNEL');
    expect(log).toContain('ROOT-READ-ONLY');
    expect(log).toMatch(/uid=107\b.*gid=107\b/);
    expect(log).toContain('BOUND-PORT-80');
    expect(log).toContain(`VMI-UID=${(await vmis.get('copied', namespace)).metadata?.uid ?? 'none'}`);
    expect((await client.resource<KubeObject>(coreResources.namespaces).get(namespace)).metadata?.labels).toMatchObject(RESTRICTED_LABELS);
  });

  it('NET_BIND_SERVICE alone (the launcher\'s former capability) does not let uid 107 bind port 80, and a privileged pod is refused here', async () => {
    const pods = client.resource<Pod>(coreResources.pods);
    const name = 'net-bind-contrast';
    const context = { runAsUser: 107, runAsGroup: 107, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, seccompProfile: { type: 'RuntimeDefault' as const } };
    const contrast = (podName: string, securityContext: object): Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName, namespace },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [{ name: 'compute', image: LAUNCHER, imagePullPolicy: 'IfNotPresent', command: ['/bin/busybox', 'sh', '-c', '/bin/busybox httpd -p 80 -h / && echo BOUND-PORT-80 || echo PORT-80-REFUSED'], securityContext }],
      },
    });
    await pods.create(contrast(name, { ...context, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }));
    await eventually('the contrast pod to finish', 120_000, async () => ['Succeeded', 'Failed'].includes((await pods.get(name, namespace)).status?.phase ?? ''));
    expect(await logsOf(name)).toContain('PORT-80-REFUSED');
    await expect(pods.create(contrast('privileged', { privileged: true }))).rejects.toThrow(/violates PodSecurity "restricted:latest"/);
  });

  it('deleting the VM deletes the VMI, whose pod gets the VMI\'s grace period plus the launcher\'s margin; VMI and VM wait for the pod', async () => {
    const pods = client.resource<Pod>(coreResources.pods);
    const before = (await pods.list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items.find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'copied');
    expect(before?.spec?.terminationGracePeriodSeconds).toBe(45); // the VMI's default 30 s + 15 s
    await client.resource<VirtualMachine>(vmResource).delete('copied', namespace);
    // The stand-in launcher is PID 1 without a TERM handler, so it stays for the whole grace period.
    let terminating: Pod | undefined;
    await eventually('the pod to be terminating', 30_000, async () => Boolean((terminating = await pods.find(before?.metadata?.name ?? '', namespace))?.metadata?.deletionTimestamp));
    expect((terminating?.metadata as { deletionGracePeriodSeconds?: number } | undefined)?.deletionGracePeriodSeconds).toBe(45);
    // While the kubelet stops it, the VMI (finalizer) and the VM (finalizer) stay.
    expect((await client.resource<VirtualMachineInstance>(vmiResource).get('copied', namespace)).metadata?.deletionTimestamp).toBeTruthy();
    expect(await client.resource<VirtualMachine>(vmResource).find('copied', namespace)).toBeDefined();
    await pods.delete(before?.metadata?.name ?? '', namespace, { gracePeriodSeconds: 0 });
    await eventually('VMI gone after its pod', 30_000, async () => (await client.resource<VirtualMachineInstance>(vmiResource).find('copied', namespace)) === undefined);
    await eventually('VM gone after its VMI', 30_000, async () => (await client.resource<VirtualMachine>(vmResource).find('copied', namespace)) === undefined);
  });

  it('a containerDisk image that cannot be pulled shows as ErrImagePull/ImagePullBackOff, naming the image', async () => {
    // A registry that refuses at once (nothing listens on localhost:5999): a name on docker.io
    // fails here only after containerd's DNS lookups time out, 50 s per pull.
    await client.resource<VirtualMachine>(vmResource).create(vm('missing-image', 'localhost:5999/kubevm-it/no-such-disk:1'));
    const vms = client.resource<VirtualMachine>(vmResource);
    await eventually('an image pull error on the VM', 120_000, async () => ['ErrImagePull', 'ImagePullBackOff'].includes((await vms.get('missing-image', namespace)).status?.printableStatus ?? ''));
    const synchronized = (await vms.get('missing-image', namespace)).status?.conditions?.find((c) => c.type === 'Synchronized');
    expect(synchronized?.message).toContain('localhost:5999/kubevm-it/no-such-disk:1');
    expect(synchronized?.message).toContain('check the image name');
  });

  it('a containerDisk path that is shell syntax is copied by its literal name', async () => {
    await client.resource<VirtualMachine>(vmResource).create(vm('literal', DISK, `/odd/${ODD_NAME}`));
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    await eventually('VMI Scheduled (pod Ready)', 120_000, async () => (await vmis.find('literal', namespace))?.status?.phase === 'Scheduled');
    const pod = (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items.find(
      (p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'literal',
    );
    let log = '';
    await eventually('the stand-in launcher to report', 30_000, async () => (log = await logsOf(pod?.metadata?.name ?? '')).includes('STAND-IN-DONE'));
    expect(log).toContain(`/var/run/kubevirt/container-disks/root/odd/${ODD_NAME}: KUBEVM-IT-ODD`);
    await client.resource<VirtualMachine>(vmResource).delete('literal', namespace);
  });

  it('a containerDisk path naming no file fails the copy, and the VM says which field', async () => {
    await client.resource<VirtualMachine>(vmResource).create(vm('no-such-path', DISK, '/disk/$(id).qcow2'));
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    const message = await eventually('the failed copy on the VMI', 120_000, async () => {
      const synchronized = (await vmis.find('no-such-path', namespace))?.status?.conditions?.find((c) => c.type === 'Synchronized')?.message;
      return synchronized?.includes('exited') ? synchronized : undefined;
    });
    expect(message).toContain('container cd-root');
    expect(message).toContain('spec.volumes[0].containerDisk.path: "/disk/$(id).qcow2" does not exist in the image');
  });

  // Pods rendered from VMIs the API would refuse (an older CRD, a bypassed webhook): the copier
  // refuses the same paths on its own. And paths the API accepts that name no file fail literally.
  it.each<[string, { disk?: string; kernel?: string }, string]>([
    ['$(...)', { disk: '/disk/$(touch /target/pwned).qcow2' }, 'spec.volumes[0].containerDisk.path: "/disk/$(touch /target/pwned).qcow2" does not exist in the image'],
    ['backquotes', { disk: '/disk/`id`' }, 'spec.volumes[0].containerDisk.path: "/disk/`id`" does not exist in the image'],
    ['quotes', { disk: `/disk/a'b"c` }, `spec.volumes[0].containerDisk.path: "/disk/a'b"c" does not exist in the image`],
    ['a semicolon', { disk: '/disk/x; touch /target/pwned' }, 'spec.volumes[0].containerDisk.path: "/disk/x; touch /target/pwned" does not exist in the image'],
    ['a newline', { disk: '/disk/disk.qcow2\ntouch /target/pwned' }, 'spec.volumes[0].containerDisk.path: must not contain control characters'],
    ['..', { disk: '/disk/../boot/vmlinuz' }, 'spec.volumes[0].containerDisk.path: "/disk/../boot/vmlinuz" must not contain empty, "." or ".." components'],
    ['a relative path', { disk: 'disk/disk.qcow2' }, 'spec.volumes[0].containerDisk.path: "disk/disk.qcow2" must be an absolute path to a file inside the image'],
    ['a kernelPath with $(...)', { kernel: '/boot/$(id)' }, 'spec.domain.firmware.kernelBoot.container.kernelPath: "/boot/$(id)" does not exist in the image'],
  ])('a path with %s reaches the copier as a literal path and fails naming the field', async (_label, paths, expected) => {
    const uid = randomUUID();
    const vmi: VirtualMachineInstance = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: `bad-path-${uid.slice(0, 8)}`, namespace, uid },
      spec: {
        domain: {
          memory: { guest: '64Mi' },
          devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
          ...(paths.kernel ? { firmware: { kernelBoot: { container: { image: DISK, kernelPath: paths.kernel } } } } : {}),
        },
        volumes: [{ name: 'root', containerDisk: { image: DISK, ...(paths.disk ? { path: paths.disk } : {}) } }],
      },
    };
    // A compute container that runs: its postStart hook installs the copier the copies run.
    const pod = renderLauncherPod(vmi, { ...launcherConfig, launcherCommand: ['/bin/busybox', 'sleep', '3600'] }) as Pod;
    delete pod.metadata?.ownerReferences;
    await client.resource<Pod>(coreResources.pods).create(pod);
    const failure = await copyFailure(pod.metadata?.name ?? '');
    expect(failure.container).toBe(paths.kernel ? 'kernel-boot' : 'cd-root');
    expect(failure.message).toContain(expected);
    expect(failure.message).not.toMatch(/not found|syntax error|unexpected/);
  });

  // The kubelet enforces the emptyDir bounds the renderer sets: a launcher pod that writes more into
  // ephemeral-disks than its VMI declares is evicted, and the VMI's message says so.
  it('a pod that overfills ephemeral-disks is evicted by the kubelet, with a reason naming the volume', async () => {
    const uid = randomUUID();
    const vmi: VirtualMachineInstance = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: `overfill-${uid.slice(0, 8)}`, namespace, uid },
      spec: { domain: { memory: { guest: '64Mi' }, devices: { disks: [{ name: 'scratch', disk: { bus: 'virtio' } }] } }, volumes: [{ name: 'scratch', emptyDisk: { capacity: '1Mi' } }] },
    };
    const config = {
      ...launcherConfig,
      // A guest gone wild: far more than the 1Mi disk (+ ISO and scratch room) the VMI declares.
      launcherCommand: ['/bin/busybox', 'sh', '-c', '/bin/busybox dd if=/dev/zero of=/var/run/kubevirt-ephemeral-disks/fill bs=1048576 count=96 && exec /bin/busybox sleep 3600'],
    };
    const pod = renderLauncherPod(vmi, config) as Pod;
    expect(pod.spec?.volumes?.find((v) => v.name === 'ephemeral-disks')?.emptyDir?.sizeLimit).toBe('19Mi');
    delete pod.metadata?.ownerReferences;
    const pods = client.resource<Pod>(coreResources.pods);
    await pods.create(pod);
    // The kubelet measures volumes periodically (volumeStatsAggPeriod, 1 minute by default).
    const evicted = await eventually('the kubelet to evict the pod', 240_000, async () => {
      const current = await pods.get(pod.metadata?.name ?? '', namespace);
      return current.status?.reason === 'Evicted' ? current : undefined;
    });
    expect(evicted.status?.phase).toBe('Failed');
    expect(evicted.status?.message).toContain('ephemeral-disks');
    expect(podFailureMessage(evicted)).toMatch(/^launcher pod virt-launcher-overfill-.* was evicted by the kubelet: .*EmptyDir volume "ephemeral-disks" exceeds the limit "19Mi"/);
  });
});
