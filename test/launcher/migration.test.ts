// Live migration between two launchers of the same VMI (QMP migrate / migrate-incoming over a
// unix socket): the guest's counter continues on the target, the source ends paused.
import { jest } from '@jest/globals';
import path from 'node:path';
import { lastCount, startLauncher, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(120_000);

describe('launcher migration (real QEMU, TCG)', () => {
  const runs: LauncherRun[] = [];
  afterEach(async () => {
    for (const r of runs.splice(0)) await r.stop();
  });

  it('moves a running guest to a second launcher', async () => {
    const source = await startLauncher(testVmi('migrate'));
    runs.push(source);
    const target = await startLauncher(testVmi('migrate'));
    runs.push(target);
    expect((await source.client.call('start')).phase).toBe('Running');
    await source.waitForSerial(/KUBEVM-COUNT 2\b/, 60_000);

    const uri = `unix:${path.join(target.runDir, 'migration.sock')}`;
    const incoming = await target.client.call('start', { incoming: uri });
    expect(incoming).toMatchObject({ phase: 'Paused', reason: 'MigrationTarget' });
    await target.client.subscribe();
    const targetRunning = waitForEvent(target.client, (e) => e.status.phase === 'Running', 60_000);

    const info = await source.client.call('migrate', { uri, timeoutSeconds: 60 });
    expect(info.status).toBe('completed');
    expect(info['total-time']).toBeGreaterThan(0);
    await targetRunning;
    const atMigration = lastCount(source.serialLog());
    // The target's console continues the count the source had reached.
    const next = await target.waitForSerial(/KUBEVM-COUNT (\d+)/, 20_000);
    expect(Number(next[1])).toBeGreaterThanOrEqual(atMigration);
    await target.waitForSerial(new RegExp(`KUBEVM-COUNT ${atMigration + 2}\\b`), 20_000);
    const src = await source.client.call('status');
    expect(src.phase).toBe('Paused');
    expect(src.qemuStatus).toBe('postmigrate');
    await source.client.call('kill');
    await target.client.call('kill');
  });
});
