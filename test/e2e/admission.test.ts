// The validating webhook on the real cluster with kubevm installed (scripts/install-kubevm.sh
// registers it): kubectl apply of an invalid manifest is refused naming the field path, risky
// choices print warnings, every example in docs/examples passes a server-side dry run, and a VM
// applied twice with server-side apply is unchanged (nothing writes into its spec), while the
// mutating webhook writes kubevm's defaults into VMIs, created directly or from a VM.
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { VirtualMachineInstanceSpec } from '../../runtime/api/index.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterEnv, kubectl, repoRoot, run, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { firmwareUUID } from '../../runtime/vmi-defaults.js';
import { createSmallVmi, smallVmiSpec, vmResource, vmiResource } from './small-vm.js';

jest.setTimeout(300_000);

let client: KubeClient;
let env: ClusterEnv;
let namespace: string;


type Spec = VirtualMachineInstanceSpec;

/** The first item of a list the case's base manifest has. */
function first<T>(list: T[] | undefined): T {
  const item = list?.[0];
  if (item === undefined) throw new Error('the base manifest has this list');
  return item;
}

/** A VM manifest as a user writes it; `change` edits it before it is sent. */
function vm(name: string, change: (spec: Spec) => void = () => undefined): string {
  const manifest: { apiVersion: string; kind: string; metadata: object; spec: { runStrategy: string; template: { spec: Spec } } } = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: 'Halted',
      template: {
        spec: {
          domain: {
            memory: { guest: '128Mi' },
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {} }] },
          },
          networks: [{ name: 'default', pod: {} }],
          volumes: [{ name: 'root', containerDisk: { image: `quay.io/containerdisks/fedora@sha256:${'0'.repeat(64)}` } }],
        },
      },
    },
  };
  change(manifest.spec.template.spec);
  return YAML.stringify(manifest);
}

/** kubectl apply as the admin; the exit code and everything kubectl printed. */
async function apply(manifest: string, ...flags: string[]): Promise<{ code: number; output: string }> {
  const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'apply', ...flags, '-f', '-'], { input: manifest, timeoutMs: 60_000 });
  return { code: res.code, output: res.stdout + res.stderr };
}

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  const webhooks = await kubectl(env, ['get', 'validatingwebhookconfiguration', 'kubevm-validator', '-o', 'name']);
  expect(webhooks.trim()).toBe('validatingwebhookconfiguration.admissionregistration.k8s.io/kubevm-validator');
  namespace = await createTestNamespace(client, 'kubevm-e2e-admission');
}, 60_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('the validating webhook through the kube-apiserver', () => {
  const t = 'spec.template.spec';
  const invalid: Array<[string, (spec: Spec) => void, string]> = [
    ['a disk without a volume', (s) => s.domain.devices.disks?.push({ name: 'data', disk: {} }), `${t}.domain.devices.disks[1].name: disk "data" has no volume of that name`],
    ['two disks with one boot order', (s) => {
      first(s.domain.devices.disks).bootOrder = 1;
      first(s.domain.devices.interfaces).bootOrder = 1;
    }, `${t}.domain.devices.interfaces[0].bootOrder: boot order 1 is already used`],
    ['an interface without a network', (s) => (first(s.networks).name = 'other'), `${t}.domain.devices.interfaces[0].name: interface "default" has no network of that name`],
    ['a host device the KubeVirt CR does not permit', (s) => (s.domain.devices.hostDevices = [{ name: 'gpu', deviceName: 'nvidia.com/A100' }]), `${t}.domain.devices.hostDevices[0].deviceName: "nvidia.com/A100" is not permitted`],
    ['guest memory beyond its request (the CR allows no overcommit)', (s) => (s.domain.resources = { requests: { memory: '64Mi' } }), `${t}.domain.memory.guest: 128Mi is 200% of the memory request 64Mi (${t}.domain.resources.requests.memory); the KubeVirt CR's spec.configuration.developerConfiguration.memoryOvercommit allows at most 100%, so at most 64Mi`],
    ['a volume with two sources', (s) => (first(s.volumes).emptyDisk = { capacity: '1Gi' }), `${t}.volumes[0]`],
  ];

  it.each(invalid)('refuses %s, naming the field', async (_what, change, message) => {
    const res = await apply(vm('bad', change), '--dry-run=server');
    expect(res.code).not.toBe(0);
    expect(res.output).toContain('admission webhook "virtualmachines.validator.kubevm.io" denied the request');
    expect(res.output).toContain(message);
  });

  it('refuses guest memory next to an instancetype at apply time', async () => {
    const manifest = YAML.parse(vm('typed')) as { spec: Record<string, unknown> };
    manifest.spec['instancetype'] = { name: 'u1.medium' };
    const res = await apply(YAML.stringify(manifest), '--dry-run=server');
    expect(res.code).not.toBe(0);
    expect(res.output).toContain(`${t}.domain.memory.guest: conflicts with spec.memory.guest of VirtualMachineClusterInstancetype u1.medium`);
  });

  it('prints warnings for risky but legal choices', async () => {
    const res = await apply(vm('risky', (s) => {
      first(s.volumes).containerDisk = { image: 'quay.io/containerdisks/fedora:41' };
      first(s.domain.devices.disks).errorPolicy = 'ignore';
    }), '--dry-run=server');
    expect(res.code).toBe(0);
    expect(res.output).toMatch(/Warning: spec.template.spec.volumes\[0\].containerDisk.image: "quay.io\/containerdisks\/fedora:41" is referenced by tag/);
    expect(res.output).toMatch(/Warning: spec.template.spec.domain.devices.disks\[0\].errorPolicy: "ignore"/);
  });

  it('refuses a change to a running VMI\'s spec, and a migration of a VMI that does not exist', async () => {
    await createSmallVmi(client, namespace, 'fixed');
    const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, '-n', namespace, 'patch', 'vmi', 'fixed', '--type', 'merge', '-p', '{"spec":{"terminationGracePeriodSeconds":3}}']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec: a VirtualMachineInstance\'s spec cannot be changed once created');
    // Metadata may change (the VMI carries the status kubevm's components wrote by then).
    const labels = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, '-n', namespace, 'label', 'vmi', 'fixed', 'team=a']);
    expect(`${labels.code} ${labels.stderr}`).toBe('0 ');
    const migration = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'm', namespace }, spec: { vmiName: 'ghost' } };
    const refused = await apply(JSON.stringify(migration));
    expect(refused.output).toContain(`spec.vmiName: the VMI "${namespace}/ghost" does not exist`);
  });

  it('passes every example in docs/examples with a server-side dry run', async () => {
    // vmi-migration.yaml migrates the VMI "fedora": one exists for it to name.
    await createSmallVmi(client, namespace, 'fedora');
    const dirs = [join(repoRoot, 'docs/examples'), join(repoRoot, 'docs/examples/local')];
    const files = dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f)));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      // Examples that name their namespace (the KubeVirt CR) go there; the others to the test's.
      const named = YAML.parseAllDocuments(readFileSync(file, 'utf8')).some((doc) => (doc.toJS() as { metadata?: { namespace?: string } } | null)?.metadata?.namespace);
      const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, ...(named ? [] : ['-n', namespace]), 'apply', '--dry-run=server', '-f', file], { timeoutMs: 60_000 });
      expect(`${file}: ${res.code === 0 ? 'accepted' : res.stderr}`).toBe(`${file}: accepted`);
    }
  });

  it('a VM applied twice with server-side apply is unchanged (no defaults written into its spec)', async () => {
    const manifest = vm('gitops');
    const first = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'apply', '--server-side', '--field-manager', 'argocd', '-f', '-'], { input: manifest });
    expect(first.code).toBe(0);
    const before = (await client.resource<KubeObject & { spec: unknown }>(vmResource).get('gitops', namespace));
    const second = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'apply', '--server-side', '--field-manager', 'argocd', '-f', '-'], { input: manifest });
    expect(second.code).toBe(0);
    const after = await client.resource<KubeObject & { spec: unknown }>(vmResource).get('gitops', namespace);
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    expect(after.spec).toEqual((YAML.parse(manifest) as { spec: unknown }).spec);
    const diff = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'diff', '--server-side', '--field-manager', 'argocd', '-f', '-'], { input: manifest });
    expect(`${diff.code} ${diff.stdout}`).toBe('0 ');
  });
});

describe('the mutating webhook through the kube-apiserver', () => {
  /** What kubevm's defaults add to smallVmiSpec() (runtime/vmi-defaults.ts) for a VMI of this name. */
  const defaultsOf = (name: string) => ({
    machine: { type: 'q35' },
    uuid: firmwareUUID(name),
    interfaces: [{ name: 'default', masquerade: {} }],
    networks: [{ name: 'default', pod: {} }],
  });
  type DefaultedSpec = { domain: { machine?: unknown; firmware?: { uuid?: string }; devices: { interfaces?: unknown } }; networks?: unknown };
  const defaultsIn = (spec: DefaultedSpec) => ({ machine: spec.domain.machine, uuid: spec.domain.firmware?.uuid, interfaces: spec.domain.devices.interfaces, networks: spec.networks });

  it('writes the defaults into a VMI created directly', async () => {
    // A server-side dry run goes through the webhooks (sideEffects None) and answers the object as it would be stored.
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'direct', namespace }, spec: smallVmiSpec() };
    const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(vmi) });
    if (res.code !== 0) throw new Error(`the dry run was refused: ${res.stderr}`);
    expect(defaultsIn((JSON.parse(res.stdout) as { spec: DefaultedSpec }).spec)).toEqual(defaultsOf('direct'));
  });

  it('a running VM applied twice with server-side apply is unchanged, and its VMI carries the defaults', async () => {
    const manifest = JSON.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'gitops-running', namespace }, spec: { runStrategy: 'Always', template: { spec: smallVmiSpec() } } });
    const ssa = () => run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'apply', '--server-side', '--field-manager', 'flux', '-f', '-'], { input: manifest });
    expect((await ssa()).code).toBe(0);
    const vmis = client.resource<KubeObject & { spec: DefaultedSpec }>(vmiResource);
    const vmi = await eventually('the VM\'s VMI', 60_000, async () => vmis.find('gitops-running', namespace));
    expect(defaultsIn(vmi.spec)).toEqual(defaultsOf('gitops-running'));
    const before = await client.resource<KubeObject & { spec: unknown }>(vmResource).get('gitops-running', namespace);
    expect((await ssa()).code).toBe(0);
    const after = await client.resource<KubeObject & { spec: unknown }>(vmResource).get('gitops-running', namespace);
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    // (kubectl diff is left to the Halted VM above: a starting VM's status moves between its reads.)
    expect(after.spec).toEqual((JSON.parse(manifest) as { spec: unknown }).spec);
  });
});
