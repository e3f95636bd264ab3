import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { NodeGuestAgentRequest } from '../runtime/contracts/streams.js';
import { nodeGuestAgent } from './node-streams.js';
import type { SubresourceRoute } from './server.js';
import { StatusError } from './status.js';
import type { VirtualMachineInstance } from './types.js';
import type { GuestAgentCall } from './vmi-subresources.js';
import { unfreezeTimeoutSeconds, vmiSubresourceRoutes } from './vmi-subresources.js';

function vmi(phase: string, agent: boolean): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'uid-1' },
    spec: { domain: { devices: {} } },
    status: { phase, nodeName: 'node1', conditions: agent ? [{ type: 'AgentConnected', status: 'True' }] : [] },
  } as VirtualMachineInstance;
}

/** The routes over one VMI, with the node handler's answers given by `answer`; records what was asked. */
function routes(current: VirtualMachineInstance, answer: (request: NodeGuestAgentRequest) => unknown) {
  const asked: Array<{ node: string; request: NodeGuestAgentRequest }> = [];
  const vmis = { find: async () => current, get: async () => current, patch: async () => current } as never;
  // The real validation of the node handler's answer (nodeGuestAgent), over a body source.
  const call: GuestAgentCall = (node, request) => {
    asked.push({ node, request });
    return nodeGuestAgent({ guestAgentBody: async () => Buffer.from(JSON.stringify(answer(request))) }, node, request);
  };
  const all = vmiSubresourceRoutes({ vmis }, call);
  const run = async (subresource: string, body = ''): Promise<{ code: number; body?: unknown }> => {
    const route = all.find((r: SubresourceRoute) => r.subresource === subresource) as SubresourceRoute;
    try {
      return await route.handle({ version: 'v1', namespace: 'ns', name: 'vm1', params: {}, body, user: { username: 'u', groups: [], extra: {} }, log: pino({ level: 'silent' }) });
    } catch (err) {
      if (err instanceof StatusError) return { code: err.code, body: err.message };
      throw err;
    }
  };
  return { run, asked };
}

describe('freeze body', () => {
  it('takes the whole seconds of unfreezeTimeout, as KubeVirt does', () => {
    expect(unfreezeTimeoutSeconds('{"unfreezeTimeout":"5m0s"}')).toBe(300);
    expect(unfreezeTimeoutSeconds('unfreezeTimeout: 1m30.9s')).toBe(90);
    expect(unfreezeTimeoutSeconds('{"unfreezeTimeout":"0s"}')).toBe(0);
    expect(unfreezeTimeoutSeconds('{"unfreezeTimeout":"500ms","kind":"ignored"}')).toBe(0);
  });

  it.each([
    ['', /Unfreeze timeout in freeze request is not set/],
    ['{}', /Unfreeze timeout in freeze request is not set/],
    ['{"unfreezeTimeout":null}', /Unfreeze timeout in freeze request is not set/],
    ['{"unfreezeTimeout":"5 minutes"}', /unfreezeTimeout/],
    ['{"unfreezeTimeout":"-5s"}', /unfreezeTimeout/],
    ['{"unfreezeTimeout":300}', /unfreezeTimeout/],
    ['{"unfreezeTimeout":"25h"}', /longer than the 86400s/],
    ['{not json', /Can not unmarshal/],
  ])('refuses %j with a 400', (body, message) => {
    let error: unknown;
    try {
      unfreezeTimeoutSeconds(body);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(400);
    expect((error as StatusError).message).toMatch(message);
  });
});

describe('guest agent subresources', () => {
  it('freeze and unfreeze reach the node handler of the VMI\'s node and answer 200', async () => {
    const { run, asked } = routes(vmi('Running', true), (r) => ({ fsFreezeStatus: r.kind === 'freeze' ? 'frozen' : 'thawed' }));
    expect(await run('freeze', '{"unfreezeTimeout":"2m0s"}')).toEqual({ code: 200 });
    expect(await run('unfreeze')).toEqual({ code: 200 });
    expect(asked).toEqual([
      { node: 'node1', request: { kind: 'freeze', namespace: 'ns', name: 'vm1', unfreezeTimeoutSeconds: 120 } },
      { node: 'node1', request: { kind: 'unfreeze', namespace: 'ns', name: 'vm1' } },
    ]);
  });

  it('answers userlist and filesystemlist with KubeVirt\'s list kinds', async () => {
    const users = [{ userName: 'kubevm', loginTime: 1764617000.25 }, { userName: 'admin', domain: 'CORP' }];
    const filesystems = [{ diskName: 'vda1', mountPoint: '/', fileSystemType: 'ext4', usedBytes: 10, totalBytes: 100, disk: [{ busType: 'virtio', serial: 'd0' }] }];
    const { run } = routes(vmi('Running', true), (r) => ({ items: r.kind === 'userlist' ? users : filesystems }));
    expect(await run('userlist')).toEqual({ code: 200, body: { kind: 'VirtualMachineInstanceGuestOSUserList', apiVersion: 'kubevirt.io/v1', metadata: {}, items: users } });
    expect(await run('filesystemlist')).toEqual({ code: 200, body: { kind: 'VirtualMachineInstanceFileSystemList', apiVersion: 'kubevirt.io/v1', metadata: {}, items: filesystems } });
  });

  it('refuses with KubeVirt\'s 409 messages without a running VMI or a connected agent, asking no node', async () => {
    const stopped = routes(vmi('Scheduled', false), () => ({}));
    expect(await stopped.run('freeze', '{"unfreezeTimeout":"1m"}')).toMatchObject({ code: 409, body: expect.stringMatching(/VM is not running$/) });
    expect(await stopped.run('unfreeze')).toMatchObject({ code: 409, body: expect.stringMatching(/VMI is not running$/) });
    const noAgent = routes(vmi('Running', false), () => ({}));
    for (const sub of ['freeze', 'unfreeze', 'userlist', 'filesystemlist']) {
      expect(await noAgent.run(sub, '{"unfreezeTimeout":"1m"}')).toMatchObject({ code: 409, body: expect.stringMatching(/VMI does not have guest agent connected$/) });
    }
    expect([...stopped.asked, ...noAgent.asked]).toEqual([]);
  });

  it('a freeze without unfreezeTimeout is a 400 before any node is asked', async () => {
    const { run, asked } = routes(vmi('Running', true), () => ({ fsFreezeStatus: 'frozen' }));
    expect(await run('freeze', '{}')).toMatchObject({ code: 400, body: 'Unfreeze timeout in freeze request is not set' });
    expect(asked).toEqual([]);
  });

  // What a guest writes reaches the api-server through the node handler: an answer outside the
  // contract is a 502 naming the field, never passed on to the user.
  it.each([
    ['userlist', { items: 'x' }],
    ['userlist', { items: [{ userName: 'a'.repeat(257) }] }],
    ['userlist', { items: Array.from({ length: 257 }, (_, i) => ({ userName: `u${i}` })) }],
    ['userlist', { items: [{ userName: 'a', loginTime: -1 }] }],
    ['userlist', { items: [{ userName: 'a', loginTime: 'yesterday' }] }],
    ['filesystemlist', { items: [{ diskName: 'vda', mountPoint: '/', fileSystemType: 'ext4', usedBytes: -5, totalBytes: 1 }] }],
    ['filesystemlist', { items: [{ diskName: 'vda', mountPoint: '/'.repeat(4097), fileSystemType: 'ext4', usedBytes: 0, totalBytes: 1 }] }],
    ['filesystemlist', { items: [{ diskName: 'vda', mountPoint: '/', fileSystemType: 'ext4', usedBytes: 0, totalBytes: 1, disk: Array.from({ length: 17 }, () => ({ busType: 'virtio' })) }] }],
    ['filesystemlist', { items: [{ diskName: 'vda', mountPoint: '/', fileSystemType: 'ext4', usedBytes: 1e300, totalBytes: 1 }] }],
    ['filesystemlist', null],
    ['freeze', { fsFreezeStatus: 'melted' }],
  ])('a hostile %s answer %# is a 502', async (kind, hostile) => {
    const { run } = routes(vmi('Running', true), () => hostile);
    const reply = await run(kind, '{"unfreezeTimeout":"1m"}');
    expect(reply.code).toBe(502);
    expect(reply.body).toMatch(new RegExp(`answered ${kind} with an invalid answer`));
  });

  it('a body that is not JSON is a 502', async () => {
    const call: GuestAgentCall = (node, request) => nodeGuestAgent({ guestAgentBody: async () => Buffer.from('<html>') }, node, request);
    await expect(call('node1', { kind: 'userlist', namespace: 'ns', name: 'vm1' })).rejects.toMatchObject({ code: 502 });
  });
});
