// The node handler's VMI loop against the REAL kube-apiserver with the real VMI CRD (crds/):
// watch by field selector status.nodeName, attach to the active pod's launcher, report status with
// at most two writes to Running (Running, then the guest agent), write nothing on a no-op pass,
// forward pause/unpause and shutdown-on-delete, drop a soft reboot that cannot succeed, and re-attach after a handler restart without
// touching the VM. The launchers here are stand-ins behind the handler's LauncherDialer seam (the
// real launcher over its socket: test/launcher/node-handler-launcher.test.ts).
// Needs KUBECONFIG (make cluster-up or cluster-up-cp); fails, never skips, without an API server.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { Controller } from '../../runtime/controller.js';
import { Informer } from '../../runtime/informer.js';
import type { KubeClient, ResourceDescriptor } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import { statusUpdates } from '../../runtime/metrics.js';
import { DomainStateCache } from '../../node-handler/domain-state.js';
import type { DomainState } from '../../node-handler/domain-state.js';
import { LauncherConnections, launcherSocketPath } from '../../node-handler/launcher-connections.js';
import type { LauncherDialer, LauncherSession, LauncherSessionHandlers } from '../../node-handler/launcher-connections.js';
import { nodeVmiSelector, pauseRequestAnnotation, softRebootRequestAnnotation, vmiHandlerReconcile } from '../../node-handler/vmi-handler.js';
import type { VirtualMachineInstance } from '../../node-handler/vmi-handler.js';
import { isRefusedWrite, patchStatusIfChanged } from '../../runtime/status.js';
import { VMI_STATUS_FIELDS } from '../../runtime/contracts/vmi-status.js';
import { applyKubevmCrds, clusterClient, createTestNamespace, requireCluster } from './runtime-support.js';
import { eventually } from '../support/eventually.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';

jest.setTimeout(120_000);

const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
const podsDir = '/nonexistent/kubelet/pods';

type StateChange = Partial<Omit<DomainState, 'podUid'>>;

/** A launcher as the handler sees one: answers commands by changing state, as the real one does. */
class StandInLauncher {
  readonly calls: string[] = [];
  dials = 0;
  state: StateChange = { phase: 'Pending', agentConnected: false };
  /** Answer a soft reboot as the launcher does for a guest without an agent and with ACPI off. */
  refuseSoftReboot = false;
  private handlers: LauncherSessionHandlers | undefined;

  readonly dial = async (handlers: LauncherSessionHandlers): Promise<LauncherSession> => {
    this.dials += 1;
    this.handlers = handlers;
    // What a subscription starts with: the current state.
    queueMicrotask(() => handlers.onState(this.state));
    const own = handlers;
    return {
      start: async () => this.command('start', { phase: 'Starting' }),
      pause: async () => this.command('pause', { phase: 'Paused', pauseReason: 'User' }),
      unpause: async () => this.command('unpause', { phase: 'Running' }),
      softReboot: async () => {
        this.command('softReboot', {});
        if (this.refuseSoftReboot) throw new Error('launcher softReboot: no guest agent is connected and ACPI is disabled');
      },
      reset: async () => this.command('reset', {}),
      shutdown: async (grace) => {
        this.command(`shutdown:${grace}`, { phase: 'ShuttingDown' });
        setTimeout(() => this.emit({ phase: 'Shutoff', shutoffReason: 'GuestShutdown' }), 200);
      },
      close: () => {
        if (this.handlers === own) this.handlers = undefined;
      },
    };
  };

  emit(change: StateChange): void {
    this.state = { ...this.state, ...change };
    this.handlers?.onState(change);
  }

  get attached(): boolean {
    return this.handlers !== undefined;
  }

  private command(name: string, change: StateChange): void {
    this.calls.push(name);
    this.emit(change);
  }
}

let client: KubeClient;
let namespace: string;
const nodeName = `nh-it-${randomBytes(3).toString('hex')}`;
const launchers = new Map<string, StandInLauncher>();

const dial: LauncherDialer = async ({ socketPath }, handlers) => {
  const launcher = launchers.get(socketPath);
  if (!launcher) throw new Error(`no launcher listening on ${socketPath}`);
  return launcher.dial(handlers);
};

interface RunningHandler {
  stop(): Promise<void>;
  /** Completed reconciles of `name`, and how many of the handler's periodic resyncs have run. */
  passes(name: string): number;
  resyncs(): number;
}

/** The handler's periodic resync (SyncPeriod), short so that the tests see several. */
const syncPeriodMs = 400;

async function startHandler(): Promise<RunningHandler> {
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  const selector = await nodeVmiSelector(vmis, nodeName, silentLogger);
  expect(selector).toEqual({ fieldSelector: `status.nodeName=${nodeName}` });
  const informer = new Informer<VirtualMachineInstance>({ client, descriptor: vmiResource, namespace, ...selector });
  const domains = new DomainStateCache();
  const passes = new Map<string, number>();
  const controller = new Controller({
    name: `nh-it-${randomBytes(2).toString('hex')}`,
    kind: 'VirtualMachineInstance',
    syncPeriodMs,
    reconcile: async (key, ctx) => {
      const result = await reconcile(key, ctx);
      passes.set(key, (passes.get(key) ?? 0) + 1);
      return result;
    },
  });
  const connections = new LauncherConnections({ dial, domains, podsDir, onConnectionChange: (key) => controller.enqueue(key) });
  const reconcile = vmiHandlerReconcile({ nodeName, vmis, informer, domains, connections });
  domains.onChange((key) => controller.enqueue(key));
  controller.watch(informer);
  informer.start();
  await controller.start();
  return {
    async stop() {
      await controller.stop();
      await informer.stop();
      connections.closeAll();
    },
    passes: (name) => passes.get(`${namespace}/${name}`) ?? 0,
    resyncs: () => controller.resyncs(),
  };
}

async function statusOutcomes(outcome: 'written' | 'unchanged' | 'conflict'): Promise<number> {
  const metric = await statusUpdates.get();
  return metric.values.filter((value) => value.labels['resource'] === 'virtualmachineinstances' && value.labels['outcome'] === outcome).reduce((sum, value) => sum + value.value, 0);
}
const statusWrites = () => statusOutcomes('written');

/**
 * Wait until the handler has run a periodic resync that started after now, and the passes it
 * caused are done: the VMI was reconciled again without any event.
 */
async function afterResync(running: RunningHandler, name: string): Promise<void> {
  const [resyncs, passes] = [running.resyncs(), running.passes(name)];
  await eventually('a periodic resync of the VMI', 10_000, () => running.resyncs() > resyncs && running.passes(name) > passes);
}

/** A VMI as the controller leaves it at Scheduled: launcher pod on `node`, recorded in activePods. */
async function scheduledVmi(name: string, node: string, podUid: string): Promise<VirtualMachineInstance> {
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  const created = await vmis.create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace, finalizers: ['kubevm.io/node-handler-test'] },
    spec: { terminationGracePeriodSeconds: 7, domain: { devices: {}, resources: { requests: { memory: '64Mi' } } } },
  });
  return vmis.replaceStatus({
    ...created,
    status: {
      phase: 'Scheduled',
      nodeName: node,
      activePods: { [podUid]: node },
      phaseTransitionTimestamps: [{ phase: 'Scheduled', phaseTransitionTimestamp: new Date().toISOString().slice(0, 19) + 'Z' }],
    },
  });
}

async function getVmi(name: string): Promise<VirtualMachineInstance> {
  return client.resource<VirtualMachineInstance>(vmiResource).get(name, namespace);
}

function condition(vmi: VirtualMachineInstance, type: string): { status?: string; reason?: string } | undefined {
  return vmi.status?.conditions?.find((c) => c.type === type);
}

describe('node handler VMI loop with the real API server', () => {
  let handler: RunningHandler | undefined;
  const podUid = randomUUID();
  const launcher = new StandInLauncher();

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    await applyKubevmCrds(client, 'kubevm-node-handler-test', (file) => file.startsWith('virtualmachineinstances.'));
    namespace = await createTestNamespace(client, 'kubevm-nh');
    launchers.set(launcherSocketPath(podsDir, podUid), launcher);
  });

  afterAll(async () => {
    await handler?.stop();
    if (namespace) await deleteNamespaceWithoutController(client, namespace);
    client?.close();
  });

  it('reports Running in one write and the guest agent in a second, then writes nothing on a no-op pass', async () => {
    await scheduledVmi('vm1', nodeName, podUid);
    // Another node's VMI: the field selector keeps it out of this handler entirely.
    const otherPod = randomUUID();
    const other = new StandInLauncher();
    launchers.set(launcherSocketPath(podsDir, otherPod), other);
    await scheduledVmi('elsewhere', `${nodeName}-other`, otherPod);

    const before = await statusWrites();
    handler = await startHandler();
    await eventually('the handler to attach to the launcher', 15_000, () => launcher.attached);
    // The launcher waits to be started (KubeVirt's SyncVMI); Starting has nothing to report yet.
    await eventually('the handler to start the domain', 15_000, () => launcher.calls.includes('start'));
    await afterResync(handler, 'vm1');
    expect(await statusWrites()).toBe(before);

    launcher.emit({ phase: 'Running', accelerator: 'tcg', interfaces: [{ name: 'default', mac: '52:54:00:12:34:56', ipAddress: '10.0.2.15', ipAddresses: ['10.0.2.15'], infoSource: 'domain' }] });
    await eventually('VMI Running', 15_000, async () => (await getVmi('vm1')).status?.phase === 'Running');
    let vmi = await getVmi('vm1');
    expect(condition(vmi, 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(vmi, 'kubevm.io/Emulation')).toMatchObject({ status: 'True', reason: 'TCG' });
    expect(vmi.status?.interfaces?.[0]).toMatchObject({ ipAddress: '10.0.2.15', mac: '52:54:00:12:34:56' });
    expect(await statusWrites()).toBe(before + 1);

    launcher.emit({ agentConnected: true, guestOSInfo: { name: 'Debian GNU/Linux', id: 'debian', kernelRelease: '6.1.0-cloud-amd64' } });
    await eventually('AgentConnected', 15_000, async () => condition(await getVmi('vm1'), 'AgentConnected')?.status === 'True');
    vmi = await getVmi('vm1');
    expect(vmi.status?.guestOSInfo).toMatchObject({ id: 'debian' });
    expect(await statusWrites()).toBe(before + 2);

    // The same state again, and a periodic resync: passes that compare and write nothing.
    const unchanged = await statusOutcomes('unchanged');
    launcher.emit({ agentConnected: true });
    await afterResync(handler, 'vm1');
    await afterResync(handler, 'vm1');
    expect(await statusWrites()).toBe(before + 2);
    expect(await statusOutcomes('unchanged')).toBeGreaterThanOrEqual(unchanged + 2);
    expect(await statusOutcomes('conflict')).toBe(0);
    expect(other.dials).toBe(0);
    expect((await getVmi('elsewhere')).status?.phase).toBe('Scheduled');
  });

  it('forwards pause and unpause, and reports them', async () => {
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    await vmis.patch('vm1', namespace, { metadata: { annotations: { [pauseRequestAnnotation]: 'true' } } });
    await eventually('Paused condition', 15_000, async () => condition(await getVmi('vm1'), 'Paused')?.status === 'True');
    expect(condition(await getVmi('vm1'), 'Paused')).toMatchObject({ reason: 'PausedByUser' });
    await vmis.patch('vm1', namespace, { metadata: { annotations: { [pauseRequestAnnotation]: null } } });
    await eventually('Paused condition removed', 15_000, async () => condition(await getVmi('vm1'), 'Paused') === undefined);
    expect(launcher.calls).toEqual(['start', 'pause', 'unpause']);
    expect(condition(await getVmi('vm1'), 'Ready')).toMatchObject({ status: 'True' });
  });

  it('drops a soft reboot the launcher refuses for good (no agent, ACPI off) after one try, instead of retrying it', async () => {
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    await vmis.patch('vm1', namespace, { spec: { domain: { features: { acpi: { enabled: false } } } } });
    launcher.refuseSoftReboot = true;
    try {
      await vmis.patch('vm1', namespace, { metadata: { annotations: { [softRebootRequestAnnotation]: new Date().toISOString() } } });
      await eventually('the refused request consumed', 15_000, async () => (await getVmi('vm1')).metadata?.annotations?.[softRebootRequestAnnotation] === undefined);
      await afterResync(handler as RunningHandler, 'vm1');
      expect(launcher.calls.filter((call) => call === 'softReboot')).toHaveLength(1);
    } finally {
      launcher.refuseSoftReboot = false;
    }
  });

  it('re-attaches after a restart without writing or disturbing the VM', async () => {
    await handler?.stop();
    handler = undefined;
    expect(launcher.attached).toBe(false);
    const writes = await statusWrites();
    const dials = launcher.dials;
    handler = await startHandler();
    await eventually('the new handler to attach', 15_000, () => launcher.attached && launcher.dials === dials + 1);
    await afterResync(handler, 'vm1');
    expect(await statusWrites()).toBe(writes);
    expect(launcher.calls).toEqual(['start', 'pause', 'unpause', 'softReboot']);
    expect((await getVmi('vm1')).status?.phase).toBe('Running');
  });

  it('shuts the guest down on deletion with the VMI’s grace period, then reports Succeeded', async () => {
    await client.resource<VirtualMachineInstance>(vmiResource).delete('vm1', namespace);
    await eventually('VMI Succeeded', 15_000, async () => (await getVmi('vm1')).status?.phase === 'Succeeded');
    expect(launcher.calls).toEqual(['start', 'pause', 'unpause', 'softReboot', 'shutdown:7']);
    expect(condition(await getVmi('vm1'), 'Ready')).toMatchObject({ status: 'False', reason: 'Shutoff' });
    // Final: the handler lets go of the launcher.
    await eventually('the handler to detach', 15_000, () => !launcher.attached);
  });

  it('takes a VMI still Scheduling on its node to Running in one write when the guest runs before the kubelet reports the pod', async () => {
    const running = handler as RunningHandler;
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    const earlyPod = randomUUID();
    const early = new StandInLauncher();
    launchers.set(launcherSocketPath(podsDir, earlyPod), early);
    const created = await vmis.create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'early', namespace, finalizers: ['kubevm.io/node-handler-test'] },
      spec: { terminationGracePeriodSeconds: 7, domain: { devices: {}, resources: { requests: { memory: '64Mi' } } } },
    });
    const writes = await statusWrites();
    // As the controller's first write leaves it once the pod is bound: Scheduling, on this node.
    await vmis.replaceStatus({
      ...created,
      status: {
        phase: 'Scheduling',
        nodeName,
        activePods: { [earlyPod]: nodeName },
        phaseTransitionTimestamps: [{ phase: 'Scheduling', phaseTransitionTimestamp: new Date().toISOString().slice(0, 19) + 'Z' }],
        conditions: [{ type: 'Ready', status: 'False', reason: 'GuestNotRunning', message: 'Guest VM is not reported as running', lastProbeTime: null, lastTransitionTime: new Date().toISOString().slice(0, 19) + 'Z' }],
      },
    });
    await eventually('the handler to attach to the launcher', 15_000, () => early.attached);
    // The launcher starts its guest itself (autostart): it is told nothing, and nothing is written
    // before the guest runs, periodic resyncs included.
    await afterResync(running, 'early');
    expect(await statusWrites()).toBe(writes);
    early.emit({ phase: 'Running', accelerator: 'tcg' });
    await eventually('VMI Running', 15_000, async () => (await getVmi('early')).status?.phase === 'Running');
    const vmi = await getVmi('early');
    expect(vmi.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Scheduling', 'Scheduled', 'Running']);
    expect(condition(vmi, 'Ready')).toMatchObject({ status: 'True' });
    expect(vmi.status).toMatchObject({ nodeName, activePods: { [earlyPod]: nodeName } });
    await afterResync(running, 'early');
    expect(await statusWrites()).toBe(writes + 1);
    expect(early.calls).toEqual([]);
  });

  it('a status write computed from an outdated VMI is refused by the API server, and counted as such', async () => {
    const vmis = client.resource<VirtualMachineInstance>(vmiResource);
    const conflicts = await statusOutcomes('conflict');
    const current = await getVmi('early');
    // What a controller holding the VMI as it was at Scheduling would write: Scheduled.
    const outdated = { ...current, status: { ...current.status, phase: 'Scheduling' as const } };
    const error = await patchStatusIfChanged(vmis, outdated, { ...outdated.status, phase: 'Scheduled' }, { owned: VMI_STATUS_FIELDS.controller, writer: 'test' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isRefusedWrite(error)).toBe(true);
    expect(await statusOutcomes('conflict')).toBe(conflicts + 1);
    expect((await getVmi('early')).status?.phase).toBe('Running');
  });
});
