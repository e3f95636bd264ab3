import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialLogFollower } from './serial-log.js';

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
});
