import { describe, expect, it } from '@jest/globals';
import { ProcessLifecycle } from './process.js';
import { eventually } from '../test/support/eventually.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('ProcessLifecycle', () => {
  it('runs hooks once, in reverse order of registration, then exits 0', async () => {
    const order: string[] = [];
    const exits: number[] = [];
    const lifecycle = new ProcessLifecycle({ exit: (code) => exits.push(code) });
    lifecycle.onShutdown('health server', () => {
      order.push('health');
    });
    lifecycle.onShutdown('leader election', async () => {
      await sleep(5);
      order.push('lease');
    });
    lifecycle.onShutdown('controllers', () => {
      order.push('controllers');
    });
    expect(lifecycle.signal.aborted).toBe(false);
    await Promise.all([lifecycle.shutdown('test'), lifecycle.shutdown('again')]);
    expect(lifecycle.signal.aborted).toBe(true);
    expect(order).toEqual(['controllers', 'lease', 'health']);
    expect(exits).toEqual([0]);
  });

  it('gives up on a hook at the deadline, skips the rest, and exits 1', async () => {
    const ran: string[] = [];
    const exits: number[] = [];
    const lifecycle = new ProcessLifecycle({ deadlineMs: 50, exit: (code) => exits.push(code) });
    lifecycle.onShutdown('never reached', () => {
      ran.push('last');
    });
    lifecycle.onShutdown('stuck', () => new Promise<void>(() => undefined));
    const started = Date.now();
    await lifecycle.shutdown('test');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ran).toEqual([]);
    expect(exits).toEqual([1]);
  });

  it('shuts down on SIGTERM once handlers are installed, and removes them after', async () => {
    const exits: number[] = [];
    const lifecycle = new ProcessLifecycle({ exit: (code) => exits.push(code) });
    let hookRan = false;
    lifecycle.onShutdown('hook', () => {
      hookRan = true;
    });
    const listenersBefore = process.listenerCount('SIGTERM');
    lifecycle.installSignalHandlers();
    // Emitted, not sent: a real signal would also reach the test runner.
    process.emit('SIGTERM', 'SIGTERM');
    await eventually('the exit call', 2000, () => exits.length > 0);
    expect(hookRan).toBe(true);
    expect(exits).toEqual([0]);
    expect(process.listenerCount('SIGTERM')).toBe(listenersBefore);
  });
});
