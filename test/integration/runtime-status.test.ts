// Diff-before-write against the real API server: a pass that changes nothing writes nothing,
// counted both by the object's resourceVersion and by our REST metrics.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setCondition } from '../../runtime/conditions.js';
import type { Condition } from '../../runtime/conditions.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { isConflict } from '../../runtime/kube.js';
import { restClientRequests } from '../../runtime/metrics.js';
import { updateStatusIfChanged } from '../../runtime/status.js';
import {
  clusterClient,
  createTestNamespace,
  deleteNamespace,
  deleteTestCrd,
  ensureTestCrd,
  requireCluster,
  testResource,
} from './runtime-support.js';

interface Widget extends KubeObject {
  spec?: { size: number };
  status?: { phase?: string; observedGeneration?: number; conditions?: Condition[]; reason?: string | null };
}

const widgets = testResource('widgets', 'Widget');

let client: KubeClient;
let namespace: string;

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  namespace = await createTestNamespace(client, 'runtime-status');
  await ensureTestCrd(client, widgets);
}, 60_000);

afterAll(async () => {
  if (client && namespace) {
    await deleteNamespace(client, namespace);
    await deleteTestCrd(client, widgets, false);
  }
  client?.close();
}, 60_000);

/** Status writes (PUT .../widgets/{name}/status) sent so far, by our REST metrics. */
async function statusWrites(): Promise<number> {
  const metric = await restClientRequests.get();
  return metric.values
    .filter((v) => v.labels['resource'] === 'widgets' && v.labels['verb'] === 'UPDATE')
    .reduce((sum, v) => sum + v.value, 0);
}

function computeStatus(widget: Widget, now: Date): Widget['status'] {
  // What a reconcile would do: derive the whole status from the object, conditions included.
  const ready = setCondition(widget.status?.conditions, { type: 'Ready', status: 'True', reason: 'Sized', message: `size ${widget.spec?.size}` }, { now });
  return { phase: 'Running', observedGeneration: widget.metadata?.generation ?? 0, conditions: ready.conditions };
}

describe('updateStatusIfChanged', () => {
  it('writes once, then issues zero writes while nothing changes', async () => {
    const widgetClient = client.resource<Widget>(widgets);
    const created = await widgetClient.create({ metadata: { name: 'w1', namespace }, spec: { size: 3 } });
    const writesBefore = await statusWrites();

    const first = await updateStatusIfChanged(widgetClient, created, computeStatus(created, new Date('2026-11-22T20:00:00.500Z')));
    expect(first.written).toBe(true);
    expect(await statusWrites()).toBe(writesBefore + 1);
    const rvAfterFirst = first.object.metadata?.resourceVersion;

    // Ten more passes over the object as read back from the server, later in time: the condition's
    // lastTransitionTime is kept and nothing differs, so nothing is written.
    for (let pass = 0; pass < 10; pass++) {
      const current = await widgetClient.get('w1', namespace);
      const result = await updateStatusIfChanged(widgetClient, current, computeStatus(current, new Date(Date.now() + pass * 1000)));
      expect(result.written).toBe(false);
    }
    // A computed status that differs only by key order and unset (undefined/null) members is equal.
    const current = await widgetClient.get('w1', namespace);
    const reordered = { conditions: current.status?.conditions, reason: null, observedGeneration: current.status?.observedGeneration, phase: 'Running' };
    expect((await updateStatusIfChanged(widgetClient, current, reordered)).written).toBe(false);

    expect(await statusWrites()).toBe(writesBefore + 1);
    expect((await widgetClient.get('w1', namespace)).metadata?.resourceVersion).toBe(rvAfterFirst);

    // A real change is written.
    const changed = await updateStatusIfChanged(widgetClient, current, { ...current.status, phase: 'Stopped' });
    expect(changed.written).toBe(true);
    expect(changed.object.status?.phase).toBe('Stopped');
    expect(await statusWrites()).toBe(writesBefore + 2);
  }, 30_000);

  it('fails with a conflict when computed from a stale read, instead of overwriting', async () => {
    const widgetClient = client.resource<Widget>(widgets);
    const created = await widgetClient.create({ metadata: { name: 'w2', namespace }, spec: { size: 1 } });
    await updateStatusIfChanged(widgetClient, created, { phase: 'Pending' });
    // `created` is now stale: its resourceVersion precedes the write above.
    let caught: unknown;
    try {
      await updateStatusIfChanged(widgetClient, created, { phase: 'Running' });
    } catch (err) {
      caught = err;
    }
    expect(isConflict(caught)).toBe(true);
    expect((await widgetClient.get('w2', namespace)).status?.phase).toBe('Pending');
  }, 30_000);
});
