// The installed node handler labels its node and keeps the kubevirt.io/heartbeat annotation fresh,
// so the controller can tell a dead handler (stale heartbeat) from a quiet one.
// Fails (never skips) when the cluster or the node handler is missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { coreResources } from '../../runtime/kube.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { heartbeatPeriodMs, probeHost } from '../../node-handler/node-labels.js';
import { cpuVulnerabilityLabelPrefix, cpuVulnerableLabel, heartbeatAnnotation, hostCpuModelLabel, kvmUsableLabel, nodeIsVirtualLabel, schedulableLabel } from '../../runtime/contracts/node-marks.js';
import { clusterClient, requireCluster } from '../integration/runtime-support.js';

interface PodObject extends KubeObject {
  spec?: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

describe('the installed node handler’s node labels and heartbeat', () => {
  let client: KubeClient;
  let node: string;

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    const pods = await client.resource<PodObject>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
    const ready = pods.items.find((pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (!ready?.spec?.nodeName) throw new Error('no ready node handler pod in namespace kubevirt: install kubevm first');
    node = ready.spec.nodeName;
  }, 60_000);

  afterAll(() => client?.close());

  it('marks the node schedulable, says whether KVM is usable and names the host CPU', async () => {
    const object = await client.resource<KubeObject>(coreResources.nodes).get(node);
    const labels = object.metadata?.labels ?? {};
    expect(labels[schedulableLabel]).toBe('true');
    expect(['true', 'false']).toContain(labels[kvmUsableLabel]);
    expect(labels[hostCpuModelLabel]).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  });

  // The local cluster's node is this machine: the handler's labels must say what this kernel says.
  it('labels the CPU vulnerability mitigation state the kernel reports, and whether the node is a VM', async () => {
    const labels = (await client.resource<KubeObject>(coreResources.nodes).get(node)).metadata?.labels ?? {};
    const host = await probeHost({ qemuBinary: '/nonexistent' });
    const vulnerabilities = Object.entries(host.cpuVulnerabilities ?? {});
    expect(vulnerabilities.length).toBeGreaterThan(0);
    for (const [name, state] of vulnerabilities) expect(labels[`${cpuVulnerabilityLabelPrefix}${name}`]).toBe(state);
    expect(labels[cpuVulnerableLabel]).toBe(String(vulnerabilities.some(([, state]) => state === 'vulnerable')));
    expect(labels[nodeIsVirtualLabel]).toBe(String(host.nodeIsVirtual));
  });

  it('beats: the heartbeat is at most one period (plus slack) old', async () => {
    const object = await client.resource<KubeObject>(coreResources.nodes).get(node);
    const beat = object.metadata?.annotations?.[heartbeatAnnotation];
    expect(beat).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.now() - Date.parse(beat ?? '')).toBeLessThan(heartbeatPeriodMs + 15_000);
  });
});
