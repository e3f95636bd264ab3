// The KubeVirt CR's configuration reaches the running components without a reinstall or a restart
// (kubevm installed through its operator, scripts/install-kubevm.sh):
//   permittedHostDevices: the api-server's webhook reads it at admission time, so a VM naming a
//   device is refused before the device is permitted and admitted right after;
//   useEmulation: the controller follows the CR, so the next launcher pod asks for /dev/kvm once
//   emulation is off, and does not once it is on again;
//   the ImageVolume feature gate: the next launcher pod mounts its containerDisk and kernelBoot
//   images (Kubernetes image volumes, which the local cluster's containerd 2 serves) instead of
//   copying them, and its guest boots from them; without the gate the copies are back.
// No component pod is replaced meanwhile. The CR is restored whatever happens. Fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterEnv, run } from '../cluster/cluster-env.js';
import type { ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { requireKubevmController } from './kubevm-installed.js';
import { counterVmiSpec, guestConsole, smallVmiSpec, vmiResource } from './small-vm.js';
import type { VMI } from './small-vm.js';

jest.setTimeout(180_000);

const kubevirtResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true };
type Pod = V1Pod & KubeObject;
interface KubeVirt extends KubeObject {
  spec?: { configuration?: Record<string, unknown> };
}

let env: ClusterEnv;
let client: KubeClient;
let namespace: string | undefined;
let original: Record<string, unknown> | undefined;

const kubevirts = () => client.resource<KubeVirt>(kubevirtResource);

async function configure(configuration: Record<string, unknown>): Promise<void> {
  await kubevirts().patch('kubevirt', 'kubevirt', { spec: { configuration } }, 'merge');
}

/** The uids of kubevm's component pods (operator included). */
async function componentPods(): Promise<string[]> {
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/name=kubevm' });
  return pods.items.map((pod) => pod.metadata?.uid ?? '').sort();
}

/** `kubectl create --dry-run=server` of a VM naming a host device: the webhook's answer. */
async function dryRunVmWithHostDevice(): Promise<{ code: number; output: string }> {
  const spec = smallVmiSpec() as { domain: { devices: Record<string, unknown> } };
  spec.domain.devices['hostDevices'] = [{ name: 'accel', deviceName: 'example.com/kubevm-e2e-device' }];
  const vm = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'with-device', namespace }, spec: { runStrategy: 'Halted', template: { spec } } };
  const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(vm) });
  return { code: res.code, output: res.stdout + res.stderr };
}

/** Creates a VMI and returns the kvm device its launcher pod asks for (undefined: none). */
async function kvmRequestOfNewLauncher(name: string): Promise<string | undefined> {
  await client.resource<KubeObject & { spec: unknown }>(vmiResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace }, spec: smallVmiSpec() });
  let pod: Pod | undefined;
  await eventually(`${name}'s launcher pod`, 60_000, async () => {
    const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    return (pod = pods.items.find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === name)) !== undefined;
  });
  await client.resource(vmiResource).delete(name, namespace);
  return pod?.spec?.containers.find((c) => c.name === 'compute')?.resources?.limits?.['devices.kubevirt.io/kvm'];
}

/** Creates a counter VMI (containerDisk + kernelBoot) and returns its launcher pod once created. */
async function launcherOfNewCounterVmi(name: string): Promise<Pod> {
  await client.resource<KubeObject & { spec: unknown }>(vmiResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace }, spec: counterVmiSpec(5) });
  let pod: Pod | undefined;
  await eventually(`${name}'s launcher pod`, 60_000, async () => {
    const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    return (pod = pods.items.find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === name)) !== undefined;
  });
  return pod as Pod;
}

const imageVolumes = (pod: Pod): string[] => (pod.spec?.volumes ?? []).flatMap((v) => (v.image?.reference ? [v.image.reference] : [])).sort();
const containerNames = (pod: Pod): string[] => (pod.spec?.containers ?? []).map((c) => c.name);

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  original = (await kubevirts().get('kubevirt', 'kubevirt')).spec?.configuration ?? {};
  namespace = await createTestNamespace(client, 'kubevm-e2e-config');
}, 60_000);

afterAll(async () => {
  // Back to the configuration the other suites run with (useEmulation: the node has no usable KVM).
  if (original) {
    await kubevirts().patch('kubevirt', 'kubevirt', [{ op: 'replace', path: '/spec/configuration', value: original }], 'json').catch(() => undefined);
  }
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('the KubeVirt CR configuration, changed while kubevm runs', () => {
  it('permittedHostDevices reaches the admission webhook at once', async () => {
    const pods = await componentPods();
    const before = await dryRunVmWithHostDevice();
    expect(before.code).not.toBe(0);
    expect(before.output).toContain('"example.com/kubevm-e2e-device" is not permitted');

    await configure({ permittedHostDevices: { pciHostDevices: [{ pciVendorSelector: '8086:1234', resourceName: 'example.com/kubevm-e2e-device' }] } });
    const after = await dryRunVmWithHostDevice();
    expect(after.output).not.toContain('is not permitted');
    expect(after.code).toBe(0);
    expect(await componentPods()).toEqual(pods);
  });

  it('useEmulation reaches the controller: the next launcher pod asks for /dev/kvm or not', async () => {
    const pods = await componentPods();
    await configure({ developerConfiguration: { useEmulation: false } });
    // The controller's cache follows the CR; a VMI created just before the change is seen may still get the old answer.
    let attempt = 0;
    await eventually('a launcher pod asking for /dev/kvm', 60_000, async () => (await kvmRequestOfNewLauncher(`accelerated-${++attempt}`)) === '1');
    await configure({ developerConfiguration: { useEmulation: true } });
    await eventually('a launcher pod without /dev/kvm', 60_000, async () => (await kvmRequestOfNewLauncher(`emulated-${++attempt}`)) === undefined);
    expect(await componentPods()).toEqual(pods);
  });

  it('the ImageVolume feature gate reaches the controller: launcher pods mount their images, and the guest boots from them', async () => {
    const spec = counterVmiSpec(5) as { domain: { firmware: { kernelBoot: { container: { image: string } } } }; volumes: Array<{ containerDisk: { image: string } }> };
    const images = [spec.domain.firmware.kernelBoot.container.image, spec.volumes[0]?.containerDisk.image ?? ''].sort();
    await configure({ developerConfiguration: { useEmulation: true, featureGates: ['ImageVolume'] } });
    let attempt = 0;
    let name = '';
    let pod: Pod | undefined;
    // The controller's cache follows the CR: a VMI created before it sees the gate gets copies.
    await eventually('a launcher pod with image volumes', 60_000, async () => {
      name = `mounted-${++attempt}`;
      pod = await launcherOfNewCounterVmi(name);
      if (imageVolumes(pod).length > 0) return true;
      await client.resource(vmiResource).delete(name, namespace);
      return false;
    });
    expect(imageVolumes(pod as Pod)).toEqual(images);
    // No copy containers and no hook: the compute container alone.
    expect(containerNames(pod as Pod)).toEqual(['compute']);
    expect(pod?.spec?.containers[0]?.lifecycle).toBeUndefined();
    // The kernel came from one image volume; the guest found and wrote its disk, the other one's overlay.
    await eventually(`VMI ${name} Running`, 120_000, async () => (await client.resource<VMI>(vmiResource).find(name, namespace))?.status?.phase === 'Running');
    await eventually(`${name}'s guest running the program on its disk`, 120_000, async () => (await guestConsole(client, namespace as string, name)).includes('KUBEVM-DISK-WRITTEN'));
    await client.resource(vmiResource).delete(name, namespace);

    await configure({ developerConfiguration: { useEmulation: true, featureGates: [] } });
    await eventually('a launcher pod copying its images again', 60_000, async () => {
      name = `copied-${++attempt}`;
      pod = await launcherOfNewCounterVmi(name);
      await client.resource(vmiResource).delete(name, namespace);
      return imageVolumes(pod).length === 0;
    });
    expect(containerNames(pod as Pod).length).toBe(3);
  });
});
