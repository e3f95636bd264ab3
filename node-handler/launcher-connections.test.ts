import { describe, expect, it } from '@jest/globals';
import { DomainStateCache } from './domain-state.js';
import { LauncherConnections, launcherSocketPath } from './launcher-connections.js';
import type { LauncherDialer, LauncherSession, LauncherSessionHandlers } from './launcher-connections.js';
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
