import { OwnWrites } from './own-writes.js';

describe('OwnWrites', () => {
  test('the cache is behind until it shows our write (or a later one)', () => {
    const writes = new OwnWrites(() => 1_000);
    expect(writes.cacheIsBehind('ns/a', '10')).toBe(false);
    writes.record('ns/a', '12');
    expect(writes.cacheIsBehind('ns/a', '10')).toBe(true);
    expect(writes.cacheIsBehind('ns/a', '13')).toBe(false);
    expect(writes.cacheIsBehind('ns/a', '10')).toBe(false); // caught up once: forgotten
  });
  test('waiting is bounded', () => {
    let now = 0;
    const writes = new OwnWrites(() => now);
    writes.record('ns/a', '12');
    now = 31_000;
    expect(writes.cacheIsBehind('ns/a', '10')).toBe(false);
  });
});
