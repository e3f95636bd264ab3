import { describe, expect, it } from '@jest/globals';
import { Controller } from './controller.js';
import { Leadership } from './leadership.js';
import { silentLogger } from './logging.js';
import { eventually } from '../test/support/eventually.js';

// Leader election against a real Lease is tested in test/integration (runtime-leader-election,
// and the controller's and operator's failover); this is the term's life without election.
describe('Leadership without election', () => {
  function leadership() {
    const reconciled: string[] = [];
    const unregistered: string[] = [];
    let terms = 0;
    const leadership = new Leadership({
      log: silentLogger,
      identity: 'replica-a',
      informers: [],
      election: undefined,
      newTerm: () => {
        terms += 1;
        const controller = new Controller({ name: `test-term-${terms}`, kind: 'Thing', log: silentLogger, reconcile: async (key) => void reconciled.push(key) });
        return { controllers: [controller], unregister: [() => unregistered.push(`term ${terms}`)] };
      },
      describe: 'the test controller',
    });
    return { leadership, reconciled, unregistered, terms: () => terms };
  }

  it('leads at once: one term whose controllers reconcile; it is its own observed leader', async () => {
    const { leadership: l, reconciled, terms } = leadership();
    expect(l.isLeader()).toBe(false);
    expect(l.idle()).toBe(true);
    l.start();
    await eventually('leading', 5_000, () => l.isLeader());
    expect(l.observedLeader()).toBe('replica-a');
    expect(l.hasSynced()).toBe(true);
    l.term()?.controllers[0]?.enqueue('ns/a');
    await eventually('ns/a reconciled', 5_000, () => reconciled.includes('ns/a'));
    await eventually('idle', 5_000, () => l.idle());
    expect(terms()).toBe(1);
    await l.stop();
  });

  it('stop ends the term: its handlers are unregistered once and its controllers take no more keys', async () => {
    const { leadership: l, reconciled, unregistered } = leadership();
    l.start();
    await eventually('leading', 5_000, () => l.isLeader());
    const [controller] = l.term()?.controllers ?? [];
    await l.stop();
    expect(l.isLeader()).toBe(false);
    expect(l.term()).toBeUndefined();
    expect(unregistered).toEqual(['term 1']);
    controller?.enqueue('ns/late');
    expect(controller?.queue.len()).toBe(0);
    expect(reconciled).not.toContain('ns/late');
    // A second stop finds no term: nothing is unregistered twice.
    await l.stop();
    expect(unregistered).toEqual(['term 1']);
  });
});
