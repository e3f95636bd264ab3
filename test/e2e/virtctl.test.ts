// KubeVirt's own virtctl (built unchanged from the kubevirt.io/kubevirt module, test/virtctl/)
// against kubevm on the real cluster: each verb changes the VM or VMI as it does on KubeVirt.
// The first run builds virtctl (minutes; cached in ~/.cache/kubevm afterwards).
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterEnv, run, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import type { VM, VMI } from './small-vm.js';
import { HttpMethod } from '@kubernetes/client-node';
import { diskImage } from './guest-images.js';
import { builtVirtctl, guestConsole, hasCondition, launcherRecords, runningVmiUid, smallVmiSpec, vmResource, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

let client: KubeClient;
let env: ClusterEnv;
let namespace: string;
let virtctlPath: string;

const vm = (name: string) => client.resource<VM>(vmResource).find(name, namespace);
const vmi = (name: string) => client.resource<VMI>(vmiResource).find(name, namespace);
const paused = async (name: string) => hasCondition(await vmi(name), 'Paused');

/** virtctl as the cluster admin, in the test namespace; its exit code and output. */
async function virtctl(...args: string[]): Promise<{ code: number; output: string }> {
  const res = await run(virtctlPath, ['--kubeconfig', env.kubeconfig, '-n', namespace, ...args], { timeoutMs: 60_000 });
  return { code: res.code, output: res.stdout + res.stderr };
}

const runningUid = (name: string) => runningVmiUid(client, namespace, name);

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  virtctlPath = await builtVirtctl();
  namespace = await createTestNamespace(client, 'kubevm-e2e-virtctl');
  // The small VM with Debian's qemu-guest-agent and its ext4 disk mounted, for the agent verbs.
  const spec = smallVmiSpec() as { domain: { firmware: { kernelBoot: { kernelArgs: string } }; devices: Record<string, unknown> }; volumes?: unknown[] };
  spec.domain.firmware.kernelBoot.kernelArgs += ' kubevm.agent=qemu-ga kubevm.disk=keep';
  spec.domain.devices['disks'] = [{ name: 'root', disk: { bus: 'virtio' } }];
  spec.volumes = [{ name: 'root', containerDisk: { image: diskImage, imagePullPolicy: 'IfNotPresent' } }];
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'vctl', namespace }, spec: { runStrategy: 'Halted', template: { spec } } });
}, 1_600_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('KubeVirt\'s virtctl against kubevm', () => {
  it('version reports the server\'s version', async () => {
    const res = await virtctl('version');
    expect(res.code).toBe(0);
    expect(res.output).toMatch(/Server Version: .*GitVersion:"v\d+\.\d+\.\d+"/);
  });

  it('expand shows the VM with its instancetype applied', async () => {
    await client.resource<KubeObject & { spec: unknown }>({ group: 'instancetype.kubevirt.io', version: 'v1beta1', resource: 'virtualmachineinstancetypes', kind: 'VirtualMachineInstancetype', namespaced: true }).create({
      apiVersion: 'instancetype.kubevirt.io/v1beta1',
      kind: 'VirtualMachineInstancetype',
      metadata: { name: 'small', namespace },
      spec: { cpu: { guest: 2 }, memory: { guest: '256Mi' } },
    });
    await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'typed', namespace },
      spec: { runStrategy: 'Halted', instancetype: { kind: 'VirtualMachineInstancetype', name: 'small' }, template: { spec: { domain: { devices: {} } } } },
    });
    const res = await virtctl('expand', '--vm', 'typed', '--output', 'json');
    expect(res.code).toBe(0);
    const expanded = JSON.parse(res.output) as { spec: { instancetype?: unknown; template: { spec: { domain: { memory?: { guest?: string }; cpu?: { sockets?: number } } } } } };
    expect(expanded.spec.instancetype).toBeUndefined();
    expect(expanded.spec.template.spec.domain).toMatchObject({ cpu: { sockets: 2 }, memory: { guest: '256Mi' } });

    // Once the controller has recorded the VM's snapshot of the instancetype, expand uses it, as
    // KubeVirt's does: a later edit of the instancetype changes nothing for this VM.
    await eventually('the instancetype snapshot recorded', 60_000, async () => {
      const typed = await client.resource<KubeObject & { status?: { instancetypeRef?: { controllerRevisionRef?: { name?: string } } } }>(vmResource).find('typed', namespace);
      return Boolean(typed?.status?.instancetypeRef?.controllerRevisionRef?.name);
    });
    await client.request(HttpMethod.PATCH, `/apis/instancetype.kubevirt.io/v1beta1/namespaces/${namespace}/virtualmachineinstancetypes/small`, {
      body: { spec: { memory: { guest: '512Mi' } } },
      contentType: 'application/merge-patch+json',
    });
    const again = JSON.parse((await virtctl('expand', '--vm', 'typed', '--output', 'json')).output) as typeof expanded;
    expect(again.spec.template.spec.domain).toMatchObject({ memory: { guest: '256Mi' } });
  });

  it('start, pause, unpause, soft-reboot, migrate, restart and stop', async () => {
    expect(await virtctl('start', 'vctl')).toMatchObject({ code: 0 });
    expect((await vm('vctl'))?.spec.runStrategy).toBe('Always');
    const first = await runningUid('vctl');
    const again = await virtctl('start', 'vctl');
    expect(again.code).not.toBe(0);
    expect(again.output).toContain('VM is already running');

    expect(await virtctl('pause', 'vmi', 'vctl')).toMatchObject({ code: 0 });
    await eventually('VMI paused', 60_000, () => paused('vctl'));
    expect(await virtctl('unpause', 'vmi', 'vctl')).toMatchObject({ code: 0 });
    await eventually('VMI unpaused', 60_000, async () => !(await paused('vctl')));

    // The guest agent verbs, with the guest's real qemu-ga (virtctl has no freeze verb: client-go's
    // Freeze is a PUT with {unfreezeTimeout}, sent here as it sends it).
    await eventually('AgentConnected', 120_000, async () => hasCondition(await vmi('vctl'), 'AgentConnected'));
    const users = await virtctl('userlist', 'vctl');
    expect(users.code).toBe(0);
    // virtctl prints the list it decoded, without kind (client-go's decoder drops the TypeMeta).
    expect(JSON.parse(users.output)).toMatchObject({ items: [{ userName: 'kubevm', loginTime: expect.any(Number) }] });
    const filesystems = await virtctl('fslist', 'vctl');
    expect(filesystems.code).toBe(0);
    expect(JSON.parse(filesystems.output)).toMatchObject({
      items: [{ diskName: 'vda', mountPoint: '/mnt/disk', fileSystemType: 'ext4', totalBytes: expect.any(Number), disk: [{ busType: 'virtio' }] }],
    });
    const agentVerb = (verb: string, body: unknown) =>
      client.request(HttpMethod.PUT, `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances/vctl/${verb}`, { body });
    await agentVerb('freeze', { unfreezeTimeout: '5m0s' });
    await eventually('status.fsFreezeStatus frozen', 30_000, async () => (await vmi('vctl'))?.status?.fsFreezeStatus === 'frozen');
    await expect(agentVerb('freeze', {})).rejects.toMatchObject({ code: 400, message: expect.stringContaining('Unfreeze timeout in freeze request is not set') });
    await agentVerb('unfreeze', {});
    await eventually('status.fsFreezeStatus unset', 30_000, async () => (await vmi('vctl'))?.status?.fsFreezeStatus === undefined);

    expect(await virtctl('soft-reboot', 'vctl')).toMatchObject({ code: 0 });
    await eventually('the reboot request consumed', 60_000, async () => (await vmi('vctl'))?.metadata?.annotations?.['kubevm.io/soft-reboot-requested'] === undefined);
    expect((await vmi('vctl'))?.metadata?.uid).toBe(first);

    expect(await virtctl('migrate', 'vctl')).toMatchObject({ code: 0 });
    const migrations = (await client.resource<KubeObject & { spec: { vmiName: string } }>(vmimResource).list({ namespace })).items;
    expect(migrations.map((m) => m.spec.vmiName)).toEqual(['vctl']);
    await client.resource<KubeObject>(vmimResource).delete(migrations[0]?.metadata?.name ?? '', namespace);

    expect(await virtctl('restart', 'vctl')).toMatchObject({ code: 0 });
    await eventually('a new VMI after restart', 240_000, async () => {
      const current = await vmi('vctl');
      return current !== undefined && current.metadata?.uid !== first && current.status?.phase === 'Running';
    });

    expect(await virtctl('stop', 'vctl')).toMatchObject({ code: 0 });
    expect((await vm('vctl'))?.spec.runStrategy).toBe('Halted');
    await eventually('VMI gone after stop', 120_000, async () => (await vmi('vctl')) === undefined);
    const stopped = await virtctl('stop', 'vctl');
    expect(stopped.code).not.toBe(0);
    expect(stopped.output).toContain('VM is not running');
  });

  it('start --paused starts the guest paused, and it stays paused until unpause', async () => {
    // A VM of its own, so that this test does not depend on the one above.
    await client.resource<KubeObject & { spec: unknown }>(vmResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'vpaused', namespace }, spec: { runStrategy: 'Halted', template: { spec: smallVmiSpec() } } });
    expect(await virtctl('start', '--paused', 'vpaused')).toMatchObject({ code: 0 });
    const uid = await runningUid('vpaused');
    expect((await vmi('vpaused'))?.spec).toMatchObject({ startStrategy: 'Paused' });
    await eventually('VMI Running and paused', 60_000, () => paused('vpaused'));
    await eventually('VM printableStatus Paused', 60_000, async () => (await vm('vpaused'))?.status?.printableStatus === 'Paused');
    // The node handler writes the Paused condition in the pass that would have sent an unpause
    // (its commands go before its status write): the launcher got none, and QEMU ran no guest.
    const unpauses = async () => launcherRecords(await guestConsole(client, namespace, 'vpaused')).filter((record) => record.command === 'unpause').length;
    expect(await unpauses()).toBe(0);
    expect(await guestConsole(client, namespace, 'vpaused')).not.toContain('KUBEVM-');

    expect(await virtctl('unpause', 'vmi', 'vpaused')).toMatchObject({ code: 0 });
    await eventually('VMI unpaused', 60_000, async () => !(await paused('vpaused')));
    await eventually('the guest runs', 120_000, async () => (await guestConsole(client, namespace, 'vpaused')).includes('KUBEVM-'));
    expect(await unpauses()).toBe(1);
    expect((await vmi('vpaused'))?.metadata?.uid).toBe(uid);

    expect(await virtctl('stop', 'vpaused')).toMatchObject({ code: 0 });
    await eventually('VMI gone after stop', 120_000, async () => (await vmi('vpaused')) === undefined);
  });
});
