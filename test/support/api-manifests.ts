// A corpus of manifests modelled on KubeVirt's user guide, shared by the unit tests (zod and the
// generated CRD schema) and the integration tests (a real API server): valid ones, and invalid ones
// with the message kubevm gives and the field path the API server names.

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata?: Record<string, unknown>;
  [field: string]: unknown;
}

export const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

// The "testvm" of KubeVirt's quickstart: cirros from a container disk, cloud-init, masquerade.
const quickstartVM = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'testvm', creationTimestamp: null },
  spec: {
    running: false,
    template: {
      metadata: { labels: { 'kubevirt.io/size': 'small', 'kubevirt.io/domain': 'testvm' }, creationTimestamp: null },
      spec: {
        domain: {
          devices: {
            disks: [
              { name: 'containerdisk', disk: { bus: 'virtio' } },
              { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
            ],
            interfaces: [{ name: 'default', masquerade: {} }],
          },
          resources: { requests: { memory: '64M' } },
        },
        networks: [{ name: 'default', pod: {} }],
        volumes: [
          { name: 'containerdisk', containerDisk: { image: 'quay.io/kubevirt/cirros-container-disk-demo' } },
          { name: 'cloudinitdisk', cloudInitNoCloud: { userDataBase64: 'SGkuXG4=' } },
        ],
      },
    },
  },
};

// The masquerade example of the user guide's interfaces page: forwarded ports, a custom CIDR.
const masqueradeVMI = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vmi-masquerade', namespace: 'default' },
  spec: {
    domain: {
      devices: {
        disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }],
        interfaces: [{ name: 'red', masquerade: {}, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }],
      },
      resources: { requests: { memory: '1024M' } },
    },
    networks: [{ name: 'red', pod: { vmNetworkCIDR: '10.11.12.0/24' } }],
    volumes: [{ name: 'containerdisk', containerDisk: { image: 'quay.io/kubevirt/fedora-cloud-container-disk-demo:latest' } }],
  },
};

// Instancetypes and preferences as in the user guide's instancetypes page.
const clusterInstancetype = {
  apiVersion: 'instancetype.kubevirt.io/v1beta1',
  kind: 'VirtualMachineClusterInstancetype',
  metadata: { name: 'u1.medium' },
  spec: { cpu: { guest: 1 }, memory: { guest: '4Gi' } },
};
const clusterPreference = {
  apiVersion: 'instancetype.kubevirt.io/v1beta1',
  kind: 'VirtualMachineClusterPreference',
  metadata: { name: 'fedora' },
  spec: {
    devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredRng: {} },
    firmware: { preferredEfi: { secureBoot: false } },
    requirements: { cpu: { guest: 1 }, memory: { guest: '1Gi' } },
  },
};
const instancetypeVM = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm-u1' },
  spec: {
    runStrategy: 'Always',
    instancetype: { name: 'u1.medium' },
    preference: { name: 'fedora', kind: 'VirtualMachineClusterPreference', revisionName: 'vm-u1-fedora-1' },
    template: {
      spec: {
        domain: { devices: {} },
        volumes: [{ name: 'containerdisk', containerDisk: { image: 'quay.io/containerdisks/fedora:41' } }],
      },
    },
  },
};

// Every supported corner of the VMI spec at once.
const fullVMI = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'full', labels: { a: 'b' }, annotations: { c: 'd' }, finalizers: ['kubevm.io/example'], ownerReferences: [] },
  spec: {
    domain: {
      cpu: { cores: 2, sockets: 1, threads: 1, model: 'host-passthrough', dedicatedCpuPlacement: true, isolateEmulatorThread: true, realtime: { mask: '0' }, features: [{ name: 'vmx', policy: 'require' }] },
      memory: { guest: '2Gi', hugepages: { pageSize: '2Mi' } },
      resources: { requests: { memory: '2Gi', cpu: 2 }, limits: { cpu: '2' }, overcommitGuestOverhead: true },
      machine: { type: 'q35' },
      firmware: {
        serial: 'e4686d2c-6e8d-4335-b8fd-81bee22f4814',
        uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223',
        bootloader: { efi: { secureBoot: false, persistent: true } },
        kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'kubevm/kernel:1', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd', imagePullPolicy: 'IfNotPresent' } },
      },
      features: { acpi: {}, smm: { enabled: true } },
      clock: { utc: {}, timer: { rtc: { tickPolicy: 'catchup' } } },
      ioThreadsPolicy: 'shared',
      devices: {
        disks: [
          { name: 'root', disk: { bus: 'virtio' }, bootOrder: 1, cache: 'none', errorPolicy: 'report', serial: 'root0' },
          { name: 'cd', cdrom: { bus: 'sata', readonly: true } },
          { name: 'lun', lun: { bus: 'scsi' }, shareable: true, cache: 'writethrough' },
          { name: 'usbstick', disk: { bus: 'usb' }, errorPolicy: 'stop' },
          { name: 'cfg', disk: {} },
          { name: 'sec', disk: {}, errorPolicy: 'enospace', cache: 'writeback' },
          { name: 'scratch' },
          { name: 'cloudinit', disk: { bus: 'virtio' }, errorPolicy: 'ignore' },
        ],
        interfaces: [
          { name: 'default', masquerade: {}, model: 'virtio', macAddress: 'de:ad:00:00:be:af' },
          { name: 'br', bridge: {}, model: 'e1000e' },
          { name: 'slirp', slirp: {} },
          { name: 'passt', passt: {} },
          { name: 'plugin', binding: { name: 'passt' } },
        ],
        rng: {},
        watchdog: { name: 'wd', i6300esb: { action: 'poweroff' } },
        autoattachSerialConsole: true,
        autoattachGraphicsDevice: false,
        hostDevices: [{ name: 'nic', deviceName: 'intel.com/qat' }],
        gpus: [{ name: 'gpu1', deviceName: 'nvidia.com/GP102GL_Tesla_P40' }],
      },
    },
    volumes: [
      { name: 'root', persistentVolumeClaim: { claimName: 'root-pvc', readOnly: false } },
      { name: 'cd', containerDisk: { image: 'kubevm/cirros:0.6', path: '/disk/cirros.iso', imagePullPolicy: 'Never' } },
      { name: 'lun', ephemeral: { persistentVolumeClaim: { claimName: 'base' } } },
      { name: 'usbstick', emptyDisk: { capacity: '1Gi' } },
      { name: 'cfg', configMap: { name: 'app-config' } },
      { name: 'sec', secret: { secretName: 'app-secret', volumeLabel: 'SEC' } },
      { name: 'scratch', emptyDisk: { capacity: 1073741824 } },
      { name: 'cloudinit', cloudInitNoCloud: { userData: '#cloud-config\n', networkData: 'version: 2\n', networkDataSecretRef: { name: 'net' }, secretRef: { name: 'ud' } } },
    ],
    networks: [
      { name: 'default', pod: {} },
      { name: 'br', pod: {} },
      { name: 'slirp', pod: {} },
      { name: 'passt', pod: {} },
      { name: 'plugin', pod: {} },
    ],
    nodeSelector: { 'kubernetes.io/arch': 'amd64' },
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kvm', operator: 'Exists' }] }] },
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] } }],
      },
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' } },
        ],
      },
    },
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
    terminationGracePeriodSeconds: 0,
    evictionStrategy: 'LiveMigrateIfPossible',
    startStrategy: 'Paused',
    hostname: 'full',
    subdomain: 'vms',
  },
  status: {
    phase: 'Running',
    nodeName: 'vm',
    reason: '',
    qosClass: 'Burstable',
    launcherContainerImageVersion: 'kubevm/launcher:0.1.0',
    conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-01-01T00:00:00Z' }],
    interfaces: [{ name: 'default', ipAddress: '10.244.0.7', ipAddresses: ['10.244.0.7'], mac: 'de:ad:00:00:be:af', infoSource: 'domain, guest-agent' }],
    guestOSInfo: { id: 'fedora', name: 'Fedora Linux', version: '41' },
    migrationState: { sourceNode: 'a', targetNode: 'b', completed: true, mode: 'PreCopy', startTimestamp: '2026-01-01T00:00:00Z' },
    phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' }],
    volumeStatus: [{ name: 'root', target: 'vda', phase: 'Ready' }],
    activePods: { '0b5c1e3a-1111-2222-3333-444455556666': 'vm' },
  },
};

const runningVMStatus = {
  ...clone(quickstartVM),
  spec: { ...clone(quickstartVM.spec), running: undefined, runStrategy: 'Manual' },
  status: {
    printableStatus: 'Running',
    ready: true,
    created: true,
    observedGeneration: 2,
    desiredGeneration: 2,
    conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: null }],
    stateChangeRequests: [{ action: 'Stop', uid: 'abc' }, { action: 'Start', data: { paused: 'true' } }],
    startFailure: { consecutiveFailCount: 2, retryAfterTimestamp: '2026-01-01T00:00:00Z' },
  },
};
delete (runningVMStatus.spec as { running?: unknown }).running;

const migration = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstanceMigration',
  metadata: { name: 'm' },
  spec: { vmiName: 'testvm' },
  status: { phase: 'TargetReady', phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' }] },
};

export const validManifests: Record<string, Manifest> = {
  quickstartVM,
  masqueradeVMI,
  clusterInstancetype,
  clusterPreference,
  instancetypeVM,
  fullVMI,
  runningVMStatus,
  migration,
};

export interface InvalidCase {
  base: Manifest;
  // The mutations reach into arbitrary paths of a copy; typing each would only restate the schema.
  mutate: (manifest: any) => void;
  /** The message zod's formatter gives (exactly one of the messages). */
  message: string;
  /** The field path the CRD schema (and so the API server) names, or undefined when only zod's refinements catch it. */
  crdPath?: string;
}

export const invalidCases: Record<string, InvalidCase> = {
  'unknown field in the domain': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.template.spec.domain.foo = 'bar'),
    message: 'spec.template.spec.domain.foo: unknown field "foo"',
    crdPath: 'spec.template.spec.domain.foo',
  },
  'unknown field in a disk': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.disks[0].bootorder = 1),
    message: 'spec.domain.devices.disks[0].bootorder: unknown field "bootorder"',
    crdPath: 'spec.domain.devices.disks[0].bootorder',
  },
  'unknown field in an empty binding': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.interfaces[0].masquerade = { nat: true }),
    message: 'spec.domain.devices.interfaces[0].masquerade.nat: unknown field "nat"',
    crdPath: 'spec.domain.devices.interfaces[0].masquerade.nat',
  },
  'bad runStrategy': {
    base: instancetypeVM,
    mutate: (vm) => (vm.spec.runStrategy = 'Sometimes'),
    message: 'spec.runStrategy: unsupported value "Sometimes"; supported values: "Always", "Halted", "Manual", "RerunOnFailure", "Once"',
    crdPath: 'spec.runStrategy',
  },
  'bad disk bus': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.template.spec.domain.devices.disks[1].disk.bus = 'ide'),
    message: 'spec.template.spec.domain.devices.disks[1].disk.bus: unsupported value "ide"; supported values: "virtio", "sata", "scsi", "usb"',
    crdPath: 'spec.template.spec.domain.devices.disks[1].disk.bus',
  },
  'bad cache mode': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.disks[0].cache = 'unsafe'),
    message: 'spec.domain.devices.disks[0].cache: unsupported value "unsafe"; supported values: "none", "writethrough", "writeback"',
    crdPath: 'spec.domain.devices.disks[0].cache',
  },
  'bad evictionStrategy': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.evictionStrategy = 'Migrate'),
    message: 'spec.evictionStrategy: unsupported value "Migrate"; supported values: "None", "LiveMigrate", "LiveMigrateIfPossible", "External"',
    crdPath: 'spec.evictionStrategy',
  },
  'bad watchdog action': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.watchdog = { name: 'w', i6300esb: { action: 'explode' } }),
    message: 'spec.domain.devices.watchdog.i6300esb.action: unsupported value "explode"; supported values: "poweroff", "reset", "shutdown"',
    crdPath: 'spec.domain.devices.watchdog.i6300esb.action',
  },
  'a quantity that is not one': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.template.spec.domain.memory = { guest: 'lots' }),
    message: 'spec.template.spec.domain.memory.guest: must be a Kubernetes quantity such as 1Gi, 500m or 2',
    crdPath: 'spec.template.spec.domain.memory.guest',
  },
  'a missing template': {
    base: instancetypeVM,
    mutate: (vm) => delete vm.spec.template,
    message: 'spec.template: required field is missing',
    crdPath: 'spec.template',
  },
  'a missing vmiName': {
    base: migration,
    mutate: (m) => delete m.spec.vmiName,
    message: 'spec.vmiName: required field is missing',
    crdPath: 'spec.vmiName',
  },
  'an instancetype without memory': {
    base: clusterInstancetype,
    mutate: (it) => delete it.spec.memory,
    message: 'spec.memory: required field is missing',
    crdPath: 'spec.memory',
  },
  'a string where a number belongs': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.terminationGracePeriodSeconds = '30'),
    message: 'spec.terminationGracePeriodSeconds: expected number, got string',
    crdPath: 'spec.terminationGracePeriodSeconds',
  },
  'a dataVolume (unsupported KubeVirt field)': {
    base: quickstartVM,
    mutate: (vm) => vm.spec.template.spec.volumes.push({ name: 'dv', dataVolume: { name: 'dv' } }),
    message: 'spec.template.spec.volumes[2].dataVolume: field "dataVolume" is a KubeVirt field that kubevm does not support',
    crdPath: 'spec.template.spec.volumes[2].dataVolume',
  },
  'a multus network (unsupported KubeVirt field)': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.networks[0] = { name: 'red', multus: { networkName: 'net1' } }),
    message: 'spec.networks[0].multus: field "multus" is a KubeVirt field that kubevm does not support',
    crdPath: 'spec.networks[0].multus',
  },
  'Hyper-V enlightenments (unsupported KubeVirt field, as in KubeVirt\'s Windows example)': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.features = { acpi: {}, hyperv: { relaxed: {}, vapic: {} } }),
    message: 'spec.domain.features.hyperv: field "hyperv" is a KubeVirt field that kubevm does not support',
    crdPath: 'spec.domain.features.hyperv',
  },
  'dataVolumeTemplates (unsupported KubeVirt field)': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.dataVolumeTemplates = []),
    message: 'spec.dataVolumeTemplates: field "dataVolumeTemplates" is a KubeVirt field that kubevm does not support',
    crdPath: 'spec.dataVolumeTemplates',
  },
  'duplicate disk names': {
    base: masqueradeVMI,
    mutate: (vmi) => vmi.spec.domain.devices.disks.push({ name: 'containerdisk', cdrom: {} }),
    message: 'spec.domain.devices.disks[1].name: duplicate name "containerdisk"',
    crdPath: 'spec.domain.devices.disks[1]',
  },
  'running together with runStrategy': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.runStrategy = 'Always'),
    message: 'spec.running: running and runStrategy are mutually exclusive; use runStrategy',
  },
  'a volume without a source': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.volumes[0] = { name: 'containerdisk' }),
    message:
      'spec.volumes[0]: one of containerDisk, cloudInitNoCloud, emptyDisk, persistentVolumeClaim, ephemeral, configMap, secret must be set',
  },
  'two bindings on one interface': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.interfaces[0].bridge = {}),
    message: 'spec.domain.devices.interfaces[0]: only one of bridge, masquerade, slirp, passt, binding may be set',
  },
  'both bios and efi': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.firmware = { bootloader: { bios: {}, efi: {} } }),
    message: 'spec.domain.firmware.bootloader: only one of bios, efi may be set',
  },
  // Names reach the launcher pod's paths and QEMU's command line: a comma would add a QEMU option
  // of its own (romfile= loads a file of the pod into the guest), a slash walks out of a directory.
  // Paths inside an image are copied out by the launcher pod's init container (issue 10, item 3).
  'a containerDisk path that walks out of the image root': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.template.spec.volumes[0].containerDisk.path = '/disk/../../var/run/secrets/token'),
    message: 'spec.template.spec.volumes[0].containerDisk.path: must be an absolute path to a file inside the image, without empty, "." or ".." components or control characters (e.g. /disk/fedora.qcow2)',
    crdPath: 'spec.template.spec.volumes[0].containerDisk.path',
  },
  'a relative kernelPath': {
    base: fullVMI,
    mutate: (vmi) => (vmi.spec.domain.firmware.kernelBoot.container.kernelPath = 'boot/vmlinuz'),
    message: 'spec.domain.firmware.kernelBoot.container.kernelPath: must be an absolute path to a file inside the image, without empty, "." or ".." components or control characters (e.g. /disk/fedora.qcow2)',
    crdPath: 'spec.domain.firmware.kernelBoot.container.kernelPath',
  },
  'an initrdPath with a newline': {
    base: fullVMI,
    mutate: (vmi) => (vmi.spec.domain.firmware.kernelBoot.container.initrdPath = '/boot/initrd\n/etc/shadow'),
    message: 'spec.domain.firmware.kernelBoot.container.initrdPath: must be an absolute path to a file inside the image, without empty, "." or ".." components or control characters (e.g. /disk/fedora.qcow2)',
    crdPath: 'spec.domain.firmware.kernelBoot.container.initrdPath',
  },
  'a containerDisk path that is the image root': {
    base: fullVMI,
    mutate: (vmi) => (vmi.spec.volumes[1].containerDisk.path = '/'),
    message: 'spec.volumes[1].containerDisk.path: must be an absolute path to a file inside the image, without empty, "." or ".." components or control characters (e.g. /disk/fedora.qcow2)',
    crdPath: 'spec.volumes[1].containerDisk.path',
  },
  'a disk name carrying a QEMU option': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.disks[0].name = 'containerdisk,romfile=/etc/passwd'),
    message: 'spec.domain.devices.disks[0].name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.domain.devices.disks[0].name',
  },
  'a volume name that is a path': {
    base: quickstartVM,
    mutate: (vm) => (vm.spec.template.spec.volumes[0].name = '../../secrets'),
    message: 'spec.template.spec.volumes[0].name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.template.spec.volumes[0].name',
  },
  'an interface name in capitals': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.interfaces[0].name = 'Red'),
    message: 'spec.domain.devices.interfaces[0].name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.domain.devices.interfaces[0].name',
  },
  'a network name of 64 characters': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.networks[0].name = 'n'.repeat(64)),
    message: 'spec.networks[0].name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.networks[0].name',
  },
  'a disk serial with a comma': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.disks[0].serial = 'SN1,bootindex=0'),
    message: 'spec.domain.devices.disks[0].serial: must be 1 to 256 characters of A-Z a-z 0-9 _ . + -',
    crdPath: 'spec.domain.devices.disks[0].serial',
  },
  'a hostname carrying a second meta-data line': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.hostname = 'guest\ninstance-id: other'),
    message: 'spec.hostname: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.hostname',
  },
  'a watchdog name with a space': {
    base: masqueradeVMI,
    mutate: (vmi) => (vmi.spec.domain.devices.watchdog = { name: 'my watchdog', i6300esb: {} }),
    message: 'spec.domain.devices.watchdog.name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
    crdPath: 'spec.domain.devices.watchdog.name',
  },
};
