// The validating webhook's logic, table-driven: every invalid manifest is denied, and the denial
// names the field path (and what would be accepted). The cluster it consults is a plain in-memory
// context: one VMI "running" (Running, migratable), one "stuck" (not migratable), one instancetype.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { clone, invalidCases, validManifests } from '../../test/support/api-manifests.js';
import type { Manifest } from '../../test/support/api-manifests.js';
import type { VirtualMachineInstance } from '../../runtime/api/index.js';
import type { AdmissionContext, AdmissionRequest } from './admit.js';
import { admit, handleAdmissionReview } from './admit.js';

const vmiNamed = (name: string, conditions: Array<{ type: string; status: 'True' | 'False'; message?: string }>): VirtualMachineInstance =>
  ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace: 'ns' }, spec: { domain: { devices: {} } }, status: { phase: 'Running', conditions } });

const context: AdmissionContext = {
  findVmi: async (_ns, name) =>
    ({
      running: vmiNamed('running', [{ type: 'LiveMigratable', status: 'True' }]),
      stuck: vmiNamed('stuck', [{ type: 'LiveMigratable', status: 'False', message: 'cannot migrate VMI: PVC root-pvc is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)' }]),
      pending: { ...vmiNamed('pending', []), status: { phase: 'Scheduling' } } as VirtualMachineInstance,
      done: { ...vmiNamed('done', []), status: { phase: 'Succeeded' } } as VirtualMachineInstance,
      busy: vmiNamed('busy', []),
    })[name],
  activeMigrationFor: async (_ns, vmiName) => (vmiName === 'busy' ? 'uid-of-m0' : undefined),
  findInstancetypeSpec: async (_kind, _ns, name) => ({ 'u1.medium': { cpu: { guest: 1 }, memory: { guest: '4Gi' } }, fedora: {}, 'gpu.large': { cpu: { guest: 1 }, memory: { guest: '4Gi' }, gpus: [{ name: 'g', deviceName: 'nvidia.com/TU104GL_Tesla_T4' }] } })[name],
  permittedHostDevices: async () => ({ pciHostDevices: [{ pciVendorSelector: '10de:1eb8', resourceName: 'nvidia.com/TU104GL_Tesla_T4' }] }),
  kubevirtCount: async () => 1,
  // The KubeVirt CR allows guests 150 % of their pod's memory request.
  memoryOvercommit: async () => 150,
  isKubevmComponent: (user) => user.startsWith('system:serviceaccount:kubevirt:'),
  listVmis: async () => [],
  launcherPodVmi: async (_ns, pod) => ({ 'virt-launcher-running-x7k2p': 'running' })[pod],
  // Evictions have their own suite (eviction.test.ts); none of these requests is one.
  evictedPod: async () => undefined,
  clusterEvictionStrategy: async () => undefined,
  markForEvacuation: async () => Promise.reject(new Error('no eviction in this suite')),
  // A tiny RBAC: who holds which permission (verb resource[/subresource] name) in namespace "ns".
  authorize: async (user, a) => {
    const held: Record<string, string[]> = {
      devicer: ['use hostdevices nvidia.com/TU104GL_Tesla_T4'],
      debugger: ['exec virtualmachineinstances/launcher running', 'attach virtualmachineinstances/launcher running', 'portforward virtualmachineinstances/launcher running'],
    };
    const wanted = `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''} ${a.name ?? ''}`;
    const allowed = a.namespace === 'ns' && a.group === 'subresources.kubevirt.io' && (held[user.username] ?? []).includes(wanted);
    return { allowed, reason: allowed ? 'granted' : '' };
  },
};

const vm = validManifests['quickstartVM'] as Manifest;
const vmi = validManifests['masqueradeVMI'] as Manifest;
const itVM = validManifests['instancetypeVM'] as Manifest;
const migration: Manifest = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'm', namespace: 'ns' }, spec: { vmiName: 'running' } };
const kubevirt: Manifest = { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: {} };
const policy: Manifest = { apiVersion: 'migrations.kubevirt.io/v1alpha1', kind: 'MigrationPolicy', metadata: { name: 'p' }, spec: { selectors: {} } };

/** The review the API server sends; its kind comes from the URL (`as`), not from the body. */
function request(object: Manifest, operation: 'CREATE' | 'UPDATE' = 'CREATE', oldObject?: Manifest, username = 'alice', as: Manifest = object): AdmissionRequest {
  const [group, version] = as.apiVersion.includes('/') ? as.apiVersion.split('/') : ['', as.apiVersion];
  return {
    uid: 'uid-1',
    kind: { group: group ?? '', version: version ?? '', kind: as.kind },
    operation,
    namespace: 'ns',
    userInfo: { username },
    object,
    ...(oldObject ? { oldObject } : {}),
  };
}

/** A copy of `base` changed by `mutate` (which reaches into arbitrary paths: typing it would restate the schema). */
 
function variant(base: Manifest, mutate: (m: any) => void): Manifest {
  const copy = clone(base);
  mutate(copy);
  return copy;
}

interface Case {
  manifest: Manifest;
  /** The field path the denial must name. */
  path: string;
  /** More of the message it must contain (what is wrong, or what would be accepted). */
  says?: RegExp;
  operation?: 'CREATE' | 'UPDATE';
  oldObject?: Manifest;
}

const t = 'spec.template.spec';
const cases: Record<string, Case> = {
  // ---- disks and volumes ----
  'VM disk without a volume': { manifest: variant(vm, (m) => m.spec.template.spec.domain.devices.disks.push({ name: 'data', disk: {} })), path: `${t}.domain.devices.disks[2].name`, says: /no volume of that name.*containerdisk/ },
  'VM disk names a missing volume (renamed volume)': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0].name = 'other')), path: `${t}.domain.devices.disks[0].name` },
  'VM no volumes at all': { manifest: variant(vm, (m) => delete m.spec.template.spec.volumes), path: `${t}.domain.devices.disks[0].name`, says: /volumes: none/ },
  'VMI disk without a volume': { manifest: variant(vmi, (m) => m.spec.domain.devices.disks.push({ name: 'x' })), path: 'spec.domain.devices.disks[1].name' },
  'VMI volume renamed': { manifest: variant(vmi, (m) => (m.spec.volumes[0].name = 'renamed')), path: 'spec.domain.devices.disks[0].name' },
  'VM duplicate disk names': { manifest: variant(vm, (m) => m.spec.template.spec.domain.devices.disks.push({ name: 'containerdisk' })), path: `${t}.domain.devices.disks[2].name`, says: /duplicate name/ },
  'VMI duplicate volume names': { manifest: variant(vmi, (m) => m.spec.volumes.push({ name: 'containerdisk', emptyDisk: { capacity: '1Gi' } })), path: 'spec.volumes[1].name', says: /duplicate/ },
  'VM volume with two sources': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0].emptyDisk = { capacity: '1Gi' })), path: `${t}.volumes[0]` },
  'VM volume with no source': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0] = { name: 'containerdisk' })), path: `${t}.volumes[0]` },
  'VMI volume with two sources': { manifest: variant(vmi, (m) => (m.spec.volumes[0].persistentVolumeClaim = { claimName: 'x' })), path: 'spec.volumes[0]' },
  'VM disk with two device kinds': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.disks[0].cdrom = { bus: 'sata' })), path: `${t}.domain.devices.disks[0]` },
  'VM disk bus ide': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.disks[0].disk.bus = 'ide')), path: `${t}.domain.devices.disks[0].disk.bus`, says: /supported values/ },
  'VMI cache mode unknown': { manifest: variant(vmi, (m) => (m.spec.domain.devices.disks[0].cache = 'unsafe')), path: 'spec.domain.devices.disks[0].cache' },
  'VMI errorPolicy unknown': { manifest: variant(vmi, (m) => (m.spec.domain.devices.disks[0].errorPolicy = 'retry')), path: 'spec.domain.devices.disks[0].errorPolicy' },
  'VM containerDisk without image': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0].containerDisk = {})), path: `${t}.volumes[0].containerDisk.image` },
  'VM emptyDisk without capacity': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0] = { name: 'containerdisk', emptyDisk: {} })), path: `${t}.volumes[0].emptyDisk.capacity` },
  'VM emptyDisk capacity out of range': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0] = { name: 'containerdisk', emptyDisk: { capacity: '1e300000000' } })), path: `${t}.volumes[0].emptyDisk.capacity`, says: /out of range/ },
  'VMI memory with a thousand-digit quantity': { manifest: variant(vmi, (m) => (m.spec.domain.memory = { guest: `${'9'.repeat(1000)}Mi` })), path: 'spec.domain.memory.guest', says: /out of range/ },
  'VM memory request out of range': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.resources = { requests: { memory: '20Ei' } })), path: `${t}.domain.resources.requests.memory`, says: /out of range/ },
  'VM PVC without claimName': { manifest: variant(vm, (m) => (m.spec.template.spec.volumes[0] = { name: 'containerdisk', persistentVolumeClaim: {} })), path: `${t}.volumes[0].persistentVolumeClaim.claimName` },
  'VM two disks on one volume': {
    manifest: variant(vm, (m) => {
      m.spec.template.spec.domain.devices.disks[1].name = 'containerdisk';
    }),
    path: `${t}.domain.devices.disks[1].name`,
  },
  // ---- boot order ----
  'VM duplicate boot order on disks': {
    manifest: variant(vm, (m) => {
      m.spec.template.spec.domain.devices.disks[0].bootOrder = 1;
      m.spec.template.spec.domain.devices.disks[1].bootOrder = 1;
    }),
    path: `${t}.domain.devices.disks[1].bootOrder`,
    says: /boot order 1 is already used by spec.template.spec.domain.devices.disks\[0\].bootOrder/,
  },
  'VMI duplicate boot order disk and interface': {
    manifest: variant(vmi, (m) => {
      m.spec.domain.devices.disks[0].bootOrder = 2;
      m.spec.domain.devices.interfaces[0].bootOrder = 2;
    }),
    path: 'spec.domain.devices.interfaces[0].bootOrder',
  },
  'VM boot order 0': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.disks[0].bootOrder = 0)), path: `${t}.domain.devices.disks[0].bootOrder` },
  'VM boot order negative on interface': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.interfaces[0].bootOrder = -3)), path: `${t}.domain.devices.interfaces[0].bootOrder` },
  // ---- interfaces and networks ----
  'VM interface without a network': { manifest: variant(vm, (m) => (m.spec.template.spec.networks[0].name = 'other')), path: `${t}.domain.devices.interfaces[0].name`, says: /no network of that name/ },
  'VM network without an interface': { manifest: variant(vm, (m) => m.spec.template.spec.networks.push({ name: 'extra', pod: {} })), path: `${t}.networks[1].name`, says: /no interface of that name/ },
  'VMI interface without a network': { manifest: variant(vmi, (m) => delete m.spec.networks), path: 'spec.domain.devices.interfaces[0].name', says: /networks: none/ },
  'VMI duplicate interface names': { manifest: variant(vmi, (m) => m.spec.domain.devices.interfaces.push({ name: 'red', masquerade: {} })), path: 'spec.domain.devices.interfaces[1].name' },
  'VM interface with two bindings': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.interfaces[0].bridge = {})), path: `${t}.domain.devices.interfaces[0]` },
  'VM interface model unknown': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.interfaces[0].model = 'ne2k')), path: `${t}.domain.devices.interfaces[0].model` },
  'VM network without a source': { manifest: variant(vm, (m) => (m.spec.template.spec.networks[0] = { name: 'default' })), path: `${t}.networks[0]` },
  'VMI port out of range': { manifest: variant(vmi, (m) => (m.spec.domain.devices.interfaces[0].ports[0].port = 70000)), path: 'spec.domain.devices.interfaces[0].ports[0].port' },
  'VMI port protocol unknown': { manifest: variant(vmi, (m) => (m.spec.domain.devices.interfaces[0].ports[0].protocol = 'SCTP2')), path: 'spec.domain.devices.interfaces[0].ports[0].protocol' },
  // ---- run strategy ----
  'VM running and runStrategy': { manifest: variant(vm, (m) => (m.spec.runStrategy = 'Always')), path: 'spec.running', says: /mutually exclusive/ },
  'VM runStrategy unknown': { manifest: variant(vm, (m) => { delete m.spec.running; m.spec.runStrategy = 'Sometimes'; }), path: 'spec.runStrategy', says: /supported values/ },
  'VM running not a boolean': { manifest: variant(vm, (m) => (m.spec.running = 'yes')), path: 'spec.running' },
  'VM without template': { manifest: variant(vm, (m) => delete m.spec.template), path: 'spec.template' },
  'VM template without domain': { manifest: variant(vm, (m) => delete m.spec.template.spec.domain), path: `${t}.domain` },
  // ---- instancetype ----
  'VM guest memory with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.memory = { guest: '1Gi' })), path: `${t}.domain.memory.guest`, says: /conflicts with spec.memory.guest of VirtualMachineClusterInstancetype u1.medium; remove it from the VM or choose another instancetype/ },
  'VM CPU sockets with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.cpu = { sockets: 2 })), path: `${t}.domain.cpu.sockets` },
  'VM CPU cores with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.cpu = { cores: 2 })), path: `${t}.domain.cpu.cores` },
  'VM CPU threads with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.cpu = { threads: 2 })), path: `${t}.domain.cpu.threads` },
  'VM memory request with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.resources = { requests: { memory: '1Gi' } })), path: `${t}.domain.resources.requests.memory` },
  'VM cpu limit with an instancetype': { manifest: variant(itVM, (m) => (m.spec.template.spec.domain.resources = { limits: { cpu: '2' } })), path: `${t}.domain.resources.limits.cpu` },
  'VM instancetype without name': { manifest: variant(itVM, (m) => (m.spec.instancetype = {})), path: 'spec.instancetype.name' },
  // ---- host devices ----
  'VM hostDevice not permitted': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.hostDevices = [{ name: 'nic', deviceName: 'intel.com/qat' }])), path: `${t}.domain.devices.hostDevices[0].deviceName`, says: /not permitted; permitted: "nvidia.com\/TU104GL_Tesla_T4"/ },
  'VMI gpu not permitted': { manifest: variant(vmi, (m) => (m.spec.domain.devices.gpus = [{ name: 'g', deviceName: 'nvidia.com/A100' }])), path: 'spec.domain.devices.gpus[0].deviceName' },
  'VMI gpu without deviceName': { manifest: variant(vmi, (m) => (m.spec.domain.devices.gpus = [{ name: 'g' }])), path: 'spec.domain.devices.gpus[0].deviceName', says: /required/ },
  'VM hostDevice without name': { manifest: variant(vm, (m) => (m.spec.template.spec.domain.devices.hostDevices = [{ deviceName: 'nvidia.com/TU104GL_Tesla_T4' }])), path: `${t}.domain.devices.hostDevices[0].name` },
  // ---- resources and CPU ----
  'VMI memory request not a quantity': { manifest: variant(vmi, (m) => (m.spec.domain.resources.requests.memory = 'lots')), path: 'spec.domain.resources.requests.memory', says: /quantity/ },
  'VMI guest memory not a quantity': { manifest: variant(vmi, (m) => (m.spec.domain.memory = { guest: '2 GB' })), path: 'spec.domain.memory.guest' },
  // ---- memory overcommit (the KubeVirt CR allows 150 % here) ----
  'VM guest memory beyond the allowed overcommit': {
    manifest: variant(vm, (m) => {
      m.spec.template.spec.domain.resources.requests.memory = '1Gi';
      m.spec.template.spec.domain.memory = { guest: '2Gi' };
    }),
    path: `${t}.domain.memory.guest`,
    says: /2Gi is 200% of the memory request 1Gi \(spec.template.spec.domain.resources.requests.memory\); the KubeVirt CR's spec.configuration.developerConfiguration.memoryOvercommit allows at most 150%, so at most 1536Mi/,
  },
  'VMI guest memory beyond the allowed overcommit': {
    manifest: variant(vmi, (m) => {
      m.spec.domain.resources.requests.memory = '100M';
      m.spec.domain.memory = { guest: '151M' };
    }),
    path: 'spec.domain.memory.guest',
    says: /151M is 151% of the memory request 100M .* at most 150%/,
  },
  'VMI guest memory with a zero memory request': {
    manifest: variant(vmi, (m) => {
      m.spec.domain.resources.requests.memory = '0';
      m.spec.domain.memory = { guest: '64Mi' };
    }),
    path: 'spec.domain.memory.guest',
    says: /unbounded of the memory request 0/,
  },
  'VMI cpu cores 0': { manifest: variant(vmi, (m) => (m.spec.domain.cpu = { cores: 0 })), path: 'spec.domain.cpu.cores' },
  'VMI cpu sockets not an integer': { manifest: variant(vmi, (m) => (m.spec.domain.cpu = { sockets: 1.5 })), path: 'spec.domain.cpu.sockets' },
  'VMI terminationGracePeriodSeconds negative': { manifest: variant(vmi, (m) => (m.spec.terminationGracePeriodSeconds = -1)), path: 'spec.terminationGracePeriodSeconds' },
  'VMI evictionStrategy unknown': { manifest: variant(vmi, (m) => (m.spec.evictionStrategy = 'Teleport')), path: 'spec.evictionStrategy' },
  'VMI startStrategy unknown': { manifest: variant(vmi, (m) => (m.spec.startStrategy = 'Later')), path: 'spec.startStrategy' },
  'VMI firmware both bios and efi': { manifest: variant(vmi, (m) => (m.spec.domain.firmware = { bootloader: { bios: {}, efi: {} } })), path: 'spec.domain.firmware.bootloader' },
  'VMI unknown field in spec': { manifest: variant(vmi, (m) => (m.spec.colour = 'blue')), path: 'spec.colour', says: /unknown field/ },
  // ---- running VMI is fixed ----
  'VMI spec changed after creation': {
    manifest: variant(vmi, (m) => (m.spec.domain.resources.requests.memory = '2048M')),
    operation: 'UPDATE',
    oldObject: vmi,
    path: 'spec',
    says: /cannot be changed once created/,
  },
  // ---- migrations ----
  'migration of a missing VMI': { manifest: variant(migration, (m) => (m.spec.vmiName = 'ghost')), path: 'spec.vmiName', says: /the VMI "ns\/ghost" does not exist/ },
  'migration of a VMI that cannot migrate': { manifest: variant(migration, (m) => (m.spec.vmiName = 'stuck')), path: 'spec.vmiName', says: /Cannot migrate VMI, Reason: , Message: cannot migrate VMI: PVC root-pvc is not shared/ },
  'migration of a VMI that has ended': { manifest: variant(migration, (m) => (m.spec.vmiName = 'done')), path: 'spec.vmiName', says: /Cannot migrate VMI in finalized state/ },
  'migration while another is in flight': { manifest: variant(migration, (m) => (m.spec.vmiName = 'busy')), path: 'spec.vmiName', says: /in-flight migration detected. Active migration job \(uid-of-m0\)/ },
  'migration priority set by a user': { manifest: variant(migration, (m) => (m.spec.priority = 'user-triggered')), path: 'spec.priority', says: /only kubevm's controller/ },
  'migration without vmiName': { manifest: variant(migration, (m) => delete m.spec.vmiName), path: 'spec.vmiName' },
  'migration spec changed': { manifest: variant(migration, (m) => (m.spec.addedNodeSelector = { zone: 'b' })), operation: 'UPDATE', oldObject: migration, path: 'spec', says: /cannot be changed/ },
  // ---- the other kinds ----
  'second KubeVirt': { manifest: kubevirt, path: 'metadata.name', says: /already exists/ },
  'KubeVirt permitted device without resourceName': {
    manifest: variant(kubevirt, (m) => (m.spec.configuration = { permittedHostDevices: { pciHostDevices: [{ pciVendorSelector: '10de:1eb8' }] } })),
    path: 'spec.configuration.permittedHostDevices.pciHostDevices[0].resourceName',
  },
  'KubeVirt unknown configuration field': { manifest: variant(kubevirt, (m) => (m.spec.configuration = { turbo: true })), path: 'spec.configuration.turbo' },
  'instancetype without memory': { manifest: variant(validManifests['clusterInstancetype'] as Manifest, (m) => delete m.spec.memory), path: 'spec.memory' },
  'instancetype cpu guest 0': { manifest: variant(validManifests['clusterInstancetype'] as Manifest, (m) => (m.spec.cpu.guest = 0)), path: 'spec.cpu.guest' },
  'preference unknown bus': { manifest: variant(validManifests['clusterPreference'] as Manifest, (m) => (m.spec.devices.preferredDiskBus = 'ide')), path: 'spec.devices.preferredDiskBus' },
  'MigrationPolicy unknown field': { manifest: variant(policy, (m) => (m.spec.speed = 'fast')), path: 'spec.speed' },
};

// The schema corpus shared with the CRD tests: each is denied by the webhook with its message.
for (const [name, c] of Object.entries(invalidCases)) {
  const manifest = clone(c.base);
  c.mutate(manifest);
  cases[`schema corpus: ${name}`] = { manifest, path: c.message.split(':')[0] ?? '' };
}

describe('the validating webhook denies invalid manifests, naming the field path', () => {
  it('has at least 60 cases', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(60);
  });

  it.each(Object.entries(cases))('%s', async (_name, c) => {
    const response = await admit(request(c.manifest, c.operation, c.oldObject), context);
    expect(response.allowed).toBe(false);
    expect(response.uid).toBe('uid-1');
    const message = response.status?.message ?? '';
    expect(message).toContain(`${c.path}`);
    if (c.says) expect(message).toMatch(c.says);
  });
});

describe('the validating webhook admits valid manifests', () => {
  it.each(Object.entries(validManifests))('%s', async (name, manifest) => {
    // fullVMI names devices this context does not permit; permit them for this check.
    const permitAll: AdmissionContext = {
      ...context,
      permittedHostDevices: async () => ({ pciHostDevices: [{ pciVendorSelector: 'a:b', resourceName: 'intel.com/qat' }, { pciVendorSelector: 'c:d', resourceName: 'nvidia.com/GP102GL_Tesla_P40' }] }),
      authorize: async () => ({ allowed: true, reason: '' }),
    };
    const subject = name === 'migration' ? { ...manifest, metadata: { name: 'm' }, spec: { vmiName: 'running' } } : manifest;
    const response = await admit(request(subject), permitAll);
    expect(response).toMatchObject({ allowed: true });
  });

  it('lets kubevm\'s own components change a VMI\'s spec (stop\'s grace period)', async () => {
    const shorter = variant(vmi, (m) => (m.spec.terminationGracePeriodSeconds = 0));
    expect(await admit(request(shorter, 'UPDATE', vmi, 'system:serviceaccount:kubevirt:kubevm-api-server'), context)).toMatchObject({ allowed: true });
  });

  it('lets anyone update a VMI whose spec is unchanged, whatever the order of its keys (a label or status change)', async () => {
    const reordered = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reordered)
        : typeof value === 'object' && value !== null
          ? Object.fromEntries(Object.entries(value).reverse().map(([key, member]) => [key, reordered(member)]))
          : value;
    const relabelled = { ...vmi, metadata: { ...(vmi.metadata ?? {}), labels: { team: 'a' } }, spec: reordered(vmi['spec']) };
    expect(await admit(request(relabelled, 'UPDATE', vmi), context)).toMatchObject({ allowed: true });
  });

  it('lets anyone change a VMI\'s metadata (labels, annotations)', async () => {
    // The API server keeps the user's key order, which is not the schema's: neither counts.
    const reordered = { ...clone(vmi), spec: Object.fromEntries(Object.entries(clone(vmi).spec as object).reverse()) } as Manifest;
    for (const base of [vmi, reordered, validManifests['fullVMI'] as Manifest]) {
      const labelled = variant(base, (m) => (m.metadata.annotations = { 'kubevm.io/pause-requested': 'true' }));
      expect(await admit(request(labelled, 'UPDATE', base), context)).toMatchObject({ allowed: true });
    }
  });

  it('judges the object without its status (written by kubevm\'s controllers, not by the user)', async () => {
    const labelled = variant(vmi, (m) => {
      m.metadata.labels = { team: 'a' };
      m.status = { phase: 'Running', somethingNewer: true };
    });
    expect(await admit(request(labelled, 'UPDATE', variant(vmi, (m) => (m.status = { phase: 'Running' }))), context)).toMatchObject({ allowed: true });
  });

  it('warns about risky but legal choices', async () => {
    const risky = variant(vm, (m) => {
      m.spec.template.spec.domain.devices.disks[0].shareable = true;
      m.spec.template.spec.domain.devices.disks[1].errorPolicy = 'ignore';
      m.spec.template.spec.domain.resources.overcommitGuestOverhead = true;
    });
    const response = await admit(request(risky), context);
    expect(response.allowed).toBe(true);
    const warnings = response.warnings ?? [];
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec.template.spec.domain.devices.disks\[0\].shareable: /),
        expect.stringMatching(/^spec.template.spec.domain.devices.disks\[1\].errorPolicy: "ignore"/),
        expect.stringMatching(/^spec.template.spec.volumes\[0\].containerDisk.image: .* by tag/),
        expect.stringMatching(/^spec.template.spec.domain.resources.overcommitGuestOverhead: /),
      ]),
    );
    const pinned = variant(vm, (m) => (m.spec.template.spec.volumes[0].containerDisk.image = `quay.io/x/y@sha256:${'a'.repeat(64)}`));
    expect((await admit(request(pinned), context)).warnings ?? []).toEqual([]);
  });

  it('warns, not denies, when the instancetype does not exist yet', async () => {
    const later = variant(itVM, (m) => (m.spec.instancetype.name = 'u2.large'));
    const response = await admit(request(later), context);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^spec.instancetype.name: VirtualMachineClusterInstancetype "u2.large" does not exist/)]));
  });

  it('admits guest memory up to the configured overcommit, and none beyond the request when it is unset or below 100 %', async () => {
    const withMemory = (guest: string, request: string): Manifest =>
      variant(vmi, (m) => {
        m.spec.domain.resources.requests.memory = request;
        m.spec.domain.memory = { guest };
      });
    expect(await admit(request(withMemory('1536Mi', '1Gi')), context)).toMatchObject({ allowed: true });
    expect(await admit(request(withMemory('512Mi', '1Gi')), context)).toMatchObject({ allowed: true });
    for (const configured of [undefined, 100, 50]) {
      const strict: AdmissionContext = { ...context, memoryOvercommit: async () => configured };
      expect(await admit(request(withMemory('1Gi', '1Gi')), strict)).toMatchObject({ allowed: true });
      expect(await admit(request(withMemory('1025Mi', '1Gi')), strict)).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/allows at most 100%, so at most 1Gi/) } });
    }
    // Only one of the two stated: the controller derives the other, the CR is not even read.
    const unread: AdmissionContext = { ...context, memoryOvercommit: async () => Promise.reject(new Error('not read')) };
    const guestOnly = variant(vmi, (m) => {
      delete m.spec.domain.resources;
      m.spec.domain.memory = { guest: '8Gi' };
    });
    expect(await admit(request(guestOnly), unread)).toMatchObject({ allowed: true });
    expect(await admit(request(vm), unread)).toMatchObject({ allowed: true });
  });

  it('refuses (500, retried by the client) when a lookup fails, never admits unchecked', async () => {
    const failing: AdmissionContext = { ...context, findVmi: async () => Promise.reject(new Error('connection refused')) };
    expect(await admit(request(migration), failing)).toMatchObject({ allowed: false, status: { code: 500, message: expect.stringMatching(/connection refused/) } });
  });
});

describe('the guards', () => {
  const gpuVM = variant(vm, (m) => (m.spec.template.spec.domain.devices.gpus = [{ name: 'gpu1', deviceName: 'nvidia.com/TU104GL_Tesla_T4' }]));
  const gpuVMI = variant(vmi, (m) => (m.spec.domain.devices.hostDevices = [{ name: 'dev1', deviceName: 'nvidia.com/TU104GL_Tesla_T4' }]));

  it('refuses a permitted host device to a user who may not use it, naming the field and the permission', async () => {
    for (const [manifest, path] of [[gpuVM, `${t}.domain.devices.gpus[0].deviceName`], [gpuVMI, 'spec.domain.devices.hostDevices[0].deviceName']] as const) {
      const response = await admit(request(manifest, 'CREATE', undefined, 'alice'), context);
      expect(response.allowed).toBe(false);
      expect(response.status?.message).toContain(`${path}: user "alice" may not use host device "nvidia.com/TU104GL_Tesla_T4": it needs "use" on "hostdevices" in API group "subresources.kubevirt.io"`);
    }
  });

  it('admits it to a user who may use that resource name, and still refuses a name the KubeVirt CR does not permit', async () => {
    expect(await admit(request(gpuVM, 'CREATE', undefined, 'devicer'), context)).toMatchObject({ allowed: true });
    expect(await admit(request(gpuVMI, 'CREATE', undefined, 'devicer'), context)).toMatchObject({ allowed: true });
    const other = variant(gpuVM, (m) => (m.spec.template.spec.domain.devices.gpus[0].deviceName = 'nvidia.com/A100'));
    const response = await admit(request(other, 'CREATE', undefined, 'devicer'), context);
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toMatch(/gpus\[0\].deviceName: "nvidia.com\/A100" is not permitted/);
    expect(response.status?.message).toMatch(/may not use host device "nvidia.com\/A100"/);
  });

  it('asks only for devices an update adds, and not of kubevm\'s own components', async () => {
    const labelled = variant(gpuVM, (m) => (m.metadata.finalizers = ['kubevirt.io/virtualMachineControllerFinalize']));
    expect(await admit(request(labelled, 'UPDATE', gpuVM, 'alice'), context)).toMatchObject({ allowed: true });
    const added = variant(gpuVM, (m) => m.spec.template.spec.domain.devices.gpus.push({ name: 'gpu2', deviceName: 'nvidia.com/TU104GL_Tesla_T4' }));
    expect(await admit(request(added, 'UPDATE', vm, 'alice'), context)).toMatchObject({ allowed: false });
    expect(await admit(request(gpuVMI, 'CREATE', undefined, 'system:serviceaccount:kubevirt:kubevm-controller'), context)).toMatchObject({ allowed: true });
  });

  it('asks for an instancetype\'s devices from whoever writes the instancetype, and from whoever makes a VM use it', async () => {
    const clusterIt = validManifests['clusterInstancetype'] as Manifest;
    const withGpu = variant(clusterIt, (m) => (m.spec.gpus = [{ name: 'g', deviceName: 'nvidia.com/TU104GL_Tesla_T4' }]));
    const denied = await admit(request(withGpu, 'CREATE', undefined, 'alice'), context);
    expect(denied.allowed).toBe(false);
    expect(denied.status?.message).toContain('spec.gpus[0].deviceName: user "alice" may not use host device "nvidia.com/TU104GL_Tesla_T4"');
    const other = variant(withGpu, (m) => (m.spec.gpus[0].deviceName = 'nvidia.com/A100'));
    expect((await admit(request(other, 'CREATE', undefined, 'alice'), context)).status?.message).toMatch(/spec.gpus\[0\].deviceName: "nvidia.com\/A100" is not permitted/);
    const usesIt = variant(itVM, (m) => (m.spec.instancetype.name = 'gpu.large'));
    const vmDenied = await admit(request(usesIt, 'CREATE', undefined, 'alice'), context);
    expect(vmDenied.status?.message).toContain('spec.instancetype.gpus[0].deviceName: user "alice" may not use host device');
    expect(await admit(request(usesIt, 'CREATE', undefined, 'devicer'), context)).toMatchObject({ allowed: true });
    // The kind as the controller reads it: KubeVirt's aliases, in any case, name the same instancetype.
    for (const kind of ['virtualmachineclusterinstancetype', 'VirtualMachineClusterInstanceType', 'virtualmachineclusterinstancetypes']) {
      const aliased = variant(usesIt, (m) => (m.spec.instancetype.kind = kind));
      expect((await admit(request(aliased, 'CREATE', undefined, 'alice'), context)).status?.message).toContain('spec.instancetype.gpus[0].deviceName: user "alice" may not use host device');
    }
    const unknownKind = await admit(request(variant(usesIt, (m) => (m.spec.instancetype.kind = 'Instancetype')), 'CREATE', undefined, 'devicer'), context);
    expect(unknownKind.status?.message).toContain('spec.instancetype.kind: unknown instancetype kind "Instancetype"');
    // A label change of a VM whose instancetype reference stays asks nothing.
    const relabelled = variant(usesIt, (m) => (m.metadata.labels = { team: 'a' }));
    expect(await admit(request(relabelled, 'UPDATE', usesIt, 'alice'), context)).toMatchObject({ allowed: true });
  });

  const connect = (pod: string, subResource: string, username: string, resource = 'pods'): AdmissionRequest => ({
    uid: 'uid-c',
    kind: { group: '', version: 'v1', kind: 'PodExecOptions' },
    resource: { group: '', version: 'v1', resource },
    subResource,
    operation: 'CONNECT',
    namespace: 'ns',
    name: pod,
    userInfo: { username, groups: ['system:authenticated'] },
    object: { kind: 'PodExecOptions', apiVersion: 'v1', command: ['sh'] },
  });

  it.each(['exec', 'attach', 'portforward'])('refuses %s into a launcher pod without the launcher permission, naming it', async (sub) => {
    const response = await admit(connect('virt-launcher-running-x7k2p', sub, 'alice'), context);
    expect(response).toMatchObject({ uid: 'uid-c', allowed: false, status: { code: 403, reason: 'Forbidden' } });
    expect(response.status?.message).toContain(`needs "${sub}" on "virtualmachineinstances/launcher" in API group "subresources.kubevirt.io" (name "running") in the namespace "ns"`);
    expect(response.status?.message).toContain('kubevm.io:launcher-entry');
    expect(await admit(connect('virt-launcher-running-x7k2p', sub, 'debugger'), context)).toMatchObject({ allowed: true });
  });

  it('lets exec into other pods and CONNECTs to other subresources through untouched', async () => {
    expect(await admit(connect('web', 'exec', 'alice'), context)).toMatchObject({ allowed: true });
    expect(await admit(connect('virt-launcher-running-x7k2p', 'proxy', 'alice'), context)).toMatchObject({ allowed: true });
    expect(await admit(connect('virt-launcher-running-x7k2p', 'exec', 'alice', 'services'), context)).toMatchObject({ allowed: true });
  });

  it('refuses (500) when it cannot tell, never lets in unchecked', async () => {
    const failing: AdmissionContext = { ...context, launcherPodVmi: async () => Promise.reject(new Error('pods "x" is forbidden')) };
    expect(await admit(connect('virt-launcher-running-x7k2p', 'exec', 'debugger'), failing)).toMatchObject({ allowed: false, status: { code: 500 } });
    const noReview: AdmissionContext = { ...context, authorize: async () => Promise.reject(new Error('timeout')) };
    expect(await admit(connect('virt-launcher-running-x7k2p', 'exec', 'debugger'), noReview)).toMatchObject({ allowed: false, status: { code: 500 } });
    expect(await admit(request(gpuVM, 'CREATE', undefined, 'devicer'), noReview)).toMatchObject({ allowed: false, status: { code: 500 } });
  });
});

// Random mutations of valid manifests: whatever arrives, the answer is an allow or a deny with a
// reason, never an exception (which the endpoint would turn into a 500).
describe('property: every review gets an answer', () => {
  const json: fc.Arbitrary<unknown> = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -5, max: 70000 }),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('', 'virtio', 'ide', 'Always', 'Halted', '1Gi', 'lots', 'containerdisk', 'default', 'ignore', 'pod'),
    fc.constant({}),
    fc.constant([]),
    fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('name', 'bus', 'disk', 'pod', 'image', 'guest', 'bootOrder'), fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxKeys: 3 }),
  );

  /** Every path (as key lists) in a JSON value. */
  function paths(value: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
    out.push(prefix);
    if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
    else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
    return out;
  }

  const mutation = fc.record({ pick: fc.nat(), op: fc.constantFrom('set', 'delete', 'add'), key: fc.constantFrom('name', 'spec', 'disks', 'volumes', 'x', 'bootOrder', 'instancetype'), value: json });
  const subjects = Object.values(validManifests);

  it('answers thousands of random mutations with an allow or a deny with a reason', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: subjects.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.constantFrom('CREATE', 'UPDATE'), async (which, mutations, operation) => {
        const manifest = clone(subjects[which] as Manifest) as Record<string, unknown>;
        for (const m of mutations) {
          const all = paths(manifest).filter((p) => p.length > 0);
          const path = all[m.pick % Math.max(all.length, 1)] ?? ['spec'];
          let parent: unknown = manifest;
          for (const key of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[key];
          const last = path[path.length - 1] as string | number;
          if (typeof parent !== 'object' || parent === null) continue;
          const record = parent as Record<string | number, unknown>;
          if (m.op === 'delete') delete record[last];
          else if (m.op === 'set') record[last] = structuredClone(m.value);
          else if (typeof record[last] === 'object' && record[last] !== null && !Array.isArray(record[last])) (record[last] as Record<string, unknown>)[m.key] = structuredClone(m.value);
          else if (Array.isArray(record[last])) (record[last] as unknown[]).push(structuredClone(m.value));
        }
        const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: request(manifest as Manifest, operation, subjects[which], 'alice', subjects[which]) };
        const answer = await handleAdmissionReview(review, context);
        expect(answer.response.uid).toBe('uid-1');
        if (!answer.response.allowed) {
          expect(answer.response.status?.message.length).toBeGreaterThan(0);
          expect(answer.response.status?.code).not.toBe(500);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('answers reviews that are not AdmissionReviews with a deny and a reason', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        const answer = await handleAdmissionReview(body, context);
        if (!answer.response.allowed) expect(answer.response.status?.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });
});
