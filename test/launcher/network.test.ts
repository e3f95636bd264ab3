// Guest networking on the pod network without NET_ADMIN: masquerade (QEMU user networking) and
// passt, each forwarding a declared port from the "pod" (here: the host) to a web server in the
// guest, which got its address by DHCP.
import { jest } from '@jest/globals';
import net from 'node:net';
import os from 'node:os';
import type { LauncherInterface } from '../../launcher/vmi.js';
import { startLauncher, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(120_000);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function httpGet(port: number, timeoutMs: number): Promise<string> {
  let last = '';
  return eventually(() => `an answer from the guest on port ${port}: ${last}`, timeoutMs, async () => {
    const res = await new Promise<string>((resolve) => {
      // HTTP/1.0 on a raw socket: no client keep-alive pool left behind after the test.
      const sock = net.createConnection({ host: '127.0.0.1', port });
      let body = '';
      sock.setTimeout(3000, () => sock.destroy(new Error('timeout')));
      sock.on('connect', () => sock.write('GET / HTTP/1.0\r\n\r\n'));
      sock.on('data', (d: Buffer) => (body += d.toString()));
      sock.on('close', () => resolve(body));
      sock.on('error', (err) => resolve(`error: ${err.message}`));
    });
    if (res.includes('kubevm-guest-http')) return res;
    last = res;
    return undefined;
  }, { intervalMs: 500 });
}

describe('launcher networking (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  for (const binding of ['masquerade', 'passt'] as const) {
    it(`${binding}: the guest gets DHCP and a declared port reaches it`, async () => {
      const port = await freePort();
      const vmi = testVmi(`net-${binding}`, `kubevm.net=dhcp kubevm.http=${port} kubevm.counter=0`);
      const iface: LauncherInterface = { name: 'default', [binding]: {}, ports: [{ name: 'http', port }] };
      vmi.spec.domain.devices.interfaces = [iface];
      vmi.spec.networks = [{ name: 'default', pod: {} }];
      run = await startLauncher(vmi);
      expect((await run.client.call('start')).phase).toBe('Running');
      const lease = await run.waitForSerial(/KUBEVM-NET eth0 (\S+) via (\S+)/, 60_000);
      if (binding === 'masquerade') expect([lease[1], lease[2]]).toEqual(['10.0.2.2/24', '10.0.2.1']);
      if (binding === 'passt') {
        // passt hands the guest the pod's (here: the host's) own address.
        const hostAddresses = Object.values(os.networkInterfaces()).flat().filter((a) => a?.family === 'IPv4').map((a) => a?.address);
        expect(hostAddresses).toContain(lease[1]?.split('/')[0]);
      }
      await run.waitForSerial(new RegExp(`KUBEVM-HTTP listening on ${port}`), 10_000);
      expect(await httpGet(port, 30_000)).toMatch(/\r\n\r\nkubevm-guest-http/);
      await run.client.call('kill');
    });
  }
});
