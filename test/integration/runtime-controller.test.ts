// A whole controller against the real API server: informers feed the queue, reconcile creates a
// child with a generated name (as the VMI controller creates launcher pods), and expectations
// keep a stale cache from creating it twice while reconciles of the key keep coming.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, controllerOwnerKey } from '../../runtime/controller.js';
import { ControllerExpectations } from '../../runtime/expectations.js';
import { Informer, ownedBy, ownerUidIndex } from '../../runtime/informer.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources, isNamespaceTerminating, objectKey, splitKey } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from './runtime-support.js';
import { eventually } from '../support/eventually.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let client: KubeClient;
let namespace: string;

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  namespace = await createTestNamespace(client, 'runtime-controller');
}, 30_000);

afterAll(async () => {
  if (client && namespace) await deleteNamespace(client, namespace);
  client?.close();
}, 60_000);

describe('Controller with informers and expectations', () => {
  it('creates exactly one child per parent although reconciles run against a stale cache', async () => {
    const configMaps = client.resource<ConfigMap>(coreResources.configMaps);
    const parents = new Informer<ConfigMap>({ client, descriptor: coreResources.configMaps, namespace, labelSelector: 'role=parent' });
    const children = new Informer<ConfigMap>({
      client,
      descriptor: coreResources.configMaps,
      namespace,
      labelSelector: 'role=child',
      indexers: { ownerUid: ownerUidIndex },
    });
    const expectations = new ControllerExpectations();
    const ownerKey = controllerOwnerKey('ConfigMap');
    // Observations first, so the key the same event enqueues sees them.
    children.addEventHandler({
      onAdd: (child) => ownerKey(child).forEach((key) => expectations.creationObserved(key)),
    });

    let creates = 0;
    let waitedForCache = 0;
    let reconciles = 0;
    const controller = new Controller({
      name: 'runtime-test-parent',
      kind: 'ConfigMap',
      workers: 4,
      reconcile: async (key, ctx) => {
        reconciles++;
        const parent = parents.get(key);
        if (!parent) {
          expectations.delete(key);
          return;
        }
        if (!expectations.satisfied(key)) {
          // The cache has not caught up with our own create: acting now would duplicate it.
          waitedForCache++;
          return;
        }
        const existing = children.byIndex('ownerUid', ownedBy(parent));
        if (existing.length > 0) return;
        expectations.expectCreations(key, 1);
        try {
          await configMaps.create({
            metadata: {
              generateName: `${ctx.name}-child-`,
              namespace,
              labels: { role: 'child' },
              ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: ctx.name, uid: parent.metadata?.uid ?? '', controller: true }],
            },
          });
          creates++;
        } catch (err) {
          expectations.creationObserved(key);
          throw err;
        }
        // Keep the key coming back at once, well before the watch can deliver the child.
        for (let i = 0; i < 5; i++) controller.enqueue(key);
      },
    });
    controller.watch(parents).watch(children, ownerKey);
    parents.start();
    children.start();
    try {
      await controller.start();
      // Batches of parents created at once and updated a few times (a burst of events per key),
      // until some reconcile has met a cache that lagged behind its own create: whether a given
      // one does is up to the watch's timing, so keep going until the race has been exercised.
      const names: string[] = [];
      for (let batch = 0; batch < 10 && waitedForCache === 0; batch++) {
        const batchNames = Array.from({ length: 20 }, (_, i) => `p${batch}-${i}`);
        names.push(...batchNames);
        await Promise.all(batchNames.map((name) => configMaps.create({ metadata: { name, namespace, labels: { role: 'parent' } }, data: { v: '0' } })));
        for (let round = 1; round <= 3; round++) {
          await Promise.all(batchNames.map((name) => configMaps.patch(name, namespace, { data: { v: String(round) } })));
        }
        await eventually('a child for every parent', 30_000, () => children.list().length >= names.length && names.every((name) => expectations.satisfied(`${namespace}/${name}`)));
      }
      // A child that arrived late would show in the cache before anything written after it (a watch
      // delivers in order): once a sentinel written now is cached, the cache is complete.
      await configMaps.create({ metadata: { name: 'sentinel', namespace, labels: { role: 'child' } } });
      await eventually('the sentinel in the cache', 10_000, () => children.get(`${namespace}/sentinel`) !== undefined);
      await configMaps.delete('sentinel', namespace);
      await eventually('the sentinel gone from the cache', 10_000, () => children.get(`${namespace}/sentinel`) === undefined);
      await eventually('an idle queue', 10_000, () => controller.queue.len() === 0 && controller.queue.inFlight() === 0);

      const actual = (await configMaps.list({ namespace, labelSelector: 'role=child' })).items;
      const ownerUids = actual.map((child) => child.metadata?.ownerReferences?.[0]?.uid);
      const parentUids = names.map((name) => parents.get(`${namespace}/${name}`)?.metadata?.uid);
      expect(actual).toHaveLength(names.length);
      expect(new Set(ownerUids)).toEqual(new Set(parentUids));
      expect(creates).toBe(names.length);
      // And the race was exercised: some reconcile met a cache without its own child, and waited.
      expect(waitedForCache).toBeGreaterThanOrEqual(1);
      expect(reconciles).toBeGreaterThan(creates);
      expect(controller.hasSynced()).toBe(true);
      expect(children.keys().sort()).toEqual(actual.map((child) => objectKey(child)).sort());
    } finally {
      await controller.stop({ deadlineMs: 2000 });
      await Promise.all([parents.stop(), children.stop()]);
    }
  }, 60_000);
});

describe('periodic resync (SyncPeriod)', () => {
  it('reconciles every object again each period, with jitter, though nothing changed', async () => {
    const configMaps = client.resource<ConfigMap>(coreResources.configMaps);
    const names = ['quiet-0', 'quiet-1', 'quiet-2'];
    await Promise.all(names.map((name) => configMaps.create({ metadata: { name, namespace, labels: { role: 'quiet' } } })));
    const informer = new Informer<ConfigMap>({ client, descriptor: coreResources.configMaps, namespace, labelSelector: 'role=quiet' });
    const seen = new Map<string, number[]>();
    const periodMs = 400;
    const jitter = 0.5;
    const controller = new Controller({
      name: 'runtime-test-resync',
      kind: 'ConfigMap',
      syncPeriodMs: periodMs,
      syncJitter: jitter,
      reconcile: async (key) => {
        seen.set(key, [...(seen.get(key) ?? []), Date.now()]);
      },
    });
    controller.watch(informer);
    informer.start();
    try {
      await controller.start();
      const rvBefore = informer.lastSyncResourceVersion();
      await eventually('three resyncs of every object', 10_000, () => names.every((name) => (seen.get(`${namespace}/${name}`) ?? []).length >= 4));
      // No event caused these: the objects did not change, and the informer did not re-list.
      expect(informer.lastSyncResourceVersion()).toBe(rvBefore);
      expect(informer.stats().lists).toBe(1);
      expect(controller.resyncs()).toBeGreaterThanOrEqual(3);
      for (const name of names) {
        const times = seen.get(`${namespace}/${name}`) ?? [];
        // The first pass is the add event; later gaps are a period stretched by 0..jitter (timers fire late, never early).
        const gaps = times.slice(2).map((t, i) => t - (times[i + 1] ?? 0));
        for (const gap of gaps) {
          expect(gap).toBeGreaterThanOrEqual(periodMs - 5);
          expect(gap).toBeLessThan(periodMs * (1 + jitter) + 300);
        }
      }
    } finally {
      await controller.stop({ deadlineMs: 2000 });
      await informer.stop();
    }
  }, 30_000);
});

describe('a namespace being deleted', () => {
  it('the real refusal of a create there is recognised, and the controller does not retry it', async () => {
    const configMaps = client.resource<ConfigMap>(coreResources.configMaps);
    const namespaces = client.resource<KubeObject>(coreResources.namespaces);
    // A ConfigMap with a finalizer of the test's holds the namespace in Terminating.
    const doomed = await createTestNamespace(client, 'runtime-terminating');
    await configMaps.create({ metadata: { name: 'hold', namespace: doomed, finalizers: ['kubevm.io/test-hold'] } });
    await deleteNamespace(client, doomed);
    await eventually('the namespace Terminating', 30_000, async () => ((await namespaces.get(doomed)) as { status?: { phase?: string } }).status?.phase === 'Terminating');

    const refusals: unknown[] = [];
    const controller = new Controller({
      name: 'runtime-test-terminating',
      kind: 'ConfigMap',
      reconcile: async (key) => {
        try {
          await configMaps.create({ metadata: { name: splitKey(key).name, namespace: doomed } });
        } catch (err) {
          refusals.push(err);
          throw err;
        }
      },
    });
    // The same controller's retries of any other failure: an invalid name is refused every time.
    const retried: string[] = [];
    const control = new Controller({
      name: 'runtime-test-refused',
      kind: 'ConfigMap',
      reconcile: async (key) => {
        retried.push(key);
        await configMaps.create({ metadata: { name: 'Not_A_Valid_Name', namespace } });
      },
    });
    try {
      await controller.start();
      await control.start();
      controller.enqueue(`${doomed}/child`);
      control.enqueue(`${namespace}/invalid`);
      await eventually('the create refused', 10_000, () => refusals.length === 1);
      expect(isNamespaceTerminating(refusals[0])).toBe(true);
      // Whatever refused it this way is not the namespace-terminating refusal.
      await eventually('the invalid create retried', 10_000, () => retried.length >= 4);
      await eventually('an idle queue', 10_000, () => controller.queue.len() === 0 && controller.queue.inFlight() === 0);
      // By now the other failure has been retried at least three times with the same backoff.
      expect(refusals).toHaveLength(1);
      expect(controller.queue.numRequeues(`${doomed}/child`)).toBe(0);
    } finally {
      await controller.stop({ deadlineMs: 2000 });
      await control.stop({ deadlineMs: 2000 });
      await configMaps.patch('hold', doomed, { metadata: { finalizers: null } });
    }
  }, 60_000);
});
