// Bad input fails the start at a named step with a message naming the field, pushed to the
// subscribed handler as an error event; QEMU's own last stderr lines come with it.
import { jest } from '@jest/globals';
import type { DomainEvent, DomainStatus } from '../../runtime/contracts/launcher-protocol.js';
import { LauncherCommandError } from '../../node-handler/launcher-client.js';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { processesMatching, startLauncher, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(60_000);

interface Failure {
  error: LauncherCommandError;
  event: Extract<DomainEvent, { type: 'error' }>;
  status: DomainStatus;
}

async function failingStart(run: LauncherRun): Promise<Failure> {
  await run.client.subscribe();
  const errorEvent = waitForEvent(run.client, (e) => e.type === 'error', 30_000);
  let error: LauncherCommandError | undefined;
  try {
    await run.client.call('start');
  } catch (err) {
    error = err as LauncherCommandError;
  }
  expect(error).toBeInstanceOf(LauncherCommandError);
  const event = await errorEvent;
  if (event.type !== 'error') throw new Error(`expected an error event, got ${event.type}`);
  return { error: error as LauncherCommandError, event, status: await run.client.call('status') };
}

describe('launcher start errors', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('an unknown disk bus names the field and never starts QEMU', async () => {
    run = await startLauncher(
      testVmi('badbus', '', { disks: [{ name: 'scratch', disk: { bus: 'floppy' } }], volumes: [{ name: 'scratch', emptyDisk: { capacity: '1Mi' } }] }),
    );
    const { error, event, status } = await failingStart(run);
    expect(error.step).toBe('qemu-args');
    expect(error.message).toContain('spec.domain.devices.disks[0].disk.bus: "floppy" is not supported; use one of virtio, sata, scsi, usb');
    expect(event.error).toMatchObject({ step: 'qemu-args', qemuStderr: [] });
    expect(status).toMatchObject({ phase: 'Failed', reason: 'StartFailed:qemu-args' });
    expect(status.error?.message).toContain('disks[0].disk.bus');
  });

  it('a disk without a volume names the disk', async () => {
    run = await startLauncher(testVmi('novolume', '', { disks: [{ name: 'data', disk: {} }], volumes: [] }));
    const { error, status } = await failingStart(run);
    expect(error.step).toBe('volumes');
    expect(error.message).toContain('spec.domain.devices.disks[0].name: no volume named "data" in spec.volumes');
    expect(status.phase).toBe('Failed');
  });

  it('a containerDisk whose image is not present says where it looked', async () => {
    run = await startLauncher(
      testVmi('nodisk', '', { disks: [{ name: 'root', disk: {} }], volumes: [{ name: 'root', containerDisk: { image: 'example.org/missing:1' } }] }),
    );
    const { error } = await failingStart(run);
    expect(error.step).toBe('volumes');
    expect(error.message).toMatch(/spec\.volumes\[0\]\.containerDisk: disk image not found: image example\.org\/missing:1 is not present at \S+container-disks\/root/);
  });

  it('QEMU failing to start carries its own stderr lines', async () => {
    const vmi: LauncherVmi = testVmi('badcpu');
    vmi.spec.domain.cpu = { model: 'Imaginary-CPU-9000' };
    run = await startLauncher(vmi);
    const { error, event, status } = await failingStart(run);
    expect(error.step).toBe('qmp-connect');
    expect(error.message).toMatch(/QEMU exited during start \(exit code 1\)/);
    expect(error.qemuStderr.join('\n')).toMatch(/unable to find CPU model 'Imaginary-CPU-9000'/);
    expect(event.error?.qemuStderr.join('\n')).toMatch(/unable to find CPU model/);
    expect(status.error?.qemuStderr.join('\n')).toMatch(/unable to find CPU model/);
    expect(processesMatching(run.runDir)).toEqual([]);
  });

  it('QEMU dying while the guest runs is pushed as Failed/Crashed with its exit', async () => {
    run = await startLauncher(testVmi('crash'));
    await run.client.subscribe();
    const status = await run.client.call('start');
    expect(status.phase).toBe('Running');
    const crashed = waitForEvent(run.client, (e) => e.status.phase === 'Failed', 20_000);
    process.kill(status.qemuPid as number, 'SIGKILL');
    const event = await crashed;
    expect(event.status.reason).toBe('Crashed');
    expect(event.status.error).toMatchObject({ step: 'runtime', message: 'QEMU exited unexpectedly (signal SIGKILL)' });
    expect(event.status.exit).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('no KVM and emulation not allowed is a clear refusal', async () => {
    run = await startLauncher(testVmi('nokvm'), { env: { KUBEVM_ACCEL: 'auto', KUBEVM_ALLOW_EMULATION: 'false', KUBEVM_KVM_DEVICE: '/nonexistent/kvm' } });
    const { error } = await failingStart(run);
    expect(error.step).toBe('accelerator');
    expect(error.message).toContain('/nonexistent/kvm is not accessible');
    expect(error.message).toContain('emulation is not allowed (useEmulation is off)');
  });

  it('no KVM with emulation allowed falls back to TCG and says why', async () => {
    run = await startLauncher(testVmi('fallback'), { env: { KUBEVM_ACCEL: 'auto', KUBEVM_KVM_DEVICE: '/nonexistent/kvm' } });
    const status = await run.client.call('start');
    expect(status.accelerator?.accel).toBe('tcg');
    const emulated = status.conditions?.find((condition) => condition.type === 'Emulated');
    expect(emulated?.status).toBe('True');
    expect(emulated?.message).toContain('using emulation (TCG) because useEmulation is on');
    await run.client.call('kill');
  });
});
