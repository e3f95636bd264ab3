import { describe, expect, it } from '@jest/globals';
import { GoDuration, parseGoDuration } from './duration.js';

describe('parseGoDuration', () => {
  it.each([
    ['5m0s', 300_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['300ms', 300],
    ['0s', 0],
    ['0', 0],
    ['2h45m10.5s', 9_910_500],
    ['10us', 0.01],
  ])('%s is %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 6);
    expect(GoDuration.safeParse(text).success).toBe(true);
  });

  it.each(['', '5', '-5s', '5 s', 's', '5x', '1m-2s', '1e3s', `${'9'.repeat(70)}s`])('refuses %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});
