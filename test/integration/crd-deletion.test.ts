// The operator's CrdFinalizerRetrier against the real API server (operator/crd-deletion.ts): the
// API server's CRD finalizer can fail a pass, lose its retry's status write to that failure and
// leave the CRD until its informer's resync, up to 5 minutes; touching the CRD brings it back.
//   - the touch: a real CRD patched while its (cached) status shows a failed pass, at most once
//     per interval, never while a pass is in progress, and no error once the CRD is gone;
//   - CRDs deleted right after they were created: nothing has listed their resources, so the
//     finalizer's first pass fails on each ("could not list instances: storage is
//     (re)initializing", in the API server's log); with the retrier they all go within seconds.
//     Whether a retry loses its write is a race, so this part cannot force the stall; it gives it
//     several chances. Without the retrier, 4 of 7 runs of it failed here (a CRD left after 30 s).
// Fails, never skips, when no API server is reachable.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import { CRD_CLEANUP_FINALIZER, CRD_FINALIZER_RETRY_ANNOTATION, CRD_RETRY_INTERVAL_MS, CrdFinalizerRetrier } from '../../operator/crd-deletion.js';
import { eventually } from '../support/eventually.js';
import { clusterClient, requireCluster, sleep, testGroup, useLocalClusterKubeconfig } from './runtime-support.js';

jest.setTimeout(120_000);
useLocalClusterKubeconfig();

const crds = MANAGED_KINDS.CustomResourceDefinition;
type Crd = KubeObject & { status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } };
const COUNT = 8;
/** The stall is a race: several rounds give it a chance. */
const ROUNDS = 3;
/** Well under the finalizer informer's resync (5 minutes), well over a finalizer pass here. */
const GONE_WITHIN_MS = 30_000;

const run = randomBytes(3).toString('hex');
/** The label of this run's CRDs, with the run as its value. */
const LABEL = 'kubevm.io/test-crd-deletion';
let client: KubeClient;

/**
 * A throwaway CRD of this run. Unlike runtime-support's ensureTestCrd it has no status subresource:
 * with one, the stall did not show in 6 runs of this test without the retrier; without one it
 * did in 4 of 7.
 */
function crdBody(index: number, round = 0): KubeObject {
  const plural = `deletions${index}r${round}x${run}`;
  const kind = `Deletion${index}R${round}X${run}`;
  return {
    metadata: { name: `${plural}.${testGroup}`, labels: { [LABEL]: run } },
    spec: {
      group: testGroup,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  } as KubeObject;
}

async function ours(): Promise<Crd[]> {
  return (await client.resource<Crd>(crds).list({ labelSelector: `${LABEL}=${run}` })).items;
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
});

afterAll(async () => {
  // After a failure: what is left goes (the retrier's touches included) so no CRD outlives the suite.
  const retrier = new CrdFinalizerRetrier(client);
  await eventually('the CRDs of this suite to go', 60_000, async () => {
    const left = await ours().catch(() => []);
    await retrier.retryFailed(left, silentLogger).catch(() => undefined);
    return left.length === 0;
  }).catch(() => undefined);
});

describe("the operator's touch of a CRD whose deletion the API server's finalizer failed", () => {
  it('patches the real CRD at most once per interval, and only while a pass has failed', async () => {
    const crdClient = client.resource<Crd>(crds);
    const created = await crdClient.create(crdBody(COUNT));
    const name = created.metadata?.name ?? '';
    let clock = Date.parse('2026-12-03T15:00:00Z');
    const retrier = new CrdFinalizerRetrier(client, () => clock);
    // The CRD as the operator's cache shows it during a stall (the API server's own words).
    const stalled = (crd: Crd, reason: string): Crd => ({
      ...crd,
      metadata: { ...crd.metadata, deletionTimestamp: '2026-12-03T14:59:00Z', finalizers: [CRD_CLEANUP_FINALIZER] },
      status: { conditions: [{ type: 'Terminating', status: 'True', reason, message: 'could not list instances: storage is (re)initializing' }] },
    });
    const annotation = async () => (await crdClient.get(name)).metadata?.annotations?.[CRD_FINALIZER_RETRY_ANNOTATION];

    expect(await retrier.retryFailed([stalled(created, 'InstanceDeletionInProgress')], silentLogger)).toEqual([]);
    expect(await annotation()).toBeUndefined();
    expect(await retrier.retryFailed([stalled(created, 'InstanceDeletionFailed')], silentLogger)).toEqual([name]);
    expect(await annotation()).toBe(new Date(clock).toISOString());
    clock += CRD_RETRY_INTERVAL_MS - 1;
    expect(await retrier.retryFailed([stalled(created, 'InstanceDeletionFailed')], silentLogger)).toEqual([]);
    clock += 1;
    expect(await retrier.retryFailed([stalled(created, 'InstanceDeletionCheck')], silentLogger)).toEqual([name]);
    expect(await annotation()).toBe(new Date(clock).toISOString());
    await crdClient.delete(name);
    // Gone meanwhile: nothing to touch, no error.
    await eventually(`CRD ${name} to go`, 30_000, async () => (await crdClient.find(name)) === undefined);
    clock += CRD_RETRY_INTERVAL_MS;
    expect(await retrier.retryFailed([stalled(created, 'InstanceDeletionFailed')], silentLogger)).toEqual([]);
  });

  it('lets CRDs deleted right after they were created all go within seconds', async () => {
    const crdClient = client.resource<Crd>(crds);
    const retrier = new CrdFinalizerRetrier(client);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < COUNT; i++) await crdClient.create(crdBody(i, round));
      await eventually('the CRDs to be established', 30_000, async () => {
        const listed = await ours();
        return listed.length === COUNT && listed.every((crd) => (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'));
      });
      // Deleted at once: nothing has listed their resources, so no watch cache is filled yet and
      // the finalizer's first pass fails on each (the API server logs it); a retry that loses its
      // status write to that failure leaves its CRD until the resync.
      for (const crd of await ours()) await crdClient.delete(crd.metadata?.name ?? '');
      const started = Date.now();
      let left = await ours();
      while (left.length > 0 && Date.now() - started < GONE_WITHIN_MS) {
        await retrier.retryFailed(left, silentLogger);
        await sleep(250);
        left = await ours();
      }
      expect({ round, left: left.map((crd) => crd.metadata?.name) }).toEqual({ round, left: [] });
    }
  });
});
