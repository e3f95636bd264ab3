import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QmpClient, QmpError } from './qmp.js';
import type { QmpEvent } from './qmp.js';

/** A scripted QMP server: greets, then answers each command with `answer(cmd)` (or not at all). */
function fakeQmp(sock: string, answer: (cmd: { execute: string; id?: string }, reply: (msg: object) => void) => void): Promise<net.Server> {
  const server = net.createServer((c) => {
    c.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: string };
        buf = buf.slice(nl + 1);
        answer(cmd, (msg) => c.write(`${JSON.stringify(msg)}\n`));
      }
    });
  });
  return new Promise((resolve) => server.listen(sock, () => resolve(server)));
}

describe('QmpClient', () => {
  let dir: string;
  let server: net.Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-qmp-'));
  });
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('negotiates capabilities, matches answers by id in any order, relays events and errors', async () => {
    const sock = path.join(dir, 'qmp.sock');
    const held: { id?: string; reply: (m: object) => void }[] = [];
    server = await fakeQmp(sock, (cmd, reply) => {
      if (cmd.execute === 'qmp_capabilities') reply({ return: {}, id: cmd.id });
      else if (cmd.execute === 'query-status') held.push({ id: cmd.id, reply });
      else if (cmd.execute === 'stop') {
        reply({ event: 'STOP', timestamp: { seconds: 1, microseconds: 0 } });
        reply({ return: {}, id: cmd.id });
        // Answer the earlier query-status only now: out of order.
        for (const h of held.splice(0)) h.reply({ return: { running: false, status: 'paused' }, id: h.id });
      } else reply({ error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` }, id: cmd.id });
    });
    const client = await QmpClient.connect(sock);
    const events: QmpEvent[] = [];
    client.on('event', (e: QmpEvent) => events.push(e));
    const status = client.execute('query-status');
    await client.execute('stop');
    await expect(status).resolves.toEqual({ running: false, status: 'paused' });
    expect(events.map((e) => e.event)).toEqual(['STOP']);
    await expect(client.execute('nonsense')).rejects.toThrow(new QmpError('nonsense', 'CommandNotFound', 'The command nonsense has not been found'));
    client.close();
    await expect(client.execute('stop')).rejects.toThrow('connection closed');
  });

  it('times a command out, and fails pending commands when the peer goes away', async () => {
    const sock = path.join(dir, 'qmp.sock');
    let drop: (() => void) | undefined;
    server = await fakeQmp(sock, (cmd, reply) => {
      if (cmd.execute === 'qmp_capabilities') reply({ return: {}, id: cmd.id });
      if (cmd.execute === 'drop') drop?.();
    });
    server.on('connection', (c) => (drop = () => c.destroy()));
    const client = await QmpClient.connect(sock, { timeoutMs: 200 });
    await expect(client.execute('query-status')).rejects.toThrow('QMP query-status: no answer within 200 ms');
    const pending = client.execute('query-status', undefined, 5000);
    await client.send('drop');
    await expect(pending).rejects.toThrow('QMP query-status: QMP connection closed');
    expect(client.isClosed).toBe(true);
  });
});
