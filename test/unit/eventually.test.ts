import { describe, expect, it } from '@jest/globals';
import { eventually } from '../support/eventually.js';

describe('eventually', () => {
  it('resolves with the first value the check returns', async () => {
    let calls = 0;
    const value = await eventually('the third call', 1000, () => (++calls >= 3 ? `call ${calls}` : undefined), { intervalMs: 1 });
    expect(value).toBe('call 3');
  });

  it('treats false, null and a thrown error as not yet', async () => {
    const answers: Array<() => unknown> = [() => false, () => null, () => { throw new Error('not ready'); }, () => 0];
    let index = 0;
    await expect(eventually('a zero', 1000, () => answers[index++]?.(), { intervalMs: 1 })).resolves.toBe(0);
  });

  it('fails after the timeout naming what it waited for and the last error', async () => {
    const started = Date.now();
    await expect(
      eventually('the widget', 50, async () => {
        throw new Error('widget is Pending');
      }),
    ).rejects.toThrow('timed out after 50 ms waiting for the widget: widget is Pending');
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });

  it('evaluates a lazy description only on failure', async () => {
    let described = 0;
    const describeState = (): string => `state ${++described}`;
    await eventually(describeState, 100, () => true);
    expect(described).toBe(0);
    await expect(eventually(describeState, 20, () => false)).rejects.toThrow('waiting for state 1');
  });
});
