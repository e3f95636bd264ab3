// The eviction webhook's decision (KubeVirt's PodEvictionAdmitter) through the validating
// endpoint's entry point: AdmissionReviews as the kube-apiserver sends them for a CREATE of
// pods/eviction, against an in-memory cluster of one node "vm" and its launcher pods.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { EvictionStrategy, VirtualMachineInstance } from '../../runtime/api/index.js';
import type { AdmissionContext, AdmissionRequest } from './admit.js';
import { admit, handleAdmissionReview } from './admit.js';
import { evacuationMessage, judgeLauncherEviction } from './eviction.js';
import type { EvictedPod } from './eviction.js';

interface Cluster {
  pods: Record<string, unknown>;
  vmis: Record<string, VirtualMachineInstance>;
  clusterDefault?: EvictionStrategy;
  marks: Array<{ vmi: string; node: string; dryRun: boolean }>;
  failMark?: boolean;
}

/** The uids of a VMI and of its launcher pod in these fakes. */
const vmiUid = (vmi: string): string => `vmi-uid-${vmi}`;
const podUid = (vmi: string): string => `pod-uid-${vmi}`;

/** A launcher pod as the controller renders it: the VMI's uid in compute's environment. */
const launcherPod = (name: string, vmi: string, node = 'vm', phase = 'Running'): unknown => ({
  metadata: { name, namespace: 'ns', uid: podUid(vmi), labels: { 'kubevirt.io': 'virt-launcher' }, annotations: { 'kubevirt.io/domain': vmi } },
  spec: { nodeName: node, containers: [{ name: 'compute', env: [{ name: 'KUBEVM_VMI_UID', value: vmiUid(vmi) }] }] },
  status: { phase },
});

function vmi(name: string, strategy: EvictionStrategy | undefined, { migratable = true, node = 'vm', evacuation }: { migratable?: boolean; node?: string; evacuation?: string } = {}): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'ns', uid: vmiUid(name) },
    spec: { domain: { devices: {} }, ...(strategy ? { evictionStrategy: strategy } : {}) },
    status: { phase: 'Running', nodeName: node, activePods: { [podUid(name)]: node }, conditions: [{ type: 'LiveMigratable', status: migratable ? 'True' : 'False' }], ...(evacuation ? { evacuationNodeName: evacuation } : {}) },
  };
}

function contextOf(cluster: Cluster): AdmissionContext {
  const unused = async (): Promise<never> => Promise.reject(new Error('not an eviction lookup'));
  return {
    evictedPod: async (_ns, name) => cluster.pods[name],
    findVmi: async (_ns, name) => cluster.vmis[name],
    listVmis: async () => Object.values(cluster.vmis),
    clusterEvictionStrategy: async () => cluster.clusterDefault,
    markForEvacuation: async (_ns, name, node, dryRun) => {
      if (cluster.failMark) throw new Error('the server rejected our request due to an error in our request: test failed');
      cluster.marks.push({ vmi: name, node, dryRun });
    },
    findInstancetypeSpec: unused,
    permittedHostDevices: unused,
    memoryOvercommit: unused,
    activeMigrationFor: unused,
    kubevirtCount: unused,
    isKubevmComponent: () => false,
    launcherPodVmi: unused,
    authorize: unused,
  };
}

/** A CREATE of pods/eviction for `pod`, as the kube-apiserver reviews it. */
function eviction(pod: string, { dryRun, deleteOptions }: { dryRun?: boolean; deleteOptions?: unknown } = {}): AdmissionRequest {
  return {
    uid: 'uid-e',
    kind: { group: 'policy', version: 'v1', kind: 'Eviction' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    subResource: 'eviction',
    operation: 'CREATE',
    namespace: 'ns',
    name: pod,
    userInfo: { username: 'system:serviceaccount:kube-system:drainer' },
    object: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: 'ns' }, ...(deleteOptions !== undefined ? { deleteOptions } : {}) },
    ...(dryRun !== undefined ? { dryRun } : {}),
  };
}

function cluster(vmis: VirtualMachineInstance[], clusterDefault?: EvictionStrategy): Cluster {
  const pods: Record<string, unknown> = {};
  for (const v of vmis) pods[`virt-launcher-${v.metadata?.name ?? ''}-abcde`] = launcherPod(`virt-launcher-${v.metadata?.name ?? ''}-abcde`, v.metadata?.name ?? '', v.status?.nodeName);
  return { pods, vmis: Object.fromEntries(vmis.map((v) => [v.metadata?.name ?? '', v])), ...(clusterDefault ? { clusterDefault } : {}), marks: [] };
}

describe('eviction of a launcher pod', () => {
  it('LiveMigrate: refused with 429 and KubeVirt\'s message, the VMI marked with the pod\'s node', async () => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    const response = await admit(eviction('virt-launcher-a-abcde'), contextOf(c));
    expect(response).toEqual({ uid: 'uid-e', allowed: false, status: { code: 429, reason: 'TooManyRequests', message: 'Eviction triggered evacuation of VMI "ns/a"' } });
    expect(c.marks).toEqual([{ vmi: 'a', node: 'vm', dryRun: false }]);
  });

  it('None, or no strategy anywhere: allowed (the pod goes and the VM stops), nothing marked', async () => {
    const c = cluster([vmi('n', 'None'), vmi('unset', undefined)]);
    expect((await admit(eviction('virt-launcher-n-abcde'), contextOf(c))).allowed).toBe(true);
    expect((await admit(eviction('virt-launcher-unset-abcde'), contextOf(c))).allowed).toBe(true);
    expect(c.marks).toEqual([]);
  });

  it("the KubeVirt CR's evictionStrategy applies to VMIs naming none; a VMI's own wins", async () => {
    const c = cluster([vmi('unset', undefined), vmi('own', 'None')], 'LiveMigrate');
    expect((await admit(eviction('virt-launcher-unset-abcde'), contextOf(c))).status?.code).toBe(429);
    expect((await admit(eviction('virt-launcher-own-abcde'), contextOf(c))).allowed).toBe(true);
    expect(c.marks.map((m) => m.vmi)).toEqual(['unset']);
  });

  it('LiveMigrate on a VMI that cannot migrate blocks the drain without a mark, and says why', async () => {
    const c = cluster([vmi('stuck', 'LiveMigrate', { migratable: false })]);
    const response = await admit(eviction('virt-launcher-stuck-abcde'), contextOf(c));
    expect(response.status).toMatchObject({ code: 429 });
    expect(response.status?.message).toMatch(/VMI stuck is configured with an eviction strategy but is not live-migratable/);
    expect(c.marks).toEqual([]);
  });

  it('LiveMigrateIfPossible migrates a migratable VMI and lets a non-migratable one stop', async () => {
    const c = cluster([vmi('can', 'LiveMigrateIfPossible'), vmi('cannot', 'LiveMigrateIfPossible', { migratable: false })]);
    expect((await admit(eviction('virt-launcher-can-abcde'), contextOf(c))).status?.code).toBe(429);
    expect((await admit(eviction('virt-launcher-cannot-abcde'), contextOf(c))).allowed).toBe(true);
    expect(c.marks.map((m) => m.vmi)).toEqual(['can']);
  });

  it('External is refused and marked even when the VMI cannot migrate (another controller handles it)', async () => {
    const c = cluster([vmi('ext', 'External', { migratable: false })]);
    expect((await admit(eviction('virt-launcher-ext-abcde'), contextOf(c))).status?.code).toBe(429);
    expect(c.marks).toEqual([{ vmi: 'ext', node: 'vm', dryRun: false }]);
  });

  it('a VMI already marked is not marked again; the drain is told the evacuation is in progress', async () => {
    const c = cluster([vmi('a', 'LiveMigrate', { evacuation: 'vm' })]);
    const response = await admit(eviction('virt-launcher-a-abcde'), contextOf(c));
    expect(response.status).toEqual({ code: 429, reason: 'TooManyRequests', message: `Evacuation in progress: ${evacuationMessage('ns', 'a')}` });
    expect(c.marks).toEqual([]);
  });

  it('a pod on another node than the VMI (a migration target, or a source already left) is refused, nothing marked', async () => {
    const c = cluster([vmi('a', 'LiveMigrate', { node: 'vm-2' })]);
    c.pods['virt-launcher-a-abcde'] = launcherPod('virt-launcher-a-abcde', 'a', 'vm');
    const response = await admit(eviction('virt-launcher-a-abcde'), contextOf(c));
    expect(response.status).toMatchObject({ code: 429, message: 'Eviction request for target Pod' });
    expect(c.marks).toEqual([]);
  });

  it.each([
    ['the review\'s dryRun', { dryRun: true }],
    ['deleteOptions.dryRun [All]', { deleteOptions: { dryRun: ['All'] } }],
  ])('a dry run (%s) is answered as the real one but marks nothing: the patch is sent as a dry run', async (_what, options) => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    const response = await admit(eviction('virt-launcher-a-abcde', options), contextOf(c));
    expect(response.status?.code).toBe(429);
    expect(c.marks).toEqual([{ vmi: 'a', node: 'vm', dryRun: true }]);
  });

  it('a launcher pod stripped of its label and annotation, or annotated with another VMI, is still its own VMI\'s', async () => {
    const c = cluster([vmi('a', 'LiveMigrate'), vmi('b', 'None')]);
    const stripped = launcherPod('virt-launcher-a-abcde', 'a') as { metadata: Record<string, unknown> };
    c.pods['virt-launcher-a-abcde'] = { ...stripped, metadata: { ...stripped.metadata, labels: {}, annotations: { 'kubevirt.io/domain': 'b' } } };
    const response = await admit(eviction('virt-launcher-a-abcde'), contextOf(c));
    expect(response.status).toMatchObject({ code: 429, message: evacuationMessage('ns', 'a') });
    expect(c.marks).toEqual([{ vmi: 'a', node: 'vm', dryRun: false }]);
  });

  it('a pod that only claims a VMI (its uid in the environment, the label, the annotation, on the VMI\'s node) marks nothing', async () => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    const impostor = launcherPod('virt-launcher-impostor', 'a') as { metadata: Record<string, unknown> };
    c.pods['virt-launcher-impostor'] = { ...impostor, metadata: { ...impostor.metadata, uid: 'pod-uid-impostor' } };
    const response = await admit(eviction('virt-launcher-impostor'), contextOf(c));
    expect(response.status).toMatchObject({ code: 429, message: 'Eviction request for target Pod' });
    expect(c.marks).toEqual([]);
  });

  it('pods that are not running launchers go: other pods, finished launchers, launchers of a VMI that is gone, missing pods', async () => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    c.pods['virt-launcher-lookalike'] = { metadata: { name: 'virt-launcher-lookalike', labels: { app: 'web' }, annotations: { 'kubevirt.io/domain': 'a' } }, spec: { nodeName: 'vm' } };
    c.pods['virt-launcher-done'] = launcherPod('virt-launcher-done', 'a', 'vm', 'Succeeded');
    c.pods['virt-launcher-orphan'] = launcherPod('virt-launcher-orphan', 'gone');
    for (const pod of ['virt-launcher-lookalike', 'virt-launcher-done', 'virt-launcher-orphan', 'virt-launcher-missing']) {
      expect((await admit(eviction(pod), contextOf(c))).allowed).toBe(true);
    }
    expect(c.marks).toEqual([]);
  });

  it('a mark the API server refuses (the VMI moved meanwhile, a conflict) refuses the eviction, to be retried', async () => {
    const c = { ...cluster([vmi('a', 'LiveMigrate')]), failMark: true };
    const response = await admit(eviction('virt-launcher-a-abcde'), contextOf(c));
    expect(response.status).toMatchObject({ code: 429, reason: 'TooManyRequests' });
    expect(response.status?.message).toMatch(/could not check or mark the VMI of pod "ns\/virt-launcher-a-abcde" for evacuation: .*test failed; the eviction may be retried/);
  });

  it('a lookup that fails refuses the eviction (never lets a protected VM stop unchecked)', async () => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    const failing: AdmissionContext = { ...contextOf(c), findVmi: async () => Promise.reject(new Error('connection refused')) };
    const response = await admit(eviction('virt-launcher-a-abcde'), failing);
    expect(response).toMatchObject({ allowed: false, status: { code: 429 } });
    expect(response.status?.message).toMatch(/connection refused/);
  });

  it('an Eviction body that is not one is refused with the field that is wrong', async () => {
    const c = cluster([vmi('a', 'LiveMigrate')]);
    const request = { ...eviction('virt-launcher-a-abcde'), object: { apiVersion: 'policy/v1', kind: 'Eviction', deleteOptions: { dryRun: 'All' } } };
    const response = await admit(request, contextOf(c));
    expect(response).toMatchObject({ allowed: false, status: { code: 429 } });
    expect(response.status?.message).toMatch(/not a policy\/v1 Eviction: deleteOptions\.dryRun/);
    expect(c.marks).toEqual([]);
  });

  it('property: any Eviction body and any pod answer allow or 429, and a mark only for a running launcher of a migrating VMI on its node', async () => {
    const strategies = fc.constantFrom<EvictionStrategy | undefined>(undefined, 'None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External');
    await fc.assert(
      fc.asyncProperty(
        fc.anything(),
        fc.record({ label: fc.constantFrom('virt-launcher', 'other', undefined), rendered: fc.boolean(), phase: fc.constantFrom('Running', 'Pending', 'Succeeded', 'Failed'), node: fc.constantFrom('vm', 'vm-2') }),
        fc.record({ strategy: strategies, migratable: fc.boolean(), node: fc.constantFrom('vm', 'vm-2'), marked: fc.boolean() }),
        fc.boolean(),
        async (body, podShape, vmiShape, dryRun) => {
          const c = cluster([vmi('a', vmiShape.strategy, { migratable: vmiShape.migratable, node: vmiShape.node, ...(vmiShape.marked ? { evacuation: vmiShape.node } : {}) })]);
          c.pods['virt-launcher-a-abcde'] = {
            metadata: { name: 'virt-launcher-a-abcde', uid: podUid('a'), labels: podShape.label ? { 'kubevirt.io': podShape.label } : {}, annotations: { 'kubevirt.io/domain': 'a' } },
            spec: { nodeName: podShape.node, ...(podShape.rendered ? { containers: [{ name: 'compute', env: [{ name: 'KUBEVM_VMI_UID', value: vmiUid('a') }] }] } : {}) },
            status: { phase: podShape.phase },
          };
          const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...eviction('virt-launcher-a-abcde'), object: body, dryRun } };
          const { response } = await handleAdmissionReview(review, contextOf(c));
          expect(response.allowed || response.status?.code === 429).toBe(true);
          for (const mark of c.marks) {
            expect(podShape.label === 'virt-launcher' || podShape.rendered).toBe(true);
            expect(podShape.node).toBe(vmiShape.node);
            expect(['Running', 'Pending']).toContain(podShape.phase);
            expect(vmiShape.marked).toBe(false);
            expect(mark).toEqual({ vmi: 'a', node: vmiShape.node, dryRun: mark.dryRun });
            if (dryRun) expect(mark.dryRun).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('judgeLauncherEviction', () => {
  const pod: EvictedPod = { metadata: { name: 'virt-launcher-a-abcde', uid: podUid('a') }, spec: { nodeName: 'vm' } };
  it('a pod not yet on a node is never where the VMI runs', () => {
    expect(judgeLauncherEviction({ metadata: pod.metadata }, 'ns', vmi('a', 'LiveMigrate'), undefined)).toEqual({ action: 'deny', message: 'Eviction request for target Pod' });
  });
  it('marks with the pod\'s node', () => {
    expect(judgeLauncherEviction(pod, 'ns', vmi('a', 'External'), undefined)).toEqual({ action: 'mark', vmiName: 'a', nodeName: 'vm', message: evacuationMessage('ns', 'a') });
  });
});
