import { describe, expect, it } from '@jest/globals';
import { splitAtEscape } from './console.js';
import { parsePort, parseTarget } from './forward.js';
import { scpArgs, sshArgs } from './ssh.js';

const self = ['/usr/bin/node', '/usr/local/bin/kubectl-virt'];
const options = { port: 22, localOptions: [] };

describe('ssh and scp through port-forward', () => {
  it('runs ssh with the plugin\'s port-forward --stdio as ProxyCommand and a per-VM host key alias', () => {
    expect(sshArgs({ kubeconfig: '/home/me/my config' }, 'fedora@vm/web', 'team-a', { ...options, identityFile: '/k/id' }, ['uname', '-a'], self)).toEqual([
      '-o',
      "ProxyCommand=/usr/bin/node /usr/local/bin/kubectl-virt port-forward --stdio vm/web 22 -n team-a --kubeconfig '/home/me/my config'",
      '-o',
      'HostKeyAlias=vm/web.team-a',
      '-i',
      '/k/id',
      '-l',
      'fedora',
      'vm-web.team-a',
      'uname',
      '-a',
    ]);
    const other = sshArgs({ context: 'prod' }, 'vmi/db.data', 'team-a', { ...options, port: 2222, username: 'root' }, [], self);
    expect(other[1]).toBe('ProxyCommand=/usr/bin/node /usr/local/bin/kubectl-virt port-forward --stdio vmi/db 2222 -n data --context prod');
    expect(other.slice(-3)).toEqual(['-l', 'root', 'vmi-db.data']);
  });

  it('rewrites the remote operand of scp and keeps the local one', () => {
    const args = scpArgs({}, ['./notes.txt', 'fedora@vm/web:/tmp/'], 'team-a', options, self);
    expect(args.slice(-2)).toEqual(['./notes.txt', 'fedora@vm-web.team-a:/tmp/']);
    expect(args[1]).toContain('port-forward --stdio vm/web 22 -n team-a');
    expect(() => scpArgs({}, ['a', 'b'], 'ns', options, self)).toThrow('scp: neither operand is [user@]vm/NAME:PATH');
  });

  it('reads targets and ports as virtctl writes them', () => {
    expect(parseTarget('vm/web', 'x')).toEqual({ target: 'vm', name: 'web' });
    expect(parseTarget('vmi/web.team-a', 'x')).toEqual({ target: 'vmi', name: 'web', namespace: 'team-a' });
    expect(() => parseTarget('pod/web', 'port-forward')).toThrow('port-forward: "pod/web" is not vm/NAME or vmi/NAME');
    expect(parsePort('8080:80')).toEqual({ local: 8080, guest: 80 });
    expect(parsePort('tcp/22')).toEqual({ local: 22, guest: 22 });
    expect(parsePort('0:80')).toEqual({ local: 0, guest: 80 });
    expect(() => parsePort('udp/53')).toThrow('udp is not supported by kubevm');
    expect(() => parsePort('80:0')).toThrow('ports are 1-65535');
  });
});

describe('console input', () => {
  it('ends at Ctrl+] and sends what came before it', () => {
    expect(splitAtEscape(Buffer.from('ls\r'))).toEqual({ send: Buffer.from('ls\r'), escaped: false });
    expect(splitAtEscape(Buffer.from('ls\r\x1dmore'))).toEqual({ send: Buffer.from('ls\r'), escaped: true });
  });
});
