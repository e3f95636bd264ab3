// The node handler's stream paths are untrusted input: only exact paths with valid names parse.
import { describe, expect, it } from '@jest/globals';
import { nodeGuestAgentMethods, nodeGuestAgentPath, nodeStreamPath, parseNodeGuestAgentRequest, parseNodeStreamPath } from './streams.js';
import type { NodeGuestAgentRequest, NodeStreamRequest } from './streams.js';

describe('node stream paths', () => {
  const requests: NodeStreamRequest[] = [
    { kind: 'console', namespace: 'ns', name: 'vm-1' },
    { kind: 'vnc', namespace: 'ns', name: 'vm.example', preserveSession: false },
    { kind: 'vnc', namespace: 'ns', name: 'vm', preserveSession: true },
    { kind: 'portforward', namespace: 'ns', name: 'vm', port: 65535 },
    { kind: 'screenshot', namespace: 'n0', name: 'v' },
  ];
  it.each(requests)('round-trips %j', (request) => {
    expect(parseNodeStreamPath(nodeStreamPath(request))).toEqual({ ok: true, request });
  });

  it.each([
    '/v1/namespaces/ns/virtualmachineinstances/vm/exec',
    '/v1/namespaces/ns/virtualmachineinstances/vm/console/',
    '/v1/namespaces/ns/virtualmachineinstances/vm/portforward/0',
    '/v1/namespaces/ns/virtualmachineinstances/vm/portforward/65536',
    '/v1/namespaces/ns/virtualmachineinstances/vm/portforward/22/udp',
    '/v1/namespaces/ns/virtualmachineinstances/../console',
    '/v1/namespaces/ns/virtualmachineinstances/..%2f..%2fetc/console',
    '/v1/namespaces/NS/virtualmachineinstances/vm/console',
    '/v1/namespaces/ns/virtualmachineinstances/-vm/console',
    `/v1/namespaces/ns/virtualmachineinstances/${'a'.repeat(254)}/console`,
    `/v1/namespaces/${'a'.repeat(64)}/virtualmachineinstances/vm/console`,
    `/v1/namespaces/ns/virtualmachineinstances/vm/console?${'x'.repeat(2000)}`,
    '//v1/namespaces/ns/virtualmachineinstances/vm/console',
    '',
  ])('refuses %s', (path) => {
    expect(parseNodeStreamPath(path).ok).toBe(false);
  });

  it('reads preserveSession only as true or absent', () => {
    expect(parseNodeStreamPath('/v1/namespaces/ns/virtualmachineinstances/vm/vnc?preserveSession=yes')).toMatchObject({ request: { preserveSession: false } });
  });
});

describe('node guest agent requests', () => {
  it.each<NodeGuestAgentRequest>([
    { kind: 'freeze', namespace: 'ns', name: 'vm.a', unfreezeTimeoutSeconds: 300 },
    { kind: 'freeze', namespace: 'ns', name: 'vm', unfreezeTimeoutSeconds: 0 },
    { kind: 'unfreeze', namespace: 'ns', name: 'vm' },
    { kind: 'userlist', namespace: 'ns', name: 'vm' },
    { kind: 'filesystemlist', namespace: 'ns', name: 'vm' },
  ])('round-trips %j', (request) => {
    expect(parseNodeGuestAgentRequest(nodeGuestAgentMethods[request.kind], nodeGuestAgentPath(request))).toEqual({ ok: true, request });
  });

  it('leaves stream paths to the stream parser', () => {
    expect(parseNodeGuestAgentRequest('GET', '/v1/namespaces/ns/virtualmachineinstances/vm/console')).toBeUndefined();
  });

  it.each([
    ['GET', '/v1/namespaces/ns/virtualmachineinstances/vm/freeze?unfreezeTimeoutSeconds=1', 405],
    ['PUT', '/v1/namespaces/ns/virtualmachineinstances/vm/userlist', 405],
    ['PUT', '/v1/namespaces/ns/virtualmachineinstances/vm/freeze', 400],
    ['PUT', '/v1/namespaces/ns/virtualmachineinstances/vm/freeze?unfreezeTimeoutSeconds=-1', 400],
    ['PUT', '/v1/namespaces/ns/virtualmachineinstances/vm/freeze?unfreezeTimeoutSeconds=1e3', 400],
    ['PUT', '/v1/namespaces/ns/virtualmachineinstances/vm/freeze?unfreezeTimeoutSeconds=86401', 400],
    ['GET', '/v1/namespaces/NS/virtualmachineinstances/vm/userlist', 400],
    ['GET', '/v1/namespaces/ns/virtualmachineinstances/..%2Fx/userlist', 400],
  ])('refuses %s %s with %d', (method, url, code) => {
    expect(parseNodeGuestAgentRequest(method, url)).toMatchObject({ ok: false, code });
  });
});
