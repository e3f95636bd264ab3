import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../runtime/kube.js';
import type { Attempt } from './errors.js';
import { describeApiError, describeFailure, UserError } from './errors.js';

const start: Attempt = { verb: 'update', resource: 'virtualmachines/start', group: 'subresources.kubevirt.io', namespace: 'team-a', kind: 'VirtualMachine', name: 'web' };
const apiError = (code: number, reason: string, status: object) => new ApiError(code, reason, '', 'PUT', '/apis/...', { kind: 'Status', code, reason, ...status });

describe('one line per failure', () => {
  it('names the missing permission when forbidden', () => {
    const err = apiError(403, 'Forbidden', {
      message: 'virtualmachines.subresources.kubevirt.io "web" is forbidden: User "kubevm-viewer" cannot update resource "virtualmachines/start" in API group "subresources.kubevirt.io" in the namespace "team-a"',
    });
    expect(describeApiError(err, start)).toBe(
      'forbidden: user "kubevm-viewer" may not update virtualmachines/start (API group "subresources.kubevirt.io") in namespace "team-a"; ask for a Role granting "update" on "virtualmachines/start"',
    );
  });

  it('says which object is not found, and tells a missing API group from a missing object', () => {
    expect(describeApiError(apiError(404, 'NotFound', { message: 'virtualmachine.kubevirt.io "web" not found', details: { name: 'web' } }), start)).toBe('VirtualMachine "web" not found in namespace "team-a"');
    expect(describeApiError(apiError(404, 'NotFound', { message: 'the server could not find the requested resource' }), start)).toMatch(/^the API group subresources.kubevirt.io is not served by this cluster: is kubevm installed\?/);
  });

  it('passes the api-server\'s conflict cause on without its prefix', () => {
    const err = apiError(409, 'Conflict', { message: 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "web": VM is already running' });
    expect(describeApiError(err, start)).toBe('VirtualMachine "web": VM is already running');
    const agent = apiError(409, 'Conflict', { message: 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "web": VMI does not have guest agent connected' });
    expect(describeApiError(agent, { ...start, kind: 'VirtualMachineInstance' })).toMatch(/^VirtualMachineInstance "web": VMI does not have guest agent connected: the guest runs no qemu-guest-agent/);
  });

  it('says the api-server is unreachable when the aggregated API answers 503', () => {
    expect(describeApiError(apiError(503, 'ServiceUnavailable', { message: 'service unavailable' }), start)).toMatch(/^the kubevm api-server is unreachable \(503 from the APIService v1.subresources.kubevirt.io: service unavailable\)/);
  });

  it('keeps every line on one line', () => {
    const err = apiError(400, 'BadRequest', { message: 'bad\nrequest', details: { causes: [{ field: 'spec.x', message: 'is wrong' }] } });
    const line = describeApiError(err, start);
    expect(line).not.toContain('\n');
    expect(line).toContain('spec.x: is wrong');
    expect(describeFailure(new UserError('as is'))).toBe('as is');
    expect(describeFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), { ...start, server: 'https://127.0.0.1:1' })).toBe(
      'cannot reach the Kubernetes API server at https://127.0.0.1:1: ECONNREFUSED',
    );
  });
});
