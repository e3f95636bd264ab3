// Leader election on a real coordination.k8s.io/v1 Lease. Durations are shortened (the algorithm
// is the same) so the suite runs in seconds.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LeaderElector } from '../../runtime/leader-election.js';
import type { Lease } from '../../runtime/leader-election.js';
import type { KubeClient } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { leadingStatusGauge } from '../../runtime/metrics.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster, sleep } from './runtime-support.js';
import { eventually } from '../support/eventually.js';

let client: KubeClient;
let namespace: string;
const electors: LeaderElector[] = [];

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  namespace = await createTestNamespace(client, 'runtime-lease');
}, 30_000);

afterAll(async () => {
  await Promise.all(electors.map((elector) => elector.stop()));
  if (client && namespace) await deleteNamespace(client, namespace);
  client?.close();
}, 60_000);

interface Candidate {
  elector: LeaderElector;
  started: number;
  stopped: number;
}

function candidate(identity: string, leaseName: string, timing: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number }): Candidate {
  const counts = { started: 0, stopped: 0 };
  const elector = new LeaderElector({
    client,
    namespace,
    leaseName,
    identity,
    ...timing,
    onStartedLeading: () => {
      counts.started++;
    },
    onStoppedLeading: () => {
      counts.stopped++;
    },
  });
  electors.push(elector);
  return Object.assign(counts, { elector });
}

async function leaseHolder(leaseName: string): Promise<string> {
  const lease = await client.resource<Lease>(coreResources.leases).get(leaseName, namespace);
  return lease.spec?.holderIdentity ?? '';
}

describe('LeaderElector', () => {
  it('elects exactly one of two candidates; the other takes over at once when the leader releases', async () => {
    // A lease that cannot expire within the takeover's wait below: a takeover within it is the
    // release's however loaded the machine is (a 4 s lease was outlasted once under make test's load).
    const timing = { leaseDurationMs: 20_000, renewDeadlineMs: 15_000, retryPeriodMs: 250 };
    const a = candidate('candidate-a', 'runtime-test', timing);
    const b = candidate('candidate-b', 'runtime-test', timing);
    a.elector.start();
    b.elector.start();
    await eventually('a leader', 10_000, () => a.elector.isLeader() || b.elector.isLeader());

    // Watch for two seconds (several renewals): never both, never neither.
    for (let i = 0; i < 40; i++) {
      expect(Number(a.elector.isLeader()) + Number(b.elector.isLeader())).toBe(1);
      await sleep(50);
    }
    const [leader, follower] = a.elector.isLeader() ? [a, b] : [b, a];
    expect(await leaseHolder('runtime-test')).toBe(leader.elector.identity);
    expect(leader.started).toBe(1);
    expect(follower.started).toBe(0);
    expect(follower.elector.observedLeader()).toBe(leader.elector.identity);

    const stoppedAt = Date.now();
    await leader.elector.stop();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.stopped).toBe(1);
    await eventually('the follower to take over', 10_000, () => follower.elector.isLeader());
    // Released, not expired: faster than the lease duration.
    expect(Date.now() - stoppedAt).toBeLessThan(timing.leaseDurationMs);
    expect(await leaseHolder('runtime-test')).toBe(follower.elector.identity);
    expect(follower.started).toBe(1);
  }, 30_000);

  it('releases the Lease on stop even when the version it last saw is stale', async () => {
    // stop() can cut a renewal short after the API server applied it: the leader's last view of
    // the Lease is then one version behind. Another write to the Lease (here: a label) between
    // the leader's last renewal and its stop makes that view stale the same way.
    const leases = client.resource<Lease>(coreResources.leases);
    // A renewal every 10 s: none comes between the write below and the stop.
    const leader = candidate('stale-leader', 'runtime-stale', { leaseDurationMs: 20_000, renewDeadlineMs: 15_000, retryPeriodMs: 10_000 });
    leader.elector.start();
    await eventually('leading', 10_000, () => leader.elector.isLeader());
    const seen = await leases.get('runtime-stale', namespace);
    await leases.replace({ ...seen, metadata: { ...seen.metadata, labels: { touched: 'by-the-test' } } });

    const follower = candidate('stale-follower', 'runtime-stale', { leaseDurationMs: 20_000, renewDeadlineMs: 15_000, retryPeriodMs: 250 });
    follower.elector.start();
    await eventually('the follower to see the leader', 10_000, () => follower.elector.observedLeader() === 'stale-leader');
    const stoppedAt = Date.now();
    await leader.elector.stop();
    expect(await leaseHolder('runtime-stale')).not.toBe('stale-leader');
    await eventually('the follower to take over', 10_000, () => follower.elector.isLeader());
    // Released, not expired: far sooner than the 20 s lease.
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  }, 40_000);

  it('waits for a lease held by a silent holder to expire, then takes it', async () => {
    const leases = client.resource<Lease>(coreResources.leases);
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    // A holder that renewed just now and then died (never renews again).
    await leases.create({
      metadata: { name: 'runtime-expiry', namespace },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, acquireTime: now, renewTime: now, leaseTransitions: 4 },
    });
    const c = candidate('candidate-c', 'runtime-expiry', { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 });
    const observedFrom = Date.now();
    c.elector.start();
    // Not a wait for a condition: an interval, shorter than the lease, in which nothing may change.
    await sleep(1200);
    expect(c.elector.isLeader()).toBe(false);
    expect(await leaseHolder('runtime-expiry')).toBe('ghost');
    await eventually('the candidate to take the expired lease', 10_000, () => c.elector.isLeader());
    // Judged by our own clock from when we first saw the record: at least one lease duration.
    expect(Date.now() - observedFrom).toBeGreaterThanOrEqual(2000);
    const lease = await leases.get('runtime-expiry', namespace);
    expect(lease.spec?.holderIdentity).toBe('candidate-c');
    expect(lease.spec?.leaseTransitions).toBe(5);
  }, 30_000);

  it('drives kubevirt_<component>_leading_status', async () => {
    const gauge = leadingStatusGauge('virt_handler');
    const elector = new LeaderElector({
      client,
      namespace,
      leaseName: 'runtime-gauge',
      identity: 'gauge-candidate',
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 200,
      component: 'virt_handler',
      onStartedLeading: () => undefined,
    });
    electors.push(elector);
    expect((await gauge.get()).values[0]?.value).toBe(0);
    elector.start();
    await eventually('leading', 10_000, () => elector.isLeader());
    expect((await gauge.get()).values[0]?.value).toBe(1);
    await elector.stop();
    expect((await gauge.get()).values[0]?.value).toBe(0);
    expect(await leaseHolder('runtime-gauge')).toBe('');
  }, 30_000);
});
