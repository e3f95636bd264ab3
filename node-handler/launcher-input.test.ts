// The node handler's delivery of each launcher's VMI (node-handler/launcher-input.ts), against real
// unix sockets in a kubelet-like pods directory: what it delivers to whom, when (on the socket's
// appearance), and what it refuses. The launchers here are plain servers that play the launcher's
// part, or a hostile pod's; test/launcher/launcher-input.test.ts delivers to the real launcher.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { VirtualMachineInstance } from '../runtime/api/kubevirt/v1/virtualmachineinstance.js';
import { nodeLauncherRunDir } from '../runtime/contracts/launcher-pod.js';
import { NdjsonReader, ndjsonLine } from '../runtime/ndjson.js';
import { eventually } from '../test/support/eventually.js';
import { LauncherInputs, launcherInputTarget } from './launcher-input.js';

const NODE = 'node1';
const VMI_UID = '3f6c8a4e-1111-2222-3333-444455556666';
const myUid = process.getuid?.() ?? 0;

function launcherPod(podUid: string, overrides: { env?: string; owner?: string; node?: string; phase?: string; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name: `virt-launcher-vm1-${podUid}`,
      namespace: 'ns1',
      uid: podUid,
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1', uid: overrides.owner ?? VMI_UID, controller: true }],
      ...(overrides.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { nodeName: overrides.node ?? NODE, containers: [{ name: 'compute', env: [{ name: 'KUBEVM_VMI_UID', value: overrides.env ?? VMI_UID }] }] },
    status: { phase: overrides.phase ?? 'Pending' },
  };
}

const theVmi: VirtualMachineInstance = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm1', namespace: 'ns1', uid: VMI_UID, labels: { a: 'b' } },
  spec: { domain: { devices: {} } },
  status: { phase: 'Pending' },
};

/** A launcher's input socket: records each line it gets and answers `answer(line)` (or nothing). */
function fakeLauncher(socketPath: string, answer: (line: string) => string | undefined = () => '{"ok":true}'): { lines: string[]; close: () => void } {
  const lines: string[] = [];
  const server = net.createServer((socket) => {
    const reader = new NdjsonReader({
      maxLineBytes: 8 * 1024 * 1024,
      onLine: (line) => {
        lines.push(line);
        const reply = answer(line);
        if (reply !== undefined) socket.end(`${reply}\n`);
      },
      onOverflow: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => undefined);
  });
  server.listen(socketPath);
  return { lines, close: () => server.close() };
}

let pods: string;
let inputs: LauncherInputs | undefined;
let servers: Array<{ close: () => void }> = [];
const lookups: string[] = [];

beforeEach(() => {
  pods = mkdtempSync(path.join(tmpdir(), 'kubevm-pods-'));
  lookups.length = 0;
});
afterEach(() => {
  inputs?.stop();
  inputs = undefined;
  for (const server of servers) server.close();
  servers = [];
  rmSync(pods, { recursive: true, force: true });
});

function start(getVmi: (ns: string, name: string) => Promise<VirtualMachineInstance | undefined> = async () => theVmi): LauncherInputs {
  inputs = new LauncherInputs({
    nodeName: NODE,
    podsDir: pods,
    ownerUid: myUid,
    getVmi: (ns, name) => {
      lookups.push(`${ns}/${name}`);
      return getVmi(ns, name);
    },
    retryDelayMs: { first: 20, longest: 100 },
    answerTimeoutMs: 500,
  });
  return inputs;
}

const runDir = (podUid: string) => {
  const dir = nodeLauncherRunDir(pods, podUid);
  mkdirSync(dir, { recursive: true });
  return dir;
};

describe('which pods get a VMI', () => {
  test('a pod controlled by a VMI whose compute container names that VMI', () => {
    expect(launcherInputTarget(launcherPod('p1'))).toEqual({ podUid: 'p1', namespace: 'ns1', vmiName: 'vm1', vmiUid: VMI_UID });
  });

  test.each([
    ['names another VMI than its controller', launcherPod('p1', { env: 'other-uid' }), /names VMI other-uid, the pod's controller is/],
    ['names no VMI (a pod of an earlier kubevm)', { ...launcherPod('p1'), spec: { containers: [{ name: 'compute' }] } }, /names no VMI/],
    ['is controlled by something else', { ...launcherPod('p1'), metadata: { ...launcherPod('p1').metadata, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'x', uid: VMI_UID, controller: true }] } }, /not controlled by a VirtualMachineInstance/],
    ['has its VMI as an owner that is not its controller', { ...launcherPod('p1'), metadata: { ...launcherPod('p1').metadata, ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1', uid: VMI_UID }] } }, /not controlled/],
  ])('none to a pod that %s', (_what, pod, why) => {
    expect(launcherInputTarget(pod)).toEqual({ skip: expect.stringMatching(why) });
  });
});

describe('the delivery', () => {
  test('waits for the socket, sends the VMI (identity and spec, no status), and is done', async () => {
    const handler = start();
    handler.observe(launcherPod('p1'));
    // The pod's directory comes after the pod (the kubelet makes it), the socket after that.
    await eventually('a lookup of the socket', 2000, () => handler.pending().includes('p1'));
    const launcher = fakeLauncher(path.join(runDir('p1'), 'input.sock'));
    servers.push(launcher);
    await eventually('the handler to be done with the pod', 5000, () => handler.pending().length === 0);
    expect(launcher.lines).toHaveLength(1);
    expect(JSON.parse(launcher.lines[0] ?? '')).toEqual({ vmi: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'vm1', namespace: 'ns1', uid: VMI_UID }, spec: theVmi.spec } });
    expect(lookups).toEqual(['ns1/vm1']);
    // Later changes of the pod deliver nothing more.
    handler.observe(launcherPod('p1', { phase: 'Running' }));
    expect(launcher.lines).toHaveLength(1);
  });

  test('none to a launcher that has its VMI already (a handler restart): no lookup, nothing sent', async () => {
    writeFileSync(path.join(runDir('p2'), 'launcher.sock'), '');
    const handler = start();
    handler.observe(launcherPod('p2', { phase: 'Running' }));
    await eventually('the handler to be done with the pod', 2000, () => handler.pending().length === 0);
    expect(lookups).toEqual([]);
  });

  test('none to a pod on another node, a finished one, or one being deleted', () => {
    const handler = start();
    handler.observe(launcherPod('p3', { node: 'node2' }));
    handler.observe(launcherPod('p4', { phase: 'Succeeded' }));
    handler.observe(launcherPod('p5', { deleting: true }));
    expect(handler.pending()).toEqual([]);
  });

  test('none when the VMI is gone or is another VMI of the same name', async () => {
    for (const [podUid, found] of [['p6', undefined], ['p7', { ...theVmi, metadata: { ...theVmi.metadata, uid: 'a-new-vmi' } }]] as const) {
      const launcher = fakeLauncher(path.join(runDir(podUid), 'input.sock'));
      servers.push(launcher);
      const handler = start(async () => found);
      handler.observe(launcherPod(podUid));
      await eventually('the handler to give up on the pod', 2000, () => handler.pending().length === 0);
      expect(launcher.lines).toEqual([]);
      handler.stop();
    }
  });

  test('a refusal is tried again; an answer that is not one, or none, too', async () => {
    let calls = 0;
    const answers = ['{"ok":false,"error":"not yet"}', 'not json', undefined, '{"ok":"yes"}', '{"ok":true}'];
    const launcher = fakeLauncher(path.join(runDir('p8'), 'input.sock'), () => answers[calls++]);
    servers.push(launcher);
    const handler = start();
    handler.observe(launcherPod('p8'));
    await eventually('the delivery to be taken', 10_000, () => handler.pending().length === 0);
    expect(launcher.lines).toHaveLength(5);
  });
});

describe('a hostile pod gets nothing', () => {
  test('an input socket that is a symbolic link (to another pod\'s launcher)', async () => {
    const victim = fakeLauncher(path.join(runDir('victim'), 'input.sock'));
    servers.push(victim);
    symlinkSync(path.join(runDir('victim'), 'input.sock'), path.join(runDir('p9'), 'input.sock'));
    const handler = start();
    handler.observe(launcherPod('p9'));
    await eventually('the handler to give up on the pod', 2000, () => handler.pending().length === 0);
    expect(victim.lines).toEqual([]);
  });

  test('a private directory that is a symbolic link', async () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'kubevm-elsewhere-'));
    try {
      const launcher = fakeLauncher(path.join(elsewhere, 'input.sock'));
      servers.push(launcher);
      const dir = nodeLauncherRunDir(pods, 'p10');
      mkdirSync(path.dirname(dir), { recursive: true });
      symlinkSync(elsewhere, dir);
      const handler = start();
      handler.observe(launcherPod('p10'));
      await eventually('the handler to give up on the pod', 2000, () => handler.pending().length === 0);
      expect(launcher.lines).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test('a socket owned by another uid than the launcher\'s', async () => {
    const launcher = fakeLauncher(path.join(runDir('p11'), 'input.sock'));
    servers.push(launcher);
    inputs = new LauncherInputs({ nodeName: NODE, podsDir: pods, ownerUid: myUid + 1, getVmi: async () => theVmi, retryDelayMs: { first: 20, longest: 100 } });
    inputs.observe(launcherPod('p11'));
    await eventually('the handler to give up on the pod', 2000, () => inputs?.pending().length === 0);
    expect(launcher.lines).toEqual([]);
  });

  test('an endless answer is cut at its cap', async () => {
    let calls = 0;
    const launcher = fakeLauncher(path.join(runDir('p12'), 'input.sock'), () => (calls++ === 0 ? 'x'.repeat(200 * 1024) : '{"ok":true}'));
    servers.push(launcher);
    const handler = start();
    handler.observe(launcherPod('p12'));
    await eventually('the delivery to be taken on the second try', 5000, () => handler.pending().length === 0);
    expect(launcher.lines).toHaveLength(2);
  });
});

// The messages the handler sends are one line each, as the launcher reads them.
test('a delivery is one line', () => {
  expect(ndjsonLine({ vmi: {} }).split('\n')).toEqual(['{"vmi":{}}', '']);
});
