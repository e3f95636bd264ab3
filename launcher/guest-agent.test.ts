// The conversion of qemu-guest-agent's answers, which a guest controls: valid ones in KubeVirt's
// shapes, hostile ones refused with the field named, and nothing thrown but GuestAgentError.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { GuestFileSystems, GuestOSUsers } from '../runtime/api/kubevirt/v1/subresources.js';
import { GuestAgentError, filesystemsFromAgent, usersFromAgent } from './guest-agent.js';

describe('guest agent answers', () => {
  it('converts guest-get-users and guest-get-fsinfo to KubeVirt\'s shapes', () => {
    expect(usersFromAgent([{ user: 'kubevm', 'login-time': 1764617000.5 }, { user: 'Administrator', domain: 'CORP', 'login-time': 1 }])).toEqual([
      { userName: 'kubevm', loginTime: 1764617000.5 },
      { userName: 'Administrator', domain: 'CORP', loginTime: 1 },
    ]);
    // As qemu-ga 7.2 answers for the test guest's disk (extra fields ignored).
    const fsinfo = [
      {
        name: 'vda',
        'total-bytes': 52685824,
        mountpoint: '/mnt/disk',
        disk: [{ 'bus-type': 'virtio', bus: 0, unit: 0, 'pci-controller': { bus: 0, slot: 3, domain: 0, function: 0 }, dev: '/dev/vda', target: 0 }],
        'used-bytes': 1065984,
        type: 'ext4',
      },
      { name: 'sr0', mountpoint: '/media', type: 'iso9660', disk: [{ 'bus-type': 'sata', serial: 'QM00001' }] },
    ];
    expect(filesystemsFromAgent(fsinfo)).toEqual([
      { diskName: 'vda', mountPoint: '/mnt/disk', fileSystemType: 'ext4', usedBytes: 1065984, totalBytes: 52685824, disk: [{ busType: 'virtio' }] },
      { diskName: 'sr0', mountPoint: '/media', fileSystemType: 'iso9660', usedBytes: 0, totalBytes: 0, disk: [{ serial: 'QM00001', busType: 'sata' }] },
    ]);
  });

  it.each([
    ['not a list', { user: 'x' }],
    ['a user without a name', [{ 'login-time': 1 }]],
    ['a name too long', [{ user: 'x'.repeat(257), 'login-time': 1 }]],
    ['too many users', Array.from({ length: 257 }, (_, i) => ({ user: `u${i}`, 'login-time': 1 }))],
    ['a negative login time', [{ user: 'x', 'login-time': -1 }]],
    ['a login time that is not a number', [{ user: 'x', 'login-time': '1' }]],
  ])('refuses guest-get-users with %s', (_what, answer) => {
    expect(() => usersFromAgent(answer)).toThrow(GuestAgentError);
    expect(() => usersFromAgent(answer)).toThrow(/guest-get-users is not valid: return/);
  });

  it.each([
    ['null', null],
    ['a mount point over PATH_MAX', [{ name: 'vda', mountpoint: '/'.repeat(4097), type: 'ext4' }]],
    ['a fractional byte count', [{ name: 'vda', mountpoint: '/', type: 'ext4', 'used-bytes': 1.5 }]],
    ['an unsafe byte count', [{ name: 'vda', mountpoint: '/', type: 'ext4', 'total-bytes': 2 ** 60 }]],
    ['too many filesystems', Array.from({ length: 129 }, () => ({ name: 'vda', mountpoint: '/', type: 'ext4' }))],
    ['a disk without a bus', [{ name: 'vda', mountpoint: '/', type: 'ext4', disk: [{ serial: 'x' }] }]],
  ])('refuses guest-get-fsinfo with %s', (_what, answer) => {
    expect(() => filesystemsFromAgent(answer)).toThrow(/guest-get-fsinfo is not valid/);
  });

  it('any answer at all is converted to a valid list or refused with GuestAgentError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (answer) => {
        for (const [convert, schema] of [
          [usersFromAgent, GuestOSUsers],
          [filesystemsFromAgent, GuestFileSystems],
        ] as const) {
          try {
            expect(schema.safeParse(convert(answer)).success).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(GuestAgentError);
          }
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.record({ user: fc.string(), 'login-time': fc.double(), domain: fc.option(fc.string(), { nil: undefined }) }), { maxLength: 5 }), (answer) => {
        try {
          expect(GuestOSUsers.safeParse(usersFromAgent(answer)).success).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(GuestAgentError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
