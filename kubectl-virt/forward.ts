// Local TCP listeners whose connections each become one stream subresource: port-forward (a guest
// port), vnc (the VMI's display for a local VNC viewer). `--stdio` joins stdin/stdout to one
// stream instead, which is what ssh's ProxyCommand needs.
import * as net from 'node:net';
import { pipeline } from 'node:stream';
import type { Target, VirtApi } from './api.js';
import { UserError } from './errors.js';
import { openStream, streamOf } from './streams.js';

/** vm/NAME, vmi/NAME, NAME.NAMESPACE as virtctl accepts them. */
export interface StreamTarget {
  target: Target;
  name: string;
  namespace?: string;
}

export function parseTarget(text: string, what: string): StreamTarget {
  const match = /^(vm|vmi|virtualmachine|virtualmachineinstance)\/([^/]+)$/.exec(text);
  if (!match?.[1] || !match[2]) throw new UserError(`${what}: "${text}" is not vm/NAME or vmi/NAME (e.g. vm/web, or vm/web.team-a for another namespace)`);
  const target: Target = match[1] === 'vm' || match[1] === 'virtualmachine' ? 'vm' : 'vmi';
  const dot = match[2].indexOf('.');
  return dot === -1 ? { target, name: match[2] } : { target, name: match[2].slice(0, dot), namespace: match[2].slice(dot + 1) };
}

export interface PortMapping {
  local: number;
  guest: number;
}

/** "[tcp/]LOCAL[:GUEST]"; LOCAL 0 picks a free port. Only TCP: kubevm forwards no UDP. */
export function parsePort(text: string): PortMapping {
  const match = /^(?:(tcp|udp)\/)?(\d{1,5})(?::(\d{1,5}))?$/i.exec(text);
  if (!match) throw new UserError(`port-forward: "${text}" is not [tcp/]LOCAL[:GUEST] (e.g. 8080:80)`);
  if (match[1]?.toLowerCase() === 'udp') throw new UserError('port-forward: udp is not supported by kubevm; only tcp ports can be forwarded');
  const local = Number(match[2]);
  const guest = match[3] === undefined ? local : Number(match[3]);
  if (local > 65535 || guest < 1 || guest > 65535) throw new UserError(`port-forward: "${text}": ports are 1-65535 (LOCAL may be 0 for any free port)`);
  return { local, guest };
}

/**
 * One stream joined to stdin/stdout until the guest side closes. The end of stdin is not the end:
 * the guest may still answer what was sent (as a request and its response over a TCP half-close).
 */
export async function forwardStdio(virt: VirtApi, target: StreamTarget, subresource: string): Promise<void> {
  const ws = await openStream(virt, target.target, target.name, subresource);
  const { stdin, stdout } = process;
  stdin.on('data', (chunk: Buffer) => {
    ws.send(chunk);
    // Backpressure both ways: stop reading what cannot be written yet.
    if (ws.bufferedAmount > 1 << 20) {
      stdin.pause();
      const drained = setInterval(() => {
        if (ws.bufferedAmount <= 1 << 18 || ws.readyState !== ws.OPEN) {
          clearInterval(drained);
          stdin.resume();
        }
      }, 10);
    }
  });
  ws.on('message', (data: Buffer) => {
    if (!stdout.write(data)) {
      ws.pause();
      stdout.once('drain', () => ws.resume());
    }
  });
  await new Promise<void>((resolve) => {
    ws.on('close', () => resolve());
    ws.on('error', () => resolve());
  });
  stdin.destroy();
}

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on address:port; each accepted connection opens its own stream. A stream that cannot
 * open is reported on `log` with the reason and closes only that connection.
 */
export async function listenAndForward(virt: VirtApi, target: StreamTarget, subresource: string, address: string, port: number, log: (line: string) => void): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.pause();
    openStream(virt, target.target, target.name, subresource).then(
      (ws) => {
        const stream = streamOf(ws);
        pipeline(socket, stream, socket, (err) => {
          if (err && !/ECONNRESET|EPIPE|premature close/i.test(err.message)) log(`${target.target}/${target.name}: connection ended: ${err.message}`);
        });
      },
      (err: unknown) => {
        log(err instanceof Error ? err.message : String(err));
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new UserError(`cannot listen on ${address}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`)));
    server.listen(port, address, () => resolve());
  });
  const bound = server.address();
  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Resolves on Ctrl+C or SIGTERM. */
export const untilInterrupted = (): Promise<void> =>
  new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
