import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VirtualMachineInstance } from '../api.js';
import fc from 'fast-check';
import { COPY_SCRIPT, PREPARE_SCRIPT, launcherMemoryOverhead, launcherPodName, renderLauncherPod, KVM_RESOURCE } from './launcher-pod.js';

function vmi(overrides: Partial<VirtualMachineInstance['spec']> = {}, name = 'testvm'): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'ns1', uid: '3f6c8a4e-1111-2222-3333-444455556666', labels: { app: 'web' } },
    spec: {
      domain: { memory: { guest: '1Gi' }, cpu: { cores: 2 }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
      volumes: [{ name: 'root', containerDisk: { image: 'quay.io/containerdisks/fedora:40' } }],
      ...overrides,
    },
  };
}

const config = { launcherImage: 'kubevm/launcher:test', useEmulation: false };

describe('launcherPodName', () => {
  test('is deterministic and derived from the uid', () => {
    const a = launcherPodName(vmi());
    expect(a).toMatch(/^virt-launcher-testvm-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(launcherPodName(vmi())).toBe(a);
    const other = vmi();
    other.metadata!.uid = 'another-uid';
    expect(launcherPodName(other)).not.toBe(a);
  });
  test('stays a valid pod name for a 253-character VMI name', () => {
    const name = launcherPodName(vmi({}, 'a'.repeat(253)));
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});

describe('renderLauncherPod', () => {
  test('metadata: labels, annotations, controller owner reference', () => {
    const pod = renderLauncherPod(vmi(), config);
    expect(pod.metadata?.namespace).toBe('ns1');
    expect(pod.metadata?.labels).toEqual({
      app: 'web',
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/created-by': '3f6c8a4e-1111-2222-3333-444455556666',
    });
    expect(pod.metadata?.annotations).toEqual({ 'kubevirt.io/domain': 'testvm' });
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        name: 'testvm',
        uid: '3f6c8a4e-1111-2222-3333-444455556666',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  test('security context per ADR 0007', () => {
    const pod = renderLauncherPod(vmi(), config);
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.securityContext).toEqual({
      runAsUser: 107,
      runAsGroup: 107,
      fsGroup: 107,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
      sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
    });
    const compute = pod.spec?.containers[0];
    expect(compute?.name).toBe('compute');
    expect(compute?.securityContext).toEqual({
      runAsUser: 107,
      runAsGroup: 107,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.spec?.restartPolicy).toBe('Never');
  });

  test('resources: guest memory plus overhead, 100m per vCPU, kvm when not emulating', () => {
    const pod = renderLauncherPod(vmi(), config);
    // 1Gi + 128Mi + 2 × 2Mi per vCPU + 16Mi graphics + 1Gi/512 page tables
    expect(pod.spec?.containers[0]?.resources).toEqual({
      requests: { memory: '1174Mi', 'ephemeral-storage': '50Mi', cpu: '200m', [KVM_RESOURCE]: '1' },
      limits: { [KVM_RESOURCE]: '1' },
    });
  });

  test('emulation requests no kvm device', () => {
    const pod = renderLauncherPod(vmi(), { ...config, useEmulation: true });
    // ... plus 64Mi for TCG's translated-code cache
    expect(pod.spec?.containers[0]?.resources).toEqual({ requests: { memory: '1238Mi', 'ephemeral-storage': '50Mi', cpu: '200m' } });
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'KUBEVM_ALLOW_EMULATION', value: 'true' });
  });

  test('explicit requests and limits; dedicated CPUs are Guaranteed', () => {
    const explicit = renderLauncherPod(
      vmi({ domain: { resources: { requests: { memory: '2Gi', cpu: '1500m' }, limits: { memory: '3Gi', cpu: '2' } }, devices: {} } }),
      { ...config, useEmulation: true },
    );
    expect(explicit.spec?.containers[0]?.resources).toEqual({
      requests: { memory: '2262Mi', 'ephemeral-storage': '50Mi', cpu: '1500m' },
      limits: { memory: '3286Mi', cpu: '2' },
    });
    const pinned = renderLauncherPod(
      vmi({ domain: { memory: { guest: '1Gi' }, cpu: { cores: 2, dedicatedCpuPlacement: true, isolateEmulatorThread: true }, devices: {} } }),
      { ...config, useEmulation: true },
    );
    expect(pinned.spec?.containers[0]?.resources).toEqual({
      requests: { memory: '1238Mi', 'ephemeral-storage': '50Mi', cpu: '3' },
      limits: { memory: '1238Mi', cpu: '3' },
    });
  });

  test('the memory overhead covers what the launcher was measured to use (bench/results/launcher-memory.json)', () => {
    interface Measured {
      vcpus: number;
      graphics: boolean;
      guestMemory: string;
      overheadTotalRssMiB: string;
      overheadTotalRssWithoutTcgCacheMiB: string;
    }
    const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results', 'launcher-memory.json');
    const measured = (JSON.parse(readFileSync(file, 'utf8')) as { detail: { reports: Measured[] } }).detail.reports;
    expect(measured.length).toBeGreaterThanOrEqual(6);
    for (const report of measured) {
      const measuredVmi = vmi({ domain: { memory: { guest: report.guestMemory }, cpu: { cores: report.vcpus }, devices: { autoattachGraphicsDevice: report.graphics } } });
      const mib = (bytes: bigint) => Number(bytes) / 2 ** 20;
      // Under KVM there is no translated-code cache; under TCG (what was measured) there is.
      expect(mib(launcherMemoryOverhead(measuredVmi, config))).toBeGreaterThanOrEqual(Number(report.overheadTotalRssWithoutTcgCacheMiB));
      expect(mib(launcherMemoryOverhead(measuredVmi, { ...config, useEmulation: true }))).toBeGreaterThanOrEqual(Number(report.overheadTotalRssMiB));
    }
    expect(launcherMemoryOverhead(vmi(), { ...config, memoryOverhead: '300Mi' })).toBe(300n * 1024n * 1024n);
  });

  test('KubeVirt CR settings: memoryOvercommit lowers the request, nodeSelectors are required (the VMI\'s win)', () => {
    const pod = renderLauncherPod(vmi({ nodeSelector: { zone: 'a' } }), {
      ...config,
      useEmulation: true,
      memoryOvercommitPercent: 200,
      nodeSelectors: { 'kubevm.io/vms': 'true', zone: 'b' },
    });
    expect(pod.spec?.containers[0]?.resources?.requests?.['memory']).toBe('726Mi'); // 1Gi / 2 + 214Mi
    expect(pod.spec?.nodeSelector).toEqual({ 'kubevm.io/vms': 'true', zone: 'a' });
  });

  test('scheduling constraints are carried over', () => {
    const pod = renderLauncherPod(
      vmi({
        nodeSelector: { 'kubernetes.io/arch': 'amd64' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'vms', effect: 'NoSchedule' }],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
        terminationGracePeriodSeconds: 60,
      }),
      config,
    );
    expect(pod.spec?.nodeSelector).toEqual({ 'kubernetes.io/arch': 'amd64' });
    expect(pod.spec?.tolerations).toHaveLength(1);
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toHaveLength(1);
    expect(pod.spec?.terminationGracePeriodSeconds).toBe(75);
  });

  test('volumes: fixed ones, PVCs, secrets, config maps, cloud-init secret refs, containerDisks', () => {
    const pod = renderLauncherPod(
      vmi({
        volumes: [
          { name: 'root', containerDisk: { image: 'quay.io/containerdisks/fedora:40', imagePullSecret: 'regcred' } },
          { name: 'data', persistentVolumeClaim: { claimName: 'data-pvc' } },
          { name: 'scratch', ephemeral: { persistentVolumeClaim: { claimName: 'golden' } } },
          { name: 'creds', secret: { secretName: 'app-secret' } },
          { name: 'cfg', configMap: { name: 'app-config' } },
          { name: 'cloudinit', cloudInitNoCloud: { secretRef: { name: 'ci-user' }, networkData: 'version: 2' } },
          { name: 'tmp', emptyDisk: { capacity: '1Gi' } },
        ],
      }),
      config,
    );
    expect(pod.spec?.volumes).toEqual([
      { name: 'private', emptyDir: { sizeLimit: '128Mi' } },
      // Two overlays of at most 10Gi (containerDisk, ephemeral PVC), the 1Gi emptyDisk and its qcow2
      // metadata, the cloud-init ISO, scratch.
      { name: 'ephemeral-disks', emptyDir: { sizeLimit: '21526Mi' } },
      { name: 'pvc-data', persistentVolumeClaim: { claimName: 'data-pvc', readOnly: false } },
      { name: 'pvc-scratch', persistentVolumeClaim: { claimName: 'golden', readOnly: true } },
      { name: 'secret-creds', secret: { secretName: 'app-secret' } },
      { name: 'configmap-cfg', configMap: { name: 'app-config' } },
      { name: 'udata-cloudinit', secret: { secretName: 'ci-user' } },
      { name: 'kubevm-bin', emptyDir: { sizeLimit: '16Mi' } },
      { name: 'image-sources', emptyDir: { sizeLimit: '10Gi' } },
    ]);
    expect(pod.spec?.containers[0]?.volumeMounts).toEqual([
      { name: 'private', mountPath: '/var/run/kubevm-private' },
      { name: 'ephemeral-disks', mountPath: '/var/run/kubevirt-ephemeral-disks' },
      { name: 'pvc-data', mountPath: '/var/run/kubevirt-private/vmi-disks/data', readOnly: false },
      { name: 'pvc-scratch', mountPath: '/var/run/kubevirt-private/vmi-disks/scratch', readOnly: true },
      { name: 'secret-creds', mountPath: '/var/run/kubevirt-private/secret/creds', readOnly: true },
      { name: 'configmap-cfg', mountPath: '/var/run/kubevirt-private/config-map/cfg', readOnly: true },
      { name: 'udata-cloudinit', mountPath: '/var/run/kubevirt-private/secret/cloudinit', readOnly: true },
      { name: 'image-sources', mountPath: '/var/run/kubevirt/container-disks', subPath: 'container-disks', readOnly: true },
      { name: 'image-sources', mountPath: '/var/run/kubevirt/kernel-boot', subPath: 'kernel-boot', readOnly: true },
      { name: 'image-sources', mountPath: '/var/run/kubevm/image-copies', subPath: 'copies' },
      { name: 'kubevm-bin', mountPath: '/var/run/kubevm/bin' },
    ]);
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'KUBEVM_IMAGE_COPY_DIR', value: '/var/run/kubevm/image-copies' });
    // QEMU starts once the copies are there, not when the node handler has seen the VMI Scheduled.
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'KUBEVM_AUTOSTART', value: 'true' });
    // No init container (each would cost a kubelet relist): compute's postStart hook installs the
    // launcher image's static copier (images are usually FROM scratch) and the lifeline before the
    // kubelet starts the next container; the containerDisk's /disk is copied by a container running
    // in its image, started right after the compute container.
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(pod.spec?.containers[0]?.lifecycle).toEqual({
      postStart: { exec: { command: ['/bin/busybox', 'sh', '-c', PREPARE_SCRIPT, 'prepare', '/bin/busybox', '/var/run/kubevm/bin', '/var/run/kubevm/image-copies'] } },
    });
    expect(pod.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['compute', 'kubevm/launcher:test'],
      ['cd-root', 'quay.io/containerdisks/fedora:40'],
    ]);
    expect(pod.spec?.containers[1]?.command).toEqual([
      '/var/run/kubevm/bin/busybox',
      'sh',
      '-c',
      COPY_SCRIPT,
      'copy-image',
      '/target/container-disks/root',
      '/target/copies/container-disk-root',
      '/target/copies/launcher.lifeline',
      'spec.volumes[0].containerDisk',
      '/disk',
    ]);
    expect(
      [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].every((c) => c.securityContext?.runAsUser === 107 && c.securityContext.capabilities?.drop?.[0] === 'ALL'),
    ).toBe(true);
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: 'regcred' }]);
  });

  test('kernelBoot: the kernel and initrd files are copied to /var/run/kubevirt/kernel-boot', () => {
    const pod = renderLauncherPod(
      vmi({
        domain: { memory: { guest: '256Mi' }, firmware: { kernelBoot: { container: { image: 'kubevm/kernel:1', kernelPath: '/boot/vmlinuz', initrdPath: '/initrd/initrd.gz' } } }, devices: {} },
        volumes: [],
      }),
      config,
    );
    const copy = pod.spec?.containers.find((c) => c.name === 'kernel-boot');
    expect(copy?.image).toBe('kubevm/kernel:1');
    expect(copy?.command?.slice(3)).toEqual([
      COPY_SCRIPT,
      'copy-image',
      '/target/kernel-boot',
      '/target/copies/kernel-boot',
      '/target/copies/launcher.lifeline',
      'spec.domain.firmware.kernelBoot.container.kernelPath',
      '/boot/vmlinuz',
      'spec.domain.firmware.kernelBoot.container.initrdPath',
      '/initrd/initrd.gz',
    ]);
  });

  test('image-volume mode mounts the images instead of copying them', () => {
    const pod = renderLauncherPod(
      vmi({ domain: { memory: { guest: '256Mi' }, firmware: { kernelBoot: { container: { image: 'kubevm/kernel:1' } } }, devices: {} } }),
      { ...config, imageSourceMode: 'image-volume' },
    );
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['compute']);
    expect(pod.spec?.containers[0]?.env?.map((e) => e.name)).not.toContain('KUBEVM_IMAGE_COPY_DIR');
    expect(pod.spec?.volumes).toContainEqual({ name: 'cd-root', image: { reference: 'quay.io/containerdisks/fedora:40', pullPolicy: 'IfNotPresent' } });
    expect(pod.spec?.volumes).toContainEqual({ name: 'kernel-boot', image: { reference: 'kubevm/kernel:1', pullPolicy: 'IfNotPresent' } });
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'kernel-boot', mountPath: '/var/run/kubevirt/kernel-boot', readOnly: true });
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'cd-root', mountPath: '/var/run/kubevirt/container-disks/root', readOnly: true });
  });

  test('block-mode PVCs are attached as devices under /dev/kubevm-block; network-data Secrets at <volume>-ndata', () => {
    const pod = renderLauncherPod(
      vmi({
        volumes: [
          { name: 'fast', persistentVolumeClaim: { claimName: 'block-pvc' } },
          { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config', networkDataSecretRef: { name: 'net' } } },
        ],
      }),
      config,
      { blockClaims: new Set(['block-pvc']) },
    );
    expect(pod.spec?.volumes).toContainEqual({ name: 'pvc-fast', persistentVolumeClaim: { claimName: 'block-pvc', readOnly: false } });
    expect(pod.spec?.containers[0]?.volumeDevices).toEqual([{ name: 'pvc-fast', devicePath: '/dev/kubevm-block/fast' }]);
    expect(pod.spec?.containers[0]?.volumeMounts?.some((m) => m.name === 'pvc-fast')).toBe(false);
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'ndata-ci', mountPath: '/var/run/kubevirt-private/secret/ci-ndata', readOnly: true });
  });

  test('is a pure function of the VMI: same input, same pod', () => {
    expect(renderLauncherPod(vmi(), config)).toEqual(renderLauncherPod(vmi(), config));
  });
});

describe('node disk bounds', () => {
  test('every emptyDir is bounded and the compute container requests what the VMI declares', () => {
    const pod = renderLauncherPod(
      vmi({
        domain: { resources: { requests: { 'ephemeral-storage': '100Mi' } }, firmware: { kernelBoot: { container: { image: 'k:1', kernelPath: '/boot/vmlinuz' } } }, devices: {} },
        volumes: [
          { name: 'root', containerDisk: { image: 'cd:1' } },
          { name: 'a', emptyDisk: { capacity: '2Gi' } },
          { name: 'b', emptyDisk: { capacity: 1073741824 } },
          { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\n' } },
        ],
      }),
      { ...config, containerDiskSizeLimit: '1Gi' },
    );
    const limits = Object.fromEntries((pod.spec?.volumes ?? []).filter((v) => v.emptyDir).map((v) => [v.name, v.emptyDir?.sizeLimit]));
    // 1Gi overlay + 3Gi of empty disks (+ 768Ki qcow2 metadata and 1Mi each) + 4Mi ISO + 16Mi scratch.
    expect(limits).toEqual({ private: '128Mi', 'ephemeral-disks': '4119Mi', 'kubevm-bin': '16Mi', 'image-sources': '2Gi' });
    // The user's 100Mi + the launcher's 50Mi + the empty disks and the ISO.
    expect(pod.spec?.containers[0]?.resources?.requests?.['ephemeral-storage']).toBe('3229Mi');
  });

  test('a bad emptyDisk capacity is refused naming the field', () => {
    expect(() => renderLauncherPod(vmi({ volumes: [{ name: 'a', emptyDisk: { capacity: 'lots' } }] }), config)).toThrow(/spec\.volumes\[0\]\.emptyDisk\.capacity/);
  });
});

describe('the launcher input', () => {
  const userData = '#cloud-config\npassword: kubevm-marker-inline\n';
  const withCloudInit = vmi({
    volumes: [
      { name: 'root', containerDisk: { image: 'cd:1' } },
      { name: 'cloudinit', cloudInitNoCloud: { userData, networkData: 'version: 2 # kubevm-marker-net\n' } },
    ],
  });

  test('the pod names the one VMI its launcher takes from the node handler, and mounts no Secret for it', () => {
    const pod = renderLauncherPod(withCloudInit, config);
    const compute = pod.spec?.containers[0];
    expect(compute?.env).toContainEqual({ name: 'KUBEVM_VMI_UID', value: '3f6c8a4e-1111-2222-3333-444455556666' });
    expect(compute?.env?.map((e) => e.name)).not.toContain('KUBEVM_VMI_FILE');
    // The VMI carries no Secret volume: the pod mounts none.
    expect(pod.spec?.volumes?.filter((v) => v.secret)).toEqual([]);
  });

  test('the pod carries no part of the spec: cloud-init data appears nowhere in it', () => {
    const pod = JSON.stringify(renderLauncherPod(withCloudInit, config));
    expect(pod).not.toContain('kubevm-marker');
    expect(pod).not.toContain(Buffer.from(userData).toString('base64'));
  });
});

describe('init-copy: no manifest string is ever part of a shell script', () => {
  const arbitraryPath = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.constantFrom('/disk/$(id).qcow2', '/disk/`id`', "/disk/a'b\"c", '/disk/x; rm -rf /', '/disk/x\nrm -rf /', '/disk/../../etc/shadow', '-rf', '/disk/$IFS', '*'),
  );
  test('paths from the manifest reach the copier only as whole arguments after the constant script', () => {
    fc.assert(
      fc.property(arbitraryPath, arbitraryPath, arbitraryPath, (diskPath, kernelPath, initrdPath) => {
        const pod = renderLauncherPod(
          vmi({
            domain: { memory: { guest: '64Mi' }, firmware: { kernelBoot: { container: { image: 'k:1', kernelPath, initrdPath } } }, devices: {} },
            volumes: [{ name: 'root', containerDisk: { image: 'cd:1', path: diskPath } }],
          }),
          config,
        );
        const byName = new Map((pod.spec?.containers ?? []).map((c) => [c.name, c.command ?? []]));
        for (const command of [byName.get('cd-root'), byName.get('kernel-boot')]) {
          expect(command?.slice(0, 5)).toEqual(['/var/run/kubevm/bin/busybox', 'sh', '-c', COPY_SCRIPT, 'copy-image']);
        }
        const lifeline = '/target/copies/launcher.lifeline';
        expect(byName.get('cd-root')?.slice(5)).toEqual(['/target/container-disks/root', '/target/copies/container-disk-root', lifeline, 'spec.volumes[0].containerDisk.path', diskPath]);
        expect(byName.get('kernel-boot')?.slice(5)).toEqual([
          '/target/kernel-boot',
          '/target/copies/kernel-boot',
          lifeline,
          'spec.domain.firmware.kernelBoot.container.kernelPath',
          kernelPath,
          'spec.domain.firmware.kernelBoot.container.initrdPath',
          initrdPath,
        ]);
        // No container of the pod carries the string anywhere else (commands, args, env).
        for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
          const script = container.command?.[2] === '-c' ? container.command[3] : undefined;
          if (script !== undefined) expect([COPY_SCRIPT, PREPARE_SCRIPT]).toContain(script);
          expect(container.args).toBeUndefined();
        }
      }),
    );
  });
});
