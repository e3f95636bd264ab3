// The informer against the real kube-apiserver: label-selected events, periodic re-list, and a
// re-list after a real 410 Gone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Informer, ownerUidIndex } from '../../runtime/informer.js';
import type { RunnableInformer } from '../../runtime/informer.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import {
  clusterClient,
  createTestNamespace,
  deleteNamespace,
  deleteTestCrd,
  ensureTestCrd,
  requireCluster,
  testResource,
} from './runtime-support.js';
import { eventually } from '../support/eventually.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const selectorLabel = 'kubevm.io/runtime-test';

let client: KubeClient;
let namespace: string;
const informers: RunnableInformer[] = [];

function track<T extends KubeObject>(informer: Informer<T>): Informer<T> {
  informers.push(informer);
  return informer;
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  namespace = await createTestNamespace(client, 'runtime-informer');
}, 30_000);

afterAll(async () => {
  await Promise.all(informers.map((informer) => informer.stop()));
  if (client && namespace) await deleteNamespace(client, namespace);
  client?.close();
}, 60_000);

describe('Informer on ConfigMaps with a label selector', () => {
  it('sees creates, updates and deletes of selected objects and nothing of the others', async () => {
    const configMaps = client.resource<ConfigMap>(coreResources.configMaps);
    const cm = (name: string, labels: Record<string, string>, value: string): ConfigMap => ({
      metadata: { name, namespace, labels },
      data: { value },
    });
    // Present before the informer starts: must arrive as an add when it syncs.
    await configMaps.create(cm('pre', { [selectorLabel]: 'selected' }, 'v0'));
    await configMaps.create(cm('pre-other', { [selectorLabel]: 'other' }, 'v0'));

    const informer = track(
      new Informer<ConfigMap>({
        client,
        descriptor: coreResources.configMaps,
        namespace,
        labelSelector: `${selectorLabel}=selected`,
        indexers: { ownerUid: ownerUidIndex },
      }),
    );
    const events: string[] = [];
    informer.addEventHandler({
      onAdd: (obj) => events.push(`add ${obj.metadata?.name} ${obj.data?.['value']}`),
      onUpdate: (_old, obj) => events.push(`update ${obj.metadata?.name} ${obj.data?.['value']}`),
      onDelete: (obj) => events.push(`delete ${obj.metadata?.name}`),
    });
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    expect(await informer.waitForSync()).toBe(true);
    expect(events).toEqual(['add pre v0']);
    expect(informer.get(`${namespace}/pre`)?.data?.['value']).toBe('v0');
    expect(informer.get(`${namespace}/pre-other`)).toBeUndefined();

    await configMaps.create(cm('a', { [selectorLabel]: 'selected' }, 'v1'));
    await configMaps.create(cm('b', { [selectorLabel]: 'other' }, 'v1'));
    await configMaps.create(cm('c', {}, 'v1'));
    await eventually('add of a', 10_000, () => events.includes('add a v1'));

    await configMaps.patch('a', namespace, { data: { value: 'v2' } });
    await configMaps.patch('b', namespace, { data: { value: 'v2' } });
    await eventually('update of a', 10_000, () => events.includes('update a v2'));

    // Entering the selector is an add; leaving it is a delete (the apiserver filters the watch).
    await configMaps.patch('c', namespace, { metadata: { labels: { [selectorLabel]: 'selected' } } });
    await eventually('c entering the selector', 10_000, () => events.includes('add c v1'));
    await configMaps.patch('a', namespace, { metadata: { labels: { [selectorLabel]: 'other' } } });
    await eventually('a leaving the selector', 10_000, () => events.includes('delete a'));

    await configMaps.delete('c', namespace);
    await configMaps.delete('b', namespace);
    await eventually('delete of c', 10_000, () => events.includes('delete c'));
    // A watch delivers in order: once a selected object created last has arrived, any stray event
    // for b or pre-other would have arrived before it.
    await configMaps.create(cm('sentinel', { [selectorLabel]: 'selected' }, 'v1'));
    await eventually('add of the sentinel', 10_000, () => events.includes('add sentinel v1'));

    expect(events).toEqual(['add pre v0', 'add a v1', 'update a v2', 'add c v1', 'delete a', 'delete c', 'add sentinel v1']);
    expect(informer.list().map((o) => o.metadata?.name).sort()).toEqual(['pre', 'sentinel']);
    expect(informer.stats().expiredWatches).toBe(0);
    // The API server sends managedFields (listed and watched alike); the cache keeps none.
    expect((await configMaps.get('sentinel', namespace)).metadata?.managedFields?.length).toBeGreaterThan(0);
    expect(informer.list().map((o) => o.metadata?.managedFields)).toEqual([undefined, undefined]);
    // Cached objects are frozen: a controller must copy before changing one.
    const cached = informer.get(`${namespace}/pre`);
    expect(() => {
      if (cached?.data) cached.data['value'] = 'mutated';
    }).toThrow(TypeError);
  }, 60_000);

  it('re-lists periodically, without spurious updates for unchanged objects', async () => {
    const configMaps = client.resource<ConfigMap>(coreResources.configMaps);
    await configMaps.create({ metadata: { name: 'steady', namespace, labels: { [selectorLabel]: 'periodic' } }, data: { value: 'x' } });
    const informer = track(
      new Informer<ConfigMap>({
        client,
        descriptor: coreResources.configMaps,
        namespace,
        labelSelector: `${selectorLabel}=periodic`,
        resyncPeriodMs: 300,
        resyncJitter: 0.2,
      }),
    );
    let updates = 0;
    let adds = 0;
    informer.addEventHandler({ onAdd: () => adds++, onUpdate: () => updates++ });
    informer.start();
    await informer.waitForSync();
    await eventually('three periodic re-lists', 10_000, () => informer.stats().lists >= 4);
    expect(adds).toBe(1);
    expect(updates).toBe(0);
    // Still watching between re-lists.
    await configMaps.patch('steady', namespace, { data: { value: 'y' } });
    await eventually('the change', 10_000, () => informer.get(`${namespace}/steady`)?.data?.['value'] === 'y');
    expect(updates).toBe(1);
  }, 30_000);
});

describe('Informer after a 410 Gone', () => {
  // A real 410: the apiserver's watch cache for a custom resource starts at the resourceVersion
  // current when its CRD is (re)established. Deleting and re-creating the CRD leaves the informer
  // holding a resourceVersion older than anything the new cache has; resuming the watch from it
  // is answered "too old resource version" (410), and the informer must list again.
  const gadgets = testResource('gadgets', 'Gadget');

  let crdCreated = false;

  afterAll(async () => {
    if (crdCreated) await deleteTestCrd(client, gadgets, false);
  }, 60_000);

  it('re-lists and converges when its resourceVersion has expired', async () => {
    crdCreated = true;
    await ensureTestCrd(client, gadgets);
    const gadgetClient = client.resource<KubeObject & { spec?: { n: number } }>(gadgets);
    await gadgetClient.create({ metadata: { name: 'before', namespace }, spec: { n: 1 } });

    const informer = track(new Informer<KubeObject>({ client, descriptor: gadgets, namespace, watchTimeoutSeconds: 60 }));
    const events: string[] = [];
    informer.addEventHandler({
      onAdd: (obj) => events.push(`add ${obj.metadata?.name}`),
      onDelete: (obj) => events.push(`delete ${obj.metadata?.name}`),
    });
    informer.start();
    await informer.waitForSync();
    expect(informer.keys()).toEqual([`${namespace}/before`]);
    const syncedAt = informer.lastSyncResourceVersion();

    await deleteTestCrd(client, gadgets);
    await ensureTestCrd(client, gadgets);
    await gadgetClient.create({ metadata: { name: 'after', namespace }, spec: { n: 2 } });

    await eventually('the informer to see the object created after the CRD came back', 60_000, () => informer.get(`${namespace}/after`) !== undefined);
    await eventually('the stale object to be dropped', 10_000, () => informer.get(`${namespace}/before`) === undefined);
    expect(informer.stats().expiredWatches).toBeGreaterThanOrEqual(1);
    expect(informer.stats().lists).toBeGreaterThanOrEqual(2);
    expect(BigInt(informer.lastSyncResourceVersion())).toBeGreaterThan(BigInt(syncedAt));
    expect(events).toContain('delete before');
    expect(events[events.length - 1]).toBe('add after');
  }, 120_000);
});
