import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DomainStateCache } from './domain-state.js';
import { LauncherSocketRefused, connectUnixSocket, watchLauncherSocketDirectory } from './launcher-client.js';
import { LauncherConnections, launcherSocketPath } from './launcher-connections.js';
import type { LauncherDialer, LauncherSession, LauncherSessionHandlers, LauncherSocketWatcher } from './launcher-connections.js';
import { eventually } from '../test/support/eventually.js';

const session = (onClose: () => void = () => undefined): LauncherSession => ({
  start: async () => undefined,
  pause: async () => undefined,
  unpause: async () => undefined,
  softReboot: async () => undefined,
  reset: async () => undefined,
  shutdown: async () => undefined,
  close: onClose,
});

describe('LauncherConnections', () => {
  it('finds the socket where ADR 0007 puts it', () => {
    expect(launcherSocketPath('/var/lib/kubelet/pods', 'uid-1')).toBe('/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~empty-dir/private/launcher.sock');
  });

  it('redials until the launcher answers, then after it drops, and feeds its state to the cache', async () => {
    const dialed: string[] = [];
    let handlers: LauncherSessionHandlers | undefined;
    let failuresLeft = 2;
    const dial: LauncherDialer = async ({ socketPath }, h) => {
      dialed.push(socketPath);
      if (failuresLeft-- > 0) throw new Error('ENOENT: the launcher has not opened its socket yet');
      handlers = h;
      h.onState({ phase: 'Running' });
      return session();
    };
    const domains = new DomainStateCache();
    const changes: string[] = [];
    const connections = new LauncherConnections({ dial, domains, podsDir: '/pods', onConnectionChange: (key) => changes.push(key) });
    connections.ensure('ns/vm', 'pod-a');
    await eventually('a session to pod-a', 3000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    expect(dialed).toHaveLength(3);
    expect(domains.get('ns/vm')).toMatchObject({ podUid: 'pod-a', phase: 'Running' });
    expect(changes).toEqual(['ns/vm']);

    handlers?.onClose(new Error('the launcher closed the connection'));
    expect(connections.session('ns/vm', 'pod-a')).toBeUndefined();
    await eventually('a session to pod-a', 3000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    expect(dialed).toHaveLength(4);
    connections.closeAll();
  });

  it('lets go of a VMI: closes the session, forgets the state, stops redialling', async () => {
    let closed = 0;
    let dials = 0;
    const dial: LauncherDialer = async (_path, h) => {
      dials += 1;
      h.onState({ phase: 'Running' });
      return session(() => (closed += 1));
    };
    const domains = new DomainStateCache();
    const connections = new LauncherConnections({ dial, domains, podsDir: '/pods' });
    connections.ensure('ns/vm', 'pod-a');
    await eventually('a session to pod-a', 3000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    connections.drop('ns/vm');
    expect(closed).toBe(1);
    expect(domains.get('ns/vm')).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dials).toBe(1);
  });

  it('moves to the new pod when the active pod changes', async () => {
    const dialed: string[] = [];
    const dial: LauncherDialer = async ({ socketPath }, h) => {
      dialed.push(socketPath);
      h.onState({ phase: 'Running' });
      return session();
    };
    const connections = new LauncherConnections({ dial, domains: new DomainStateCache(), podsDir: '/pods' });
    connections.ensure('ns/vm', 'pod-a');
    await eventually('a session to pod-a', 3000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    connections.ensure('ns/vm', 'pod-b');
    await eventually('a session to pod-b', 3000, () => connections.session('ns/vm', 'pod-b') !== undefined);
    expect(connections.session('ns/vm', 'pod-a')).toBeUndefined();
    expect(dialed.map((p) => p.split('/')[2])).toEqual(['pod-a', 'pod-b']);
    connections.closeAll();
  });
});

describe('LauncherConnections waiting for a launcher that is not listening yet', () => {
  // Real directories, a real inotify watch and real unix sockets; the dialer connects only (the
  // launcher's own checks and protocol are in test/launcher/node-handler-launcher.test.ts).
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  function podsDir(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-pods-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** Connects to the socket; a failed connect is a failed dial, as the real dialer's is. */
  function connectingDialer(dials: string[]): LauncherDialer {
    return async ({ socketPath }, h) => {
      dials.push(socketPath);
      const socket = await connectUnixSocket(socketPath, 1000);
      cleanups.push(() => socket.destroy());
      h.onState({ phase: 'Pending' });
      return session(() => socket.destroy());
    };
  }

  function listen(socketPath: string): Promise<net.Server> {
    const server = net.createServer((socket) => socket.on('error', () => undefined));
    cleanups.push(() => server.close());
    return new Promise((resolve) => server.listen(socketPath, () => resolve(server)));
  }

  /** The connections' log lines, to see what made each attach happen. */
  function attachLog(): { log: pino.Logger; attaches: () => Array<{ trigger: string; time: number }> } {
    const lines: Array<{ msg: string; trigger: string; time: number }> = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string; trigger: string; time: number });
        done();
      },
    });
    return { log: pino({ level: 'info' }, stream), attaches: () => lines.filter((line) => line.msg === 'attached to launcher') };
  }

  it('dials when the socket appears in the watched directory, not at the next retry', async () => {
    const pods = podsDir();
    const socketPath = launcherSocketPath(pods, 'pod-a');
    mkdirSync(path.dirname(socketPath), { recursive: true });
    const dials: string[] = [];
    const { log, attaches } = attachLog();
    // A minute between retries: only the watch can attach within the wait below.
    const connections = new LauncherConnections({ dial: connectingDialer(dials), watch: watchLauncherSocketDirectory, domains: new DomainStateCache(), podsDir: pods, retryDelayMs: { first: 60_000, longest: 60_000 }, log });
    cleanups.push(() => connections.closeAll());
    connections.ensure('ns/vm', 'pod-a');
    await eventually('the first dial to fail and the watch to start', 5000, () => dials.length >= 2 && connections.lastError('ns/vm') !== undefined);
    const dialsBefore = dials.length;
    const listening = Date.now();
    await listen(socketPath);
    await eventually('a session to pod-a', 5000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    expect(Date.now() - listening).toBeLessThan(2000);
    expect(attaches().map((line) => line.trigger)).toEqual(['socket-event']);
    expect(dials.length - dialsBefore).toBeLessThanOrEqual(3);
  });

  it('falls back to its retries when the watch reports nothing', async () => {
    const pods = podsDir();
    const socketPath = launcherSocketPath(pods, 'pod-a');
    mkdirSync(path.dirname(socketPath), { recursive: true });
    const dials: string[] = [];
    let watches = 0;
    // A watch that misses every event, as inotify may (a full queue, a directory replaced).
    const deafWatch: LauncherSocketWatcher = () => {
      watches += 1;
      return { close: () => undefined };
    };
    const { log, attaches } = attachLog();
    const connections = new LauncherConnections({ dial: connectingDialer(dials), watch: deafWatch, domains: new DomainStateCache(), podsDir: pods, retryDelayMs: { first: 50, longest: 200 }, log });
    cleanups.push(() => connections.closeAll());
    connections.ensure('ns/vm', 'pod-a');
    await eventually('a few failed dials', 5000, () => dials.length >= 4);
    await listen(socketPath);
    await eventually('a session to pod-a', 5000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    expect(attaches().map((line) => line.trigger)).toEqual(['retry']);
    // One watch, kept while the retries went on.
    expect(watches).toBe(1);
  });

  it('watches a socket directory that appears after the first dials (a late hostPath volume)', async () => {
    const pods = podsDir();
    const socketPath = launcherSocketPath(pods, 'pod-a');
    const dials: string[] = [];
    const { log, attaches } = attachLog();
    const connections = new LauncherConnections({ dial: connectingDialer(dials), watch: watchLauncherSocketDirectory, domains: new DomainStateCache(), podsDir: pods, retryDelayMs: { first: 50, longest: 100 }, log });
    cleanups.push(() => connections.closeAll());
    connections.ensure('ns/vm', 'pod-a');
    await eventually('dials while the directory is missing', 5000, () => dials.length >= 3);
    mkdirSync(path.dirname(socketPath), { recursive: true });
    // A retry after the directory appeared starts the watch; the socket comes after that.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await listen(socketPath);
    await eventually('a session to pod-a', 5000, () => connections.session('ns/vm', 'pod-a') !== undefined);
    expect(attaches()).toHaveLength(1);
    expect(['socket-event', 'retry']).toContain(attaches()[0]?.trigger);
  });

  it('gives a refused socket retries only, and bounds the dials watch events cause', async () => {
    let refusedDials = 0;
    let refusedWatches = 0;
    const refused = new LauncherConnections({
      dial: async ({ socketPath }) => {
        refusedDials += 1;
        throw new LauncherSocketRefused(socketPath, 'it is a symbolic link');
      },
      watch: () => {
        refusedWatches += 1;
        return { close: () => undefined };
      },
      domains: new DomainStateCache(),
      podsDir: '/pods',
      retryDelayMs: { first: 60_000, longest: 60_000 },
    });
    cleanups.push(() => refused.closeAll());
    refused.ensure('ns/link', 'pod-link');
    await eventually('the refused dial', 5000, () => refused.lastError('ns/link')?.includes('symbolic link'));
    expect(refusedWatches).toBe(0);
    expect(refusedDials).toBe(1);

    // A pod churning its directory: every event is a hint, but only a few dials per retry period.
    let dials = 0;
    let onChange: (() => void) | undefined;
    const busy = new LauncherConnections({
      dial: async () => {
        dials += 1;
        throw new Error('ECONNREFUSED');
      },
      watch: (_target, changed) => {
        onChange = changed;
        return { close: () => undefined };
      },
      domains: new DomainStateCache(),
      podsDir: '/pods',
      retryDelayMs: { first: 60_000, longest: 60_000 },
    });
    cleanups.push(() => busy.closeAll());
    busy.ensure('ns/busy', 'pod-busy');
    await eventually('the watch', 5000, () => onChange !== undefined);
    for (let i = 0; i < 200; i += 1) {
      onChange?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The first dial, the one after the watch started, and the rest of the period's three.
    expect(dials).toBe(4);
  });
});
