import { describe, expect, it } from '@jest/globals';
import { DomainEvent, LauncherMessage, parseLauncherRequest } from './launcher-protocol.js';

const status = { vmi: { name: 'vm', namespace: 'ns' }, phase: 'Running', volumes: [], conditions: [] };

describe('launcher protocol', () => {
  it('accepts a known command with its arguments', () => {
    expect(parseLauncherRequest({ id: 3, command: 'shutdown', args: { gracePeriodSeconds: 10 } })).toEqual({ ok: true, request: { id: 3, command: 'shutdown', args: { gracePeriodSeconds: 10 } } });
    expect(parseLauncherRequest({ command: 'status' })).toEqual({ ok: true, request: { id: undefined, command: 'status', args: {} } });
  });

  it('refuses an unknown command, naming the known ones, and keeps the id', () => {
    const refused = parseLauncherRequest({ id: 'x', command: 'rm -rf' });
    expect(refused).toMatchObject({ ok: false, id: 'x' });
    expect(!refused.ok && refused.message).toMatch(/^unknown command "rm -rf"; known: hello, subscribe, status, start/);
    expect(parseLauncherRequest({ command: 'constructor' })).toMatchObject({ ok: false });
  });

  it('refuses bad arguments with the field path', () => {
    expect(parseLauncherRequest({ id: 1, command: 'shutdown', args: { gracePeriodSeconds: -1 } })).toMatchObject({ ok: false, id: 1, message: expect.stringMatching(/^bad request: args\.gracePeriodSeconds: /) });
    expect(parseLauncherRequest({ id: 2, command: 'migrate', args: { bandwidthMiBps: -1 } })).toMatchObject({ ok: false, message: expect.stringContaining('args.bandwidthMiBps') });
    // A launcher never migrates to a URI it is given: the stream goes through its migration-out.sock.
    expect(parseLauncherRequest({ id: 2, command: 'migrate', args: { uri: 'tcp:10.0.0.1:4444' } })).toMatchObject({ ok: true, request: { args: {} } });
    expect(parseLauncherRequest({ id: 2, command: 'start', args: { incoming: 'tcp:0:4444' } })).toMatchObject({ ok: false, message: expect.stringContaining('args.incoming') });
    expect(parseLauncherRequest({ id: 2, command: 42 })).toMatchObject({ ok: false, id: 2, message: expect.stringContaining('command') });
    expect(parseLauncherRequest('status')).toMatchObject({ ok: false, id: undefined });
  });

  it('tells events and responses apart and refuses events of the wrong shape', () => {
    expect(LauncherMessage.safeParse({ event: { type: 'status', at: 'now', status } }).success).toBe(true);
    expect(LauncherMessage.safeParse({ id: 1, ok: true, result: 7 }).success).toBe(true);
    expect(LauncherMessage.safeParse({ id: 1, ok: false, error: { message: 'no' } }).success).toBe(true);
    expect(DomainEvent.safeParse({ type: 'status', at: 'now', status: { ...status, phase: 'Exploded' } }).success).toBe(false);
    expect(DomainEvent.safeParse({ type: 'error', at: 'now', status }).success).toBe(false);
    expect(LauncherMessage.safeParse({ event: { type: 'status', at: 'now', status: { ...status, guestInfo: { agentConnected: 'yes', interfaces: [] } } } }).success).toBe(false);
    expect(LauncherMessage.safeParse({ id: 1, ok: 'maybe' }).success).toBe(false);
  });
});
