import { describe, expect, it } from '@jest/globals';
import { describeRequest } from './kube.js';
import { canonicalJson, jsonEqual, normaliseJson } from './json.js';
import { statusEqual } from './status.js';

describe('status comparison', () => {
  it('ignores key order, undefined and null members', () => {
    expect(statusEqual({ phase: 'Running', nodeName: 'n1' }, { nodeName: 'n1', phase: 'Running', reason: undefined, message: null })).toBe(true);
    expect(statusEqual(undefined, {})).toBe(true);
  });

  it('sees real differences, including array order and nested values', () => {
    expect(statusEqual({ phase: 'Running' }, { phase: 'Scheduled' })).toBe(false);
    expect(statusEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(statusEqual({ c: [{ type: 'Ready', status: 'True' }] }, { c: [{ type: 'Ready', status: 'False' }] })).toBe(false);
    expect(statusEqual({ a: 1 }, { a: 1, b: 0 })).toBe(false);
    expect(jsonEqual({ a: {} }, { a: [] })).toBe(false);
  });

  it('gives one canonical text whatever the key order, null or undefined members', () => {
    expect(canonicalJson({ b: { y: 1, x: [{ q: null, p: 2 }] }, a: undefined, c: null })).toBe('{"b":{"x":[{"p":2}],"y":1}}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
  });

  it('normalises nested structures', () => {
    expect(normaliseJson({ a: { b: undefined, c: [{ d: null, e: 1 }] } })).toEqual({ a: { c: [{ e: 1 }] } });
  });
});

describe('REST request labels', () => {
  const server = 'https://10.0.0.1:6443';
  const cases: Array<[string, string, string, string, string]> = [
    ['GET', '/api/v1/namespaces/ns1/pods/virt-launcher-x', 'pods', 'GET', '/api/v1/namespaces/{namespace}/pods/{name}'],
    ['GET', '/api/v1/namespaces/ns1/pods?labelSelector=a%3Db', 'pods', 'LIST', '/api/v1/namespaces/{namespace}/pods'],
    ['GET', '/apis/kubevirt.io/v1/virtualmachineinstances?watch=true', 'virtualmachineinstances', 'WATCH', '/apis/kubevirt.io/v1/virtualmachineinstances'],
    ['PUT', '/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/vm1/status', 'virtualmachines', 'UPDATE', '/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines/{name}/status'],
    ['POST', '/apis/coordination.k8s.io/v1/namespaces/kubevm/leases', 'leases', 'CREATE', '/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases'],
    ['PATCH', '/api/v1/nodes/node01', 'nodes', 'PATCH', '/api/v1/nodes/{name}'],
    ['GET', '/api/v1/namespaces/ns1', 'namespaces', 'GET', '/api/v1/namespaces/{name}'],
    ['GET', '/version', 'none', 'none', '/version'],
  ];
  it.each(cases)('%s %s → resource %s, verb %s', (method, path, resource, verb, template) => {
    const described = describeRequest(method, new URL(server + path));
    expect(described).toEqual({ resource, verb, template: server + template });
  });
});
