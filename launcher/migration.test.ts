import { describe, expect, it } from '@jest/globals';
import { mirroredDiskNodes } from './disk-mirror.js';
import { migrationCapabilities, migrationParameters, migrationProgress } from './migration.js';
import type { PreparedDisk } from './qemu-args.js';
import type { LauncherVmi } from './vmi.js';

describe('outgoing migration settings', () => {
  it('turns a policy into QEMU parameters: MiB/s to bytes/s, unlimited as a huge limit', () => {
    expect(migrationParameters({ bandwidthMiBps: 64, maxDowntimeMs: 300 })).toEqual({ 'max-bandwidth': 64 * 1024 * 1024, 'downtime-limit': 300 });
    expect(migrationParameters({})['max-bandwidth']).toBeGreaterThanOrEqual(2 ** 40);
    expect(migrationParameters({ bandwidthMiBps: 0 })['max-bandwidth']).toBeGreaterThanOrEqual(2 ** 40);
  });

  it('sets every capability it manages, on or off, so a previous migration leaves nothing behind', () => {
    expect(migrationCapabilities({ autoConverge: true })).toEqual([
      { capability: 'events', state: true },
      { capability: 'auto-converge', state: true },
      { capability: 'postcopy-ram', state: false },
      { capability: 'pause-before-switchover', state: false },
      { capability: 'late-block-activate', state: false },
    ]);
    expect(migrationCapabilities({ mirroredDisks: true })).toContainEqual({ capability: 'pause-before-switchover', state: true });
    expect(migrationCapabilities({ lateBlockActivate: true })).toContainEqual({ capability: 'late-block-activate', state: true });
  });

  it('reads query-migrate into progress: dirty rate in bytes, downtime expected then real', () => {
    const active = migrationProgress({ status: 'active', 'expected-downtime': 12, ram: { transferred: 10, remaining: 20, total: 30, 'dirty-pages-rate': 5, 'page-size': 4096, 'dirty-sync-count': 2, mbps: 8 } });
    expect(active).toEqual({ status: 'active', transferredBytes: 10, remainingBytes: 20, totalBytes: 30, dirtyRateBytesPerSecond: 5 * 4096, transferRateBytesPerSecond: 1_000_000, iterations: 2, cpuThrottlePercent: 0, downtimeMs: 12 });
    expect(migrationProgress({ status: 'completed', downtime: 40, 'expected-downtime': 12, 'total-time': 900 })).toMatchObject({ downtimeMs: 40, totalTimeMs: 900 });
    expect(migrationProgress({ status: 'failed', 'error-desc': 'Unable to write to socket' })).toMatchObject({ status: 'failed', errorDescription: 'Unable to write to socket', transferredBytes: 0 });
    expect(migrationProgress({}).status).toBe('none');
  });
});

describe('the disks a migration copies', () => {
  it('copies the pod-local writable disks, by the node name their device uses, and nothing on shared storage or read-only', () => {
    const local = (extra: Partial<PreparedDisk> = {}): PreparedDisk => ({ path: '/x', format: 'qcow2', blockDevice: false, readOnly: false, directIO: false, podLocal: true, ...extra });
    const vmi = {
      spec: {
        domain: { devices: { disks: [{ name: 'root', disk: {} }, { name: 'cidata', disk: {} }, { name: 'shared', disk: {} }, { name: 'scratch', disk: {} }, { name: 'ro', disk: { readonly: true } }, { name: 'cd', cdrom: {} }] } },
        volumes: [],
      },
    } as unknown as LauncherVmi;
    const disks = new Map<string, PreparedDisk>([
      ['root', local()],
      ['cidata', local({ format: 'raw', readOnly: true })],
      ['shared', { path: '/pvc/disk.img', format: 'raw', blockDevice: false, readOnly: false, directIO: true }],
      ['scratch', local()],
      ['ro', local()],
      ['cd', local({ format: 'raw' })],
    ]);
    expect(mirroredDiskNodes(vmi, disks)).toEqual(['disk0-format', 'disk3-format']);
  });
});
