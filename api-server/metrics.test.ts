// The stream gauges count what is open per VMI, and drop a VMI's series when nothing is left.
import { describe, expect, it } from '@jest/globals';
import { streamGauges, trackStream } from './metrics.js';

const valueOf = async (kind: keyof typeof streamGauges, vmi: string) =>
  (await streamGauges[kind].get()).values.find((v) => v.labels['namespace'] === 'ns' && v.labels['vmi'] === vmi)?.value;

describe('stream gauges', () => {
  it('count open streams per namespace and VMI, each end counted once, and forget a VMI at zero', async () => {
    const first = trackStream('console', 'ns', 'a');
    const second = trackStream('console', 'ns', 'a');
    const tunnel = trackStream('portforward', 'ns', 'b');
    expect(await valueOf('console', 'a')).toBe(2);
    expect(await valueOf('portforward', 'b')).toBe(1);
    first();
    first();
    expect(await valueOf('console', 'a')).toBe(1);
    second();
    tunnel();
    expect(await valueOf('console', 'a')).toBeUndefined();
    expect(await valueOf('portforward', 'b')).toBeUndefined();
    expect((await streamGauges.vnc.get()).name).toBe('kubevirt_vnc_active_connections');
  });
});
