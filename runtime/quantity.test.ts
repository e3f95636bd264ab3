import { describe, expect, test } from '@jest/globals';
import { formatBytes, formatMillicores, parseQuantity, quantityBytes, quantityMillis } from './quantity.js';

describe('parseQuantity', () => {
  test.each([
    ['1Gi', 1073741824n],
    ['80Mi', 83886080n],
    ['1Ki', 1024n],
    ['1G', 1000000000n],
    ['1k', 1000n],
    ['1.5Gi', 1610612736n],
    ['0.5Mi', 524288n],
    ['.5Ki', 512n],
    ['512', 512n],
    [2048, 2048n],
    ['1e3', 1000n],
    ['1E3', 1000n],
    ['1.5e3', 1500n],
    ['2E', 2000000000000000000n],
    ['1Ei', 1n << 60n],
    ['+1Mi', 1048576n],
    ['-1Ki', -1024n],
    ['0', 0n],
  ])('%s is %s', (value, expected) => expect(parseQuantity(value)).toBe(expected));

  test('rounds up to the scale asked for', () => {
    expect(parseQuantity('100m', 3)).toBe(100n);
    expect(parseQuantity('100m')).toBe(1n);
    expect(parseQuantity('1.5', 3)).toBe(1500n);
    expect(parseQuantity('1n', 3)).toBe(1n);
    expect(parseQuantity('2500u', 3)).toBe(3n);
    expect(parseQuantity('1e-3', 3)).toBe(1n);
    expect(parseQuantity(0.25, 3)).toBe(250n);
  });

  test('is exact where floating point is not', () => {
    // 0.1Gi in floating point is 107374182.40000001; exact arithmetic rounds 107374182.4 up.
    expect(parseQuantity('0.1Gi')).toBe(107374183n);
    expect(parseQuantity('9007199254740993')).toBe(9007199254740993n);
  });

  test.each(['', 'lots', '1Gb', '1 Gi', ' 1Gi', '1e', 'Gi', '.', '1.2.3', '1gi', '1K', 'e3', '--1', 'NaN'])(
    '%j is refused',
    (value) => expect(() => parseQuantity(value)).toThrow(/is not a Kubernetes quantity/),
  );

  test.each([Number.NaN, Number.POSITIVE_INFINITY])('the number %s is refused', (value) => expect(() => parseQuantity(value)).toThrow(/is not a Kubernetes quantity/));

  test('a hostile exponent or digit count is refused at once, not computed (1e300000000 took 30 s and 870 MB)', () => {
    for (const value of ['1e300000000', '1e3000000', '9e20', '16Ei', '100000000000000000000', `1${'0'.repeat(1_000_000)}`, '1e+21', 1e21, `0.${'1'.repeat(100_000)}`]) {
      const started = performance.now();
      expect(() => parseQuantity(value, 3)).toThrow(/is out of range/);
      expect(performance.now() - started).toBeLessThan(5000);
    }
  });

  test('tiny values round up to one unit of the scale without computing the divisor; zeros around the digits are free', () => {
    const started = performance.now();
    expect(parseQuantity('1e-300000000', 3)).toBe(1n);
    expect(parseQuantity('-1e-300000000')).toBe(-1n);
    expect(parseQuantity('0e300000000')).toBe(0n);
    expect(parseQuantity(`${'0'.repeat(1_000_000)}1.5${'0'.repeat(1_000_000)}Gi`)).toBe(1610612736n);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(parseQuantity('8Ei')).toBe(8n << 60n);
    expect(parseQuantity('9e18')).toBe(9_000_000_000_000_000_000n);
  });

  test('the error names the field', () => {
    expect(() => quantityBytes('1GB', 'spec.domain.memory.guest')).toThrow('spec.domain.memory.guest: "1GB" is not a Kubernetes quantity');
  });
});

describe('number helpers', () => {
  test('bytes and millis', () => {
    expect(quantityBytes('1.5Gi')).toBe(1610612736);
    expect(quantityMillis('100m')).toBe(100);
    expect(quantityMillis('2')).toBe(2000);
  });
  test('formatting', () => {
    expect(formatBytes(parseQuantity('1Gi') + parseQuantity('80Mi'))).toBe('1104Mi');
    expect(formatBytes(1000n)).toBe('1000');
    expect(formatBytes(0n)).toBe('0');
    expect(formatMillicores(1500n)).toBe('1500m');
    expect(formatMillicores(2000n)).toBe('2');
  });
});
