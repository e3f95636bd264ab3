// The node handler's stream paths are untrusted input: only exact paths with valid names parse.
import { describe, expect, it } from '@jest/globals';
import { nodeStreamPath, parseNodeStreamPath } from './streams.js';
import type { NodeStreamRequest } from './streams.js';

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
