// Both ends of the launcher pod contract, checked against each other: the pod the controller renders
// configures the launcher so that every path it reads is a mount of that pod, and the node handler
// finds the socket the launcher creates in the pod's private volume.
import type { VirtualMachineInstance } from '../../controller/api.js';
import { renderLauncherPod } from '../../controller/vmi/launcher-pod.js';
import { configFromEnv } from '../../launcher/config.js';
import { expectedImageCopies } from '../../launcher/image-copies.js';
import { IMAGE_COPY_LIFELINE, LAUNCHER_PATHS, PRIVATE_VOLUME, imageCopyStatusName, launcherSockets, nodeLauncherRunDir, nodeLauncherSocketPath, parseImageCopyStatus } from './launcher-pod.js';

const vmi: VirtualMachineInstance = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'contract', namespace: 'ns1', uid: '3f6c8a4e-1111-2222-3333-444455556666' },
  spec: {
    domain: {
      memory: { guest: '64Mi' },
      devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }] },
      firmware: { kernelBoot: { container: { image: 'k:1', kernelPath: '/boot/vmlinuz' } } },
    },
    volumes: [
      { name: 'root', containerDisk: { image: 'cd:1' } },
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ],
  },
};

describe('launcher pod contract', () => {
  const pod = renderLauncherPod(vmi, { launcherImage: 'kubevm/launcher:test', useEmulation: true });
  const compute = pod.spec!.containers[0]!;
  const env = Object.fromEntries((compute.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  const config = configFromEnv(env);
  const mounts = compute.volumeMounts ?? [];
  const mountOf = (file: string) => mounts.find((m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`));

  test('the environment the controller sets is the one the launcher reads, with the pod paths', () => {
    // The VMI comes from the node handler: the launcher takes only the pod's own (launcher-input.ts).
    expect(config.vmiSource).toEqual({ uid: vmi.metadata?.uid });
    expect(config.runDir).toBe(LAUNCHER_PATHS.runDir);
    expect(config.ephemeralDir).toBe(LAUNCHER_PATHS.ephemeralDir);
    expect(config.containerDiskDir).toBe(LAUNCHER_PATHS.containerDiskDir);
    expect(config.kernelBootDir).toBe(LAUNCHER_PATHS.kernelBootDir);
    expect(config.imageCopyDir).toBe(LAUNCHER_PATHS.imageCopyDir);
    expect(config.allowEmulation).toBe(true);
    // The launcher's defaults are the pod's paths too: an unset variable cannot point elsewhere.
    const defaults = configFromEnv({ KUBEVM_VMI_UID: 'u' });
    // The image copy directory has no default: a launcher waits for copies only in a pod that makes them.
    expect(defaults.imageCopyDir).toBeUndefined();
    for (const key of Object.keys(LAUNCHER_PATHS) as Array<keyof typeof LAUNCHER_PATHS>) {
      if (key in defaults) expect(defaults[key as keyof typeof defaults]).toBe(LAUNCHER_PATHS[key]);
    }
  });

  test('every directory the launcher reads or writes is mounted in the compute container', () => {
    expect(mountOf(config.runDir)?.name).toBe(PRIVATE_VOLUME);
    expect(mountOf(config.ephemeralDir)?.name).toBe('ephemeral-disks');
    expect(mountOf(`${config.containerDiskDir}/root/disk/x.qcow2`)).toBeDefined();
    expect(mountOf(`${config.pvcDir}/data/disk.img`)).toBeDefined();
    expect(mountOf(`${config.kernelBootDir}/boot/vmlinuz`)).toBeDefined();
    // The copies' status files and the lifeline: writable, for compute's postStart hook that creates the lifeline.
    expect(mountOf(`${config.imageCopyDir}/${IMAGE_COPY_LIFELINE}`)).toMatchObject({ name: 'image-sources' });
    expect(mountOf(`${config.imageCopyDir}/${IMAGE_COPY_LIFELINE}`)?.readOnly).toBeFalsy();
    expect(pod.spec!.volumes!.find((v) => v.name === PRIVATE_VOLUME)?.emptyDir).toBeDefined();
  });

  test('the node finds the command socket in the pod private emptyDir', () => {
    const podUid = '0b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff';
    expect(nodeLauncherSocketPath('/var/lib/kubelet/pods', podUid)).toBe(
      `/var/lib/kubelet/pods/${podUid}/volumes/kubernetes.io~empty-dir/${PRIVATE_VOLUME}/launcher.sock`,
    );
    // The same file name the launcher listens on inside the pod.
    expect(launcherSockets(config.runDir).command.slice(config.runDir.length)).toBe(
      nodeLauncherSocketPath('/p', podUid).slice(nodeLauncherRunDir('/p', podUid).length),
    );
  });

  test.each(['..', '../other', 'a/b', '', '/abs', 'x\0y'])('a pod uid %j never names a path outside the pods directory', (uid) => {
    expect(() => nodeLauncherRunDir('/var/lib/kubelet/pods', uid)).toThrow(/not a uid/);
  });
  test.each(['x/../../elsewhere/loot', '..', 'a/b', '', 'Root'])('a volume or interface name %j never becomes part of a path', (name) => {
    expect(() => imageCopyStatusName({ containerDisk: name })).toThrow(/must be a DNS label/);
    expect(() => launcherSockets(config.runDir).passt(name)).toThrow(/must be a DNS label/);
  });
  test('the image copies the pod makes are the ones the launcher waits for, and their status reads back', () => {
    const copies = (pod.spec?.containers ?? []).filter((c) => c.name !== 'compute');
    // Each copy's status file argument is the name the launcher expects for its source.
    expect(copies.map((c) => c.command?.[6]?.split('/').pop())).toEqual([imageCopyStatusName({ containerDisk: 'root' }), imageCopyStatusName('kernel-boot')]);
    expect(expectedImageCopies(vmi as Parameters<typeof expectedImageCopies>[0])).toEqual(['container-disk-root', 'kernel-boot']);
    expect(parseImageCopyStatus('ok\n')).toEqual({ ok: true });
    expect(parseImageCopyStatus('failed\nspec.volumes[0].containerDisk.path: "/x" does not exist in the image\n')).toEqual({
      ok: false,
      message: 'spec.volumes[0].containerDisk.path: "/x" does not exist in the image',
    });
    expect(parseImageCopyStatus('')).toBeUndefined();
  });
});
