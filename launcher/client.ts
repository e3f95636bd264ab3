// A client of the launcher's command socket (docs/launcher-protocol.md): calls with ids, pushed
// domain events, and byte streams for the console and VNC. Used by the launcher tests; the node
// handler may use it as is.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { CommandRequest } from './command-server.js';
import type { DomainEvent, DomainStatus } from './domain.js';

export class LauncherCommandError extends Error {
  constructor(
    readonly command: string,
    message: string,
    readonly step: string | undefined,
    readonly qemuStderr: string[],
  ) {
    super(`launcher ${command}: ${message}${qemuStderr.length ? `\nQEMU said:\n  ${qemuStderr.slice(-5).join('\n  ')}` : ''}`);
    this.name = 'LauncherCommandError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** Emits 'event' (DomainEvent) after subscribe(), and 'close'. */
export class LauncherClient extends EventEmitter {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim()) this.onMessage(JSON.parse(line) as Record<string, unknown>);
      }
    });
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`launcher ${p.command}: connection closed`));
      this.pending.clear();
      this.emit('close');
    });
    socket.on('error', () => undefined);
  }

  static connect(socketPath: string): Promise<LauncherClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once('connect', () => resolve(new LauncherClient(socket)));
      socket.once('error', reject);
    });
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (msg['event']) {
      this.emit('event', msg['event'] as DomainEvent);
      return;
    }
    const p = this.pending.get(msg['id'] as number);
    if (!p) return;
    this.pending.delete(msg['id'] as number);
    if (msg['ok'] === true) p.resolve(msg['result']);
    else {
      const e = (msg['error'] ?? {}) as { message?: string; step?: string; qemuStderr?: string[] };
      p.reject(new LauncherCommandError(p.command, e.message ?? 'unknown error', e.step, e.qemuStderr ?? []));
    }
  }

  call<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    const req: CommandRequest = { id, command };
    if (args) req.args = args;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify(req)}\n`);
    });
  }

  status(): Promise<DomainStatus> {
    return this.call<DomainStatus>('status');
  }

  /** Starts receiving pushed events; resolves to the status at the moment of subscribing. */
  subscribe(): Promise<DomainStatus> {
    return this.call<DomainStatus>('subscribe');
  }

  /** Resolves on the first event for which `match` holds. */
  waitForEvent(match: (e: DomainEvent) => boolean, timeoutMs: number): Promise<DomainEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('event', on);
        reject(new Error(`no matching launcher event within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (e: DomainEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        this.off('event', on);
        resolve(e);
      };
      this.on('event', on);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Opens a raw byte stream to the serial console ('console') or VNC ('vnc'). */
  static async openStream(socketPath: string, kind: 'console' | 'vnc'): Promise<net.Socket> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    socket.write(`${JSON.stringify({ id: 1, command: kind })}\n`);
    // The first line is the answer; everything after it is the stream.
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(0x0a);
        if (nl < 0) return;
        socket.off('data', onData);
        const answer = JSON.parse(head.subarray(0, nl).toString()) as { ok: boolean; error?: { message: string } };
        if (!answer.ok) {
          socket.destroy();
          reject(new Error(`launcher ${kind}: ${answer.error?.message ?? 'refused'}`));
          return;
        }
        // Bytes of the stream that came with the answer go back in front; the socket stays paused
        // until the caller (resumed after this promise settles) has attached its listener.
        socket.pause();
        const rest = head.subarray(nl + 1);
        if (rest.length) socket.unshift(rest);
        resolve(socket);
        setImmediate(() => socket.resume());
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
  }
}
