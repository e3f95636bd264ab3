// The launcher's input socket (launcher/input.ts) over a real unix socket: only a delivery of the
// pod's own VMI is taken; anything else is answered with the reason and the launcher keeps
// listening; once taken, the socket is gone.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DNS_LABEL_MESSAGE } from '../runtime/api/names.js';
import { LAUNCHER_INPUT_MAX_BYTES } from '../runtime/contracts/launcher-input.js';
import { silentLogger } from '../runtime/logging.js';
import { acceptDelivery, receiveVmi } from './input.js';

const UID = '3f6c8a4e-1111-2222-3333-444455556666';
const vmi = (uid: string | undefined) => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'vm1', namespace: 'ns1', ...(uid ? { uid } : {}) }, spec: { domain: { devices: {} } } });

let dir: string;
let stop: AbortController;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kubevm-input-'));
  stop = new AbortController();
});
// A test that failed halfway leaves no socket listening.
afterEach(() => {
  stop.abort(new Error('test over'));
  rmSync(dir, { recursive: true, force: true });
});

/** Sends bytes on a fresh connection and returns everything the launcher answered. */
function send(socketPath: string, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(bytes);
  });
}

/**
 * Sends bytes and then keeps writing, never ending its side (a half-open peer); resolves with what
 * the launcher answered once the launcher closed the connection, rejects if it has not in `ms`.
 */
function sendAndKeepWriting(socketPath: string, bytes: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath, allowHalfOpen: true });
    let answer = '';
    const more = Buffer.alloc(64 * 1024, 0x62);
    const writer = setInterval(() => socket.writable && socket.write(more), 5);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the launcher kept the connection open (it answered ${JSON.stringify(answer)})`));
    }, ms);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    // Writing into a connection the launcher cut fails: expected, the close follows.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(writer);
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(bytes);
  });
}

async function listening(socketPath: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!existsSync(socketPath)) {
    if (Date.now() > deadline) throw new Error(`${socketPath} never appeared`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('a delivery', () => {
  test('is taken only when it is the VMI of this pod', () => {
    expect(acceptDelivery(JSON.stringify({ vmi: vmi(UID) }), UID)).toMatchObject({ ok: true, vmi: { metadata: { name: 'vm1', uid: UID } } });
    expect(acceptDelivery(JSON.stringify({ vmi: vmi('someone-else') }), UID)).toEqual({ ok: false, error: `the delivered VMI has uid "someone-else"; this pod runs the VMI ${UID}` });
    expect(acceptDelivery(JSON.stringify({ vmi: vmi(undefined) }), UID)).toMatchObject({ ok: false, error: expect.stringContaining('has uid null') });
  });

  test('naming a volume, disk, interface or network by anything but a DNS label is refused before any name is used', () => {
    const hostile = 'x/../../elsewhere/loot';
    const delivery = (spec: object) => JSON.stringify({ vmi: { ...vmi(UID), spec: { domain: { devices: {} }, ...spec } } });
    const refused = (field: string) => ({ ok: false, error: `the delivered VMI: ${field}.name: ${JSON.stringify(hostile)} ${DNS_LABEL_MESSAGE}` });
    expect(acceptDelivery(delivery({ volumes: [{ name: 'root', containerDisk: { image: 'a' } }, { name: hostile, containerDisk: { image: 'b' } }] }), UID)).toEqual(refused('spec.volumes[1]'));
    expect(acceptDelivery(delivery({ domain: { devices: { disks: [{ name: hostile }] } } }), UID)).toEqual(refused('spec.domain.devices.disks[0]'));
    expect(acceptDelivery(delivery({ domain: { devices: { interfaces: [{ name: hostile, passt: {} }] } } }), UID)).toEqual(refused('spec.domain.devices.interfaces[0]'));
    expect(acceptDelivery(delivery({ networks: [{ name: hostile, pod: {} }] }), UID)).toEqual(refused('spec.networks[0]'));
    expect(acceptDelivery(delivery({ volumes: [{ containerDisk: { image: 'a' } }] }), UID)).toMatchObject({ ok: false, error: expect.stringContaining('spec.volumes[0].name: null must be a DNS label') });
    expect(acceptDelivery(delivery({ volumes: { name: 'root' } }), UID)).toMatchObject({ ok: false, error: expect.stringContaining('spec.volumes must be a list') });
  });

  test('that is not one is refused with what is wrong', () => {
    expect(acceptDelivery('{"vmi":', UID)).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) });
    expect(acceptDelivery('[]', UID)).toMatchObject({ ok: false });
    expect(acceptDelivery(JSON.stringify({ vmi: 'a string' }), UID)).toMatchObject({ ok: false, error: expect.stringContaining('vmi') });
    expect(acceptDelivery(JSON.stringify({ vmi: { metadata: { name: 'x', uid: UID }, spec: {} } }), UID)).toEqual({ ok: false, error: 'the delivered VMI: spec.domain.devices is required' });
  });
});

describe('the input socket', () => {
  test('answers refusals, keeps listening, takes the right VMI, and is then removed', async () => {
    const socketPath = path.join(dir, 'private', 'input.sock');
    const received = receiveVmi(socketPath, UID, silentLogger, stop.signal);
    received.catch(() => undefined);
    await listening(socketPath);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);

    expect(JSON.parse(await send(socketPath, `${JSON.stringify({ vmi: vmi('other') })}\n`))).toEqual({ ok: false, error: expect.stringContaining('has uid "other"') });
    expect(JSON.parse(await send(socketPath, 'garbage\n'))).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) });
    // An endless line: cut at the cap, never buffered whole.
    const overflow = await send(socketPath, Buffer.alloc(LAUNCHER_INPUT_MAX_BYTES + 10, 0x61));
    expect(JSON.parse(overflow)).toMatchObject({ ok: false, error: expect.stringContaining('without a newline') });
    // A peer that connects and says nothing does not hold the socket.
    const silent = net.connect(socketPath);
    await new Promise((resolve) => silent.once('connect', resolve));

    expect(JSON.parse(await send(socketPath, `${JSON.stringify({ vmi: vmi(UID) })}\n`))).toEqual({ ok: true });
    const taken = await received;
    expect(taken.metadata).toEqual({ name: 'vm1', namespace: 'ns1', uid: UID });
    expect(existsSync(socketPath)).toBe(false);
    await new Promise((resolve) => (silent.destroyed ? resolve(undefined) : silent.once('close', resolve)));
  });

  test('cuts a refused peer that goes on writing, after a refusal and after an overflow', async () => {
    const socketPath = path.join(dir, 'input.sock');
    const received = receiveVmi(socketPath, UID, silentLogger, stop.signal);
    received.catch(() => undefined);
    await listening(socketPath);
    // What is checked: the launcher closes the connection (sendAndKeepWriting rejects otherwise).
    // The refusal it wrote first may be lost on the way: this client's next write fails on the
    // closed connection and Node drops the socket before reading it. When it arrives, it is the refusal.
    const refusal = async (bytes: string | Buffer, says: RegExp): Promise<void> => {
      const answer = await sendAndKeepWriting(socketPath, bytes);
      if (answer !== '') expect(JSON.parse(answer)).toMatchObject({ ok: false, error: expect.stringMatching(says) });
    };
    await refusal('garbage\n', /^not JSON/);
    await refusal(Buffer.alloc(LAUNCHER_INPUT_MAX_BYTES + 10, 0x61), /without a newline/);
  });

  test('stops waiting when told to (the pod stopped first), and removes the socket', async () => {
    const socketPath = path.join(dir, 'input.sock');
    const received = receiveVmi(socketPath, UID, silentLogger, stop.signal);
    await listening(socketPath);
    stop.abort(new Error('SIGTERM'));
    await expect(received).rejects.toThrow('SIGTERM');
    expect(existsSync(socketPath)).toBe(false);
  });
});
