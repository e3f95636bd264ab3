// The launcher's input end to end on one node: the node handler's LauncherInputs hands a REAL
// launcher process (launcher/main.ts as uid 107, in a kubelet-like pods directory) its VMI, as in a
// pod (KUBEVM_VMI_UID, no VMI file), on the appearance of its input socket (the directory watch:
// the retries are a minute apart here). The launcher then serves its command socket for that VMI
// and runs it; the input socket is gone.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { VirtualMachineInstance } from '../../runtime/api/kubevirt/v1/virtualmachineinstance.js';
import { LAUNCHER_UID } from '../../runtime/contracts/launcher-pod.js';
import { LauncherInputs } from '../../node-handler/launcher-input.js';
import { makePodsDir, startLauncher, testVmi } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';

jest.setTimeout(120_000);

const podUid = 'pod-1a2b3c4d';

describe('the node handler hands a real launcher its VMI', () => {
  let run: LauncherRun | undefined;
  let pods: PodsDir | undefined;
  let inputs: LauncherInputs | undefined;

  afterEach(async () => {
    inputs?.stop();
    await run?.stop();
    pods?.remove();
    run = undefined;
    pods = undefined;
    inputs = undefined;
  });

  it('as its input socket appears; the launcher then runs that VMI', async () => {
    pods = makePodsDir();
    const runDir = pods.privateDir(podUid);
    const vmi = testVmi('handed', 'kubevm.counter=0');
    const uid = vmi.metadata.uid ?? '';
    const pod: V1Pod = {
      metadata: { name: 'virt-launcher-handed-abcde', namespace: vmi.metadata.namespace, uid: podUid, ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: vmi.metadata.name, uid, controller: true }] },
      spec: { nodeName: 'node1', containers: [{ name: 'compute', env: [{ name: 'KUBEVM_VMI_UID', value: uid }] }] },
      status: { phase: 'Pending' },
    };
    const lookups: string[] = [];
    inputs = new LauncherInputs({
      nodeName: 'node1',
      podsDir: pods.path,
      ownerUid: process.getuid?.() === 0 ? LAUNCHER_UID : (process.getuid?.() ?? 0),
      // The API server's answer (the e2e suites read it from the real one).
      getVmi: async (namespace, name) => (lookups.push(`${namespace}/${name}`), { ...vmi, status: { phase: 'Scheduling' } } as VirtualMachineInstance),
      retryDelayMs: { first: 60_000, longest: 60_000 },
    });
    // The pod is seen before its launcher runs, as the informer sees a pod when it is bound.
    inputs.observe(pod);
    expect(inputs.pending()).toEqual([podUid]);

    // startLauncher returns once the launcher serves its command socket: after it took its VMI.
    run = await startLauncher(vmi, { runDir, vmiFrom: 'input-socket' });
    expect(inputs.pending()).toEqual([]);
    expect(lookups).toEqual([`${vmi.metadata.namespace}/${vmi.metadata.name}`]);
    expect(existsSync(path.join(runDir, 'input.sock'))).toBe(false);
    const status = await run.client.subscribe();
    expect(status.vmi).toEqual({ namespace: vmi.metadata.namespace, name: vmi.metadata.name, uid });
    await run.client.call('start');
    await run.waitForSerial(/KUBEVM-READY/, 60_000);
  });
});
