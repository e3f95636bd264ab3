import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GUEST_CONSOLE_LINE_PREFIX } from '../runtime/contracts/launcher-pod.js';
import { LINE_MAX } from './lines.js';
import { SerialLogFollower, guestLogLine } from './serial-log.js';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SerialLogFollower', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'serial-log-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('emits whole lines as the file grows, waits for a file that does not exist yet, and flushes the last partial line on stop', async () => {
    const file = path.join(dir, 'serial.log');
    const lines: string[] = [];
    const follower = new SerialLogFollower(file, (line) => lines.push(line), 10);
    follower.start();
    await settle(30);
    expect(lines).toEqual([]);

    await appendFile(file, 'Linux version 6.1\r\nKUBEVM-GUEST-');
    await settle(50);
    expect(lines).toEqual(['Linux version 6.1']);

    await appendFile(file, 'BOOTED\nKUBEVM-COUNT 1\nno newline yet');
    await settle(50);
    expect(lines).toEqual(['Linux version 6.1', 'KUBEVM-GUEST-BOOTED', 'KUBEVM-COUNT 1']);

    await follower.stop();
    expect(lines).toEqual(['Linux version 6.1', 'KUBEVM-GUEST-BOOTED', 'KUBEVM-COUNT 1', 'no newline yet']);
  });

  it('cuts output without newlines into lines of at most the cap, losing nothing, and keeps characters whole', async () => {
    const file = path.join(dir, 'serial.log');
    const lines: string[] = [];
    const follower = new SerialLogFollower(file, (line) => lines.push(line), 10);
    // 4 MiB with no newline: whole, it would be re-split on every read (quadratic) and kept whole.
    // The cap falls inside a surrogate pair, a read ends inside a 3-byte character.
    const endless = `a${'😀'.repeat(20_000)}${'€'.repeat(30_000)}${'x'.repeat(4 * 1024 * 1024)}`;
    await appendFile(file, `${endless}\nnext\n`);
    follower.start();
    await follower.stop();
    expect(lines.length).toBeGreaterThan(endless.length / LINE_MAX);
    expect(lines.filter((line) => line.length > LINE_MAX)).toEqual([]);
    expect(lines.filter((line) => Buffer.from(line).toString() !== line)).toEqual([]);
    expect(lines.slice(0, -1).join('')).toBe(endless);
    expect(lines.at(-1)).toBe('next');
  });
});

describe('a guest console line in the launcher output', () => {
  it('cannot pass for a launcher log record, moves no terminal, and is redacted', () => {
    const record = '{"level":30,"time":"2025-01-01T00:00:00.000Z","component":"launcher","msg":"guest stopped"}';
    expect(guestLogLine(record)).toBe(`${GUEST_CONSOLE_LINE_PREFIX}${record}\n`);
    expect(guestLogLine(`\r${record}`)).toBe(`${GUEST_CONSOLE_LINE_PREFIX}${record}\n`);
    expect(guestLogLine('\x1b[2J\x1b[1;31mred\x1b[0m\tok\x07\x08\x7f\u009b')).toBe(`${GUEST_CONSOLE_LINE_PREFIX}[2J[1;31mred[0m\tok\n`);
    expect(guestLogLine('password: hunter2')).toBe(`${GUEST_CONSOLE_LINE_PREFIX}password: [REDACTED]\n`);
    for (const line of [record, '\n{"msg":1}', '\u0085{"msg":1}']) expect(guestLogLine(line).startsWith(GUEST_CONSOLE_LINE_PREFIX)).toBe(true);
  });
});
