// A VM never runs twice (issue 9), end to end on the full local cluster with kubevm installed: one
// VirtualMachine with a PVC-backed disk (a hostPath PersistentVolume the test creates on this node)
// goes through guest power-offs (runStrategy Always restarts it), restarts (a Stop request for the
// running VMI) and deletes followed at once by a re-create under the same name, in a loop. A watch
// on its launcher pods records each pod's lifetime, from its creation to its compute container
// gone (terminated in the kubelet's status, or the pod deleted), in the order the API server
// serialised those events; no two lifetimes may overlap, since every pod opens the same disk.
// Same guest images as test/e2e/vm-lifecycle.test.ts. Fails, never skips, without kubevm installed.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { Informer } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isAlreadyExists, isNotFound } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { diskImage, kernelImage } from './guest-images.js';
import { requireKubevmController } from './kubevm-installed.js';

jest.setTimeout(1_200_000);

const vmResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
const pvResource: ResourceDescriptor = { group: '', version: 'v1', resource: 'persistentvolumes', kind: 'PersistentVolume', namespaced: false };

type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: { phase?: string };
}
interface Vm extends KubeObject {
  spec: Record<string, unknown>;
}

const VM_NAME = 'one-qemu';
const CLAIM = 'shared-disk';
/** The launcher's uid (ADR 0007): it opens disk.img read-write. */
const LAUNCHER_UID = 107;

let client: KubeClient;
let namespace: string;
let pvName: string;
let hostDir: string;

/** The guest powers itself off a moment after boot, so runStrategy Always keeps restarting it. */
function vmManifest(): Vm {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: VM_NAME, namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { 'kubevirt.io/vm': VM_NAME } },
        spec: {
          terminationGracePeriodSeconds: 10,
          domain: {
            memory: { guest: '128Mi' },
            firmware: {
              kernelBoot: {
                kernelArgs: 'console=ttyS0',
                container: { image: kernelImage, imagePullPolicy: 'IfNotPresent', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initramfs.cpio.gz' },
              },
            },
            devices: {
              disks: [
                { name: 'root', disk: { bus: 'virtio' } },
                { name: 'data', disk: { bus: 'virtio' } },
                { name: 'cloudinit', disk: { bus: 'virtio' } },
              ],
            },
          },
          volumes: [
            { name: 'root', containerDisk: { image: diskImage, imagePullPolicy: 'IfNotPresent' } },
            { name: 'data', persistentVolumeClaim: { claimName: CLAIM } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\nsleep 3\npoweroff -f\n' } },
          ],
        },
      },
    },
  };
}

/** One launcher pod's lifetime, as event sequence numbers of the pod watch (and wall-clock times for the report). */
interface Lifetime {
  pod: string;
  vmi: string;
  created: number;
  gone?: number;
  createdAt: number;
  goneAt?: number;
}

function computeTerminated(pod: Pod): boolean {
  const compute = pod.status?.containerStatuses?.find((status) => status.name === 'compute');
  return Boolean(compute?.state?.terminated) || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

class LifetimeRecorder {
  readonly lifetimes: Lifetime[] = [];
  /** The largest number of pods alive at once, seen at each event. */
  mostAlive = 0;
  private seq = 0;
  private readonly byUid = new Map<string, Lifetime>();

  constructor(informer: Informer<Pod>) {
    informer.addEventHandler({
      onAdd: (pod) => {
        this.created(pod);
        if (computeTerminated(pod)) this.gone(pod);
      },
      onUpdate: (_old, pod) => {
        if (computeTerminated(pod)) this.gone(pod);
      },
      onDelete: (pod) => this.gone(pod),
    });
  }

  alive(): Lifetime[] {
    return this.lifetimes.filter((lifetime) => lifetime.gone === undefined);
  }

  private created(pod: Pod): void {
    const uid = pod.metadata?.uid ?? '';
    if (this.byUid.has(uid)) return;
    const lifetime: Lifetime = {
      pod: pod.metadata?.name ?? '',
      vmi: pod.metadata?.ownerReferences?.find((ref) => ref.kind === 'VirtualMachineInstance')?.uid ?? '',
      created: ++this.seq,
      createdAt: Date.now(),
    };
    this.byUid.set(uid, lifetime);
    this.lifetimes.push(lifetime);
    this.mostAlive = Math.max(this.mostAlive, this.alive().length);
  }

  private gone(pod: Pod): void {
    const lifetime = this.byUid.get(pod.metadata?.uid ?? '');
    if (!lifetime || lifetime.gone !== undefined) return;
    lifetime.gone = ++this.seq;
    lifetime.goneAt = Date.now();
  }
}

function timeline(lifetimes: readonly Lifetime[]): string {
  const t0 = lifetimes[0]?.createdAt ?? 0;
  return lifetimes
    .map((l) => `${l.pod} (VMI ${l.vmi.slice(0, 8)}): created #${l.created} at +${((l.createdAt - t0) / 1000).toFixed(1)} s, gone #${l.gone ?? '-'} at ${l.goneAt ? `+${((l.goneAt - t0) / 1000).toFixed(1)} s` : 'never'}`)
    .join('\n');
}

const vms = () => client.resource<Vm>(vmResource);
const vmis = () => client.resource<Vmi>(vmiResource);

/** The VMI's uid once a VMI other than `notUid` runs. */
async function nextRunning(notUid: string | undefined, what: string): Promise<string> {
  let uid = '';
  await eventually(what, 300_000, async () => {
    const vmi = await vmis().find(VM_NAME, namespace);
    uid = vmi?.metadata?.uid ?? '';
    return vmi?.status?.phase === 'Running' && uid !== notUid;
  });
  return uid;
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  namespace = await createTestNamespace(client, 'kubevm-e2e-one-qemu');
  // The disk every launcher pod of the VM opens: a hostPath PV on this (single) node, its disk.img
  // made here so the launcher (uid 107) finds it and need not create it in a root-owned directory.
  pvName = `kubevm-e2e-${namespace}`;
  hostDir = path.join('/var/lib/kubevm-e2e-volumes', namespace);
  mkdirSync(hostDir, { recursive: true });
  execFileSync('truncate', ['-s', '64M', path.join(hostDir, 'disk.img')]);
  chownSync(hostDir, LAUNCHER_UID, LAUNCHER_UID);
  chownSync(path.join(hostDir, 'disk.img'), LAUNCHER_UID, LAUNCHER_UID);
  await client.resource<KubeObject>(pvResource).create({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: pvName, labels: { 'kubevm.io/test': 'e2e' } },
    spec: {
      capacity: { storage: '64Mi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: '',
      hostPath: { path: hostDir, type: 'Directory' },
      claimRef: { namespace, name: CLAIM },
    },
  } as KubeObject);
  await client.resource<KubeObject>(coreResources.persistentVolumeClaims).create({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: CLAIM, namespace },
    spec: { accessModes: ['ReadWriteOnce'], storageClassName: '', volumeName: pvName, resources: { requests: { storage: '64Mi' } } },
  } as KubeObject);
  await eventually('the PVC to bind to the hostPath PV', 60_000, async () => ((await client.resource<KubeObject & { status?: { phase?: string } }>(coreResources.persistentVolumeClaims).get(CLAIM, namespace)).status?.phase ?? '') === 'Bound');
}, 120_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  if (pvName) {
    await client
      .resource<KubeObject>(pvResource)
      .delete(pvName)
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  client?.close();
});

describe('one QEMU per disk', () => {
  it('power-offs, restarts, deletes and re-creates never overlap two launcher pods of the VM', async () => {
    const pods = new Informer<Pod>({ client, descriptor: coreResources.pods, namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    const recorder = new LifetimeRecorder(pods);
    pods.start();
    try {
      await pods.waitForSync();
      await vms().create(vmManifest());
      let uid = await nextRunning(undefined, 'the first VMI Running');
      for (let round = 1; round <= 2; round++) {
        // The guest powers itself off; Always starts the next VMI.
        uid = await nextRunning(uid, `round ${round}: a new VMI after the guest powered off`);
        // A restart: a Stop request for the running VMI (what the restart subresource writes).
        await vms().patchStatus(VM_NAME, namespace, { status: { stateChangeRequests: [{ action: 'Stop', uid }] } });
        uid = await nextRunning(uid, `round ${round}: a new VMI after the restart`);
        // Delete the VM and re-create it under the same name at once, as a script would.
        await vms().delete(VM_NAME, namespace);
        await eventually(`round ${round}: the VM re-created`, 300_000, async () => {
          try {
            await vms().create(vmManifest());
            return true;
          } catch (err) {
            if (isAlreadyExists(err)) return false; // the old VM still waits for its VMI and pod
            throw err;
          }
        });
        uid = await nextRunning(uid, `round ${round}: the re-created VM's VMI Running`);
      }
      await vms().patch(VM_NAME, namespace, { spec: { runStrategy: 'Halted' } });
      await eventually('every launcher pod gone after Halted', 300_000, () => recorder.alive().length === 0 && (recorder.lifetimes.at(-1)?.gone ?? 0) > 0);

      const lifetimes = [...recorder.lifetimes].sort((a, b) => a.created - b.created);
      const report = timeline(lifetimes);
      // Each VMI had its own pod; at least 7 VMIs ran (2 rounds of power-off, restart, re-create, plus the first).
      expect(lifetimes.length).toBeGreaterThanOrEqual(7);
      expect(new Set(lifetimes.map((l) => l.vmi)).size).toBe(lifetimes.length);
      // No overlap: every pod was gone before the next one was created, and never two alive at once.
      for (let i = 1; i < lifetimes.length; i++) {
        const [previous, next] = [lifetimes[i - 1] as Lifetime, lifetimes[i] as Lifetime];
        if ((previous.gone ?? Infinity) > next.created) throw new Error(`launcher pods ${previous.pod} and ${next.pod} overlap:\n${report}`);
      }
      expect(recorder.mostAlive).toBe(1);
      process.stdout.write(`launcher pod lifetimes of VM ${VM_NAME} (one disk):\n${report}\n`);
    } finally {
      await pods.stop();
    }
  });
});
