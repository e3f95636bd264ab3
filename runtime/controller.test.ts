// The controller's outcome handling, with a queue driven by hand (no informer: informers are
// exercised against the real API server in test/integration). Time is jest's fake clock: the work
// queue's delays and backoffs run on setTimeout and Date.now, so the tests step time exactly
// instead of sleeping and guessing.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { Writable } from 'node:stream';
import type { ReconcileContext, ReconcileResult } from './controller.js';
import { Controller, TerminalError, controllerOwnerKey } from './controller.js';
import type { RunnableInformer } from './informer.js';
import { waitForAllSynced } from './informer.js';
import { createRootLogger } from './logging.js';
import { ApiError } from './kube.js';
import { ExponentialBackoffRateLimiter } from './workqueue.js';

/** Let `ms` of fake time pass, running the timers and the promise callbacks they start. */
const advance = (ms: number): Promise<void> => jest.advanceTimersByTimeAsync(ms);

/**
 * Step the fake clock 1 ms at a time until the condition holds (not a polling wait: time moves
 * only as this steps it, so the tests see exact delays).
 */
async function stepUntil(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  for (let waited = 0; !condition(); waited++) {
    if (waited > timeoutMs) throw new Error('condition not met in time');
    await advance(1);
  }
}

let controllers: Controller[] = [];
beforeEach(() => {
  jest.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(async () => {
  const stopping = Promise.all(controllers.map((c) => c.stop({ deadlineMs: 100 })));
  await advance(100);
  await stopping;
  controllers = [];
  jest.useRealTimers();
});

let seq = 0;
function newController(
  reconcile: (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>,
  options: { workers?: number; baseDelayMs?: number } = {},
): Controller {
  const controller = new Controller({
    name: `test-controller-${++seq}`,
    kind: 'VirtualMachineInstance',
    reconcile,
    workers: options.workers ?? 1,
    // Only the per-key backoff: the outcome tests should not depend on the global bucket.
    rateLimiter: new ExponentialBackoffRateLimiter(options.baseDelayMs ?? 5, 1_000_000),
  });
  controllers.push(controller);
  return controller;
}

describe('Controller outcomes', () => {
  it('success forgets the key: its backoff starts over', async () => {
    let calls = 0;
    const controller = newController(async () => {
      calls++;
      if (calls <= 2) throw new Error('transient');
    });
    await controller.start();
    controller.enqueue('ns/a');
    await stepUntil(() => calls === 3 && controller.queue.inFlight() === 0);
    expect(controller.queue.numRequeues('ns/a')).toBe(0);
  });

  it('a thrown error is retried with growing per-key backoff', async () => {
    const times: number[] = [];
    const controller = newController(
      async () => {
        times.push(Date.now());
        throw new Error('apiserver unavailable');
      },
      { baseDelayMs: 20 },
    );
    await controller.start();
    controller.enqueue('ns/a');
    await stepUntil(() => times.length >= 4, 3000);
    const gaps = times.slice(1, 4).map((t, i) => t - (times[i] ?? 0));
    expect(gaps).toEqual([20, 40, 80]);
    expect(controller.queue.numRequeues('ns/a')).toBeGreaterThanOrEqual(3);
  });

  it('requeueAfter reconciles the key again after the delay, without counting a failure', async () => {
    const times: number[] = [];
    const controller = newController(async () => {
      times.push(Date.now());
      return times.length < 3 ? { requeueAfter: 50 } : undefined;
    });
    await controller.start();
    controller.enqueue('ns/a');
    await stepUntil(() => times.length === 3);
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBe(50);
    expect((times[2] ?? 0) - (times[1] ?? 0)).toBe(50);
    expect(controller.queue.numRequeues('ns/a')).toBe(0);
    await advance(10_000);
    expect(times).toHaveLength(3);
  });

  it('a TerminalError is not retried until the key is enqueued again (the object changed)', async () => {
    let calls = 0;
    const controller = newController(async () => {
      calls++;
      throw new TerminalError('spec.domain.devices.foo is not supported');
    });
    await controller.start();
    controller.enqueue('ns/a');
    await stepUntil(() => calls === 1);
    await advance(1_000_000); // past any backoff it could have been given
    expect(calls).toBe(1);
    expect(controller.queue.numRequeues('ns/a')).toBe(0);
    controller.enqueue('ns/a');
    await stepUntil(() => calls === 2);
  });

  it('a create refused because the namespace is being deleted is not retried; any other 403 is', async () => {
    // The API server's answer to a create in a terminating namespace (a metav1.Status).
    const terminating = (verb: string) =>
      new ApiError(403, 'Forbidden', 'unable to create new content in namespace ns because it is being terminated', verb, '/api/v1/namespaces/ns/pods', {
        kind: 'Status',
        reason: 'Forbidden',
        details: { causes: [{ reason: 'NamespaceTerminating', message: 'namespace ns is being terminated', field: 'metadata.namespace' }] },
      });
    const calls = { terminating: 0, forbidden: 0 };
    const controller = newController(async (key) => {
      if (key === 'ns/terminating') {
        calls.terminating++;
        throw terminating('POST');
      }
      calls.forbidden++;
      throw new ApiError(403, 'Forbidden', 'pods is forbidden: User cannot create', 'POST', '/api/v1/namespaces/ns/pods', { kind: 'Status', reason: 'Forbidden' });
    });
    await controller.start();
    controller.enqueue('ns/terminating');
    controller.enqueue('ns/forbidden');
    await stepUntil(() => calls.terminating === 1 && calls.forbidden === 1);
    await advance(10_000);
    expect(calls.terminating).toBe(1);
    expect(controller.queue.numRequeues('ns/terminating')).toBe(0);
    expect(calls.forbidden).toBeGreaterThan(3); // retried with backoff
  });

  it('never runs two reconciles of one key at once, even with many workers', async () => {
    let active = 0;
    let overlaps = 0;
    let calls = 0;
    const controller = newController(
      async () => {
        active++;
        if (active > 1) overlaps++;
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        active--;
      },
      { workers: 4 },
    );
    await controller.start();
    for (let i = 0; i < 20; i++) {
      controller.enqueue('ns/same');
      await advance(1);
    }
    await stepUntil(() => active === 0 && controller.queue.len() === 0 && controller.queue.inFlight() === 0);
    expect(overlaps).toBe(0);
    // De-duplicated: far fewer reconciles than adds, but at least one after the last add.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThan(20);
  });

  it('gives each reconcile a child logger with reconcileId, controller, kind, namespace, name', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    const log = createRootLogger({ component: 'test', level: 'info', destination });
    let done = false;
    const controller = new Controller({
      name: 'vmi',
      kind: 'VirtualMachineInstance',
      log,
      reconcile: async (_key, ctx) => {
        ctx.log.info({ userData: 'password: hunter2' }, 'reconciling');
        done = true;
      },
    });
    controllers.push(controller);
    await controller.start();
    controller.enqueue('default/testvm');
    await stepUntil(() => done);
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'reconciling');
    expect(line).toMatchObject({ controller: 'vmi', kind: 'VirtualMachineInstance', namespace: 'default', name: 'testvm', component: 'test' });
    expect(typeof line?.['reconcileId']).toBe('string');
    expect(line?.['userData']).toBe('[REDACTED]');
  });

  it('stop lets the in-flight reconcile finish and drops queued keys', async () => {
    const finished: string[] = [];
    let release: () => void = () => undefined;
    const controller = newController(async (key) => {
      if (key === 'ns/slow') await new Promise<void>((resolve) => (release = resolve));
      finished.push(key);
    });
    await controller.start();
    controller.enqueue('ns/slow');
    await stepUntil(() => controller.queue.inFlight() === 1);
    controller.enqueue('ns/queued');
    const stopped = controller.stop({ deadlineMs: 2000 });
    await advance(10);
    release();
    await stopped;
    expect(finished).toEqual(['ns/slow']);
  });

  it('stop aborts the reconcile signal once the deadline passes', async () => {
    let aborted = false;
    const controller = newController(async (_key, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      aborted = ctx.signal.aborted;
    });
    await controller.start();
    controller.enqueue('ns/stuck');
    await stepUntil(() => controller.queue.inFlight() === 1);
    const stopped = controller.stop({ deadlineMs: 30 });
    await advance(29);
    expect(aborted).toBe(false);
    await advance(1);
    await stopped;
    expect(aborted).toBe(true);
  });
});

describe('controllerOwnerKey', () => {
  it('maps an owned object to its controlling owner of the given kind', () => {
    const mapper = controllerOwnerKey('VirtualMachineInstance');
    const pod = {
      metadata: {
        namespace: 'ns',
        name: 'virt-launcher-vm1-abcde',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Other', name: 'x', uid: '1', controller: false },
          { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1', uid: '2', controller: true },
        ],
      },
    };
    expect(mapper(pod)).toEqual(['ns/vm1']);
    expect(mapper({ metadata: { namespace: 'ns', name: 'lonely' } })).toEqual([]);
  });
});

/** An informer reduced to its sync (the real one needs an API server: test/integration). */
class SyncOnly implements RunnableInformer {
  private synced = false;
  private readonly waiters: Array<(synced: boolean) => void> = [];
  start(): void {}
  async stop(): Promise<void> {
    for (const waiter of this.waiters.splice(0)) waiter(this.synced);
  }
  hasSynced(): boolean {
    return this.synced;
  }
  waitForSync(): Promise<boolean> {
    return this.synced ? Promise.resolve(true) : new Promise((resolve) => this.waiters.push(resolve));
  }
  sync(): void {
    this.synced = true;
    for (const waiter of this.waiters.splice(0)) waiter(true);
  }
}

describe('waitForAllSynced', () => {
  it('holds one abort listener on the shared signal however many informers wait, and drops it once all synced', async () => {
    const informers = Array.from({ length: 12 }, () => new SyncOnly());
    const leadership = new AbortController();
    // The leader's four controllers wait on one signal (controller/manager.ts).
    const waits = [informers.slice(0, 5), informers.slice(5, 9), informers.slice(9)].map((group) => waitForAllSynced([...group, ...group], leadership.signal));
    expect(getEventListeners(leadership.signal, 'abort')).toHaveLength(3);
    for (const informer of informers) informer.sync();
    await expect(Promise.all(waits)).resolves.toEqual([true, true, true]);
    expect(getEventListeners(leadership.signal, 'abort')).toHaveLength(0);
  });

  it('says false when the signal aborts before the sync, or an informer stops unsynced', async () => {
    const [a, b] = [new SyncOnly(), new SyncOnly()];
    const leadership = new AbortController();
    const waiting = waitForAllSynced([a, b], leadership.signal);
    a.sync();
    leadership.abort();
    await expect(waiting).resolves.toBe(false);
    await expect(waitForAllSynced([a], leadership.signal)).resolves.toBe(false);
    const stopped = waitForAllSynced([a, b]);
    await b.stop();
    await expect(stopped).resolves.toBe(false);
    await expect(waitForAllSynced([a])).resolves.toBe(true);
  });
});
