import { describe, expect, it } from '@jest/globals';
import { authenticate, frontProxyConfigFrom } from './front-proxy.js';

const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const config = frontProxyConfigFrom({
  'requestheader-client-ca-file': ca,
  'requestheader-allowed-names': '["front-proxy-client"]',
  'requestheader-username-headers': '["X-Remote-User"]',
  'requestheader-group-headers': '["X-Remote-Group"]',
  'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
});
const proxy = { verified: true, commonName: 'front-proxy-client' };

describe('front-proxy settings', () => {
  it('are read from the ConfigMap, with the API server\'s defaults for absent header names', () => {
    expect(frontProxyConfigFrom({ 'requestheader-client-ca-file': ca })).toEqual({
      clientCA: ca,
      allowedNames: [],
      usernameHeaders: ['X-Remote-User'],
      groupHeaders: ['X-Remote-Group'],
      extraHeaderPrefixes: ['X-Remote-Extra-'],
    });
  });

  it('refuse a ConfigMap without the requestheader CA, naming the key', () => {
    expect(() => frontProxyConfigFrom({ 'client-ca-file': ca })).toThrow(/requestheader-client-ca-file/);
    expect(() => frontProxyConfigFrom({ 'requestheader-client-ca-file': ca, 'requestheader-allowed-names': 'front-proxy' })).toThrow(/requestheader-allowed-names: is not JSON/);
  });
});

describe('authenticate', () => {
  it('takes user, every group and the extras from the front proxy\'s headers', () => {
    const result = authenticate(config, proxy, {
      'x-remote-user': ['alice'],
      'x-remote-group': ['dev', 'system:authenticated'],
      'x-remote-extra-scopes': ['a', 'b'],
      'x-remote-extra-example.org%2fteam': ['vm'],
      'x-remote-user-agent': ['ignored'],
    });
    expect(result).toEqual({ ok: true, user: { username: 'alice', groups: ['dev', 'system:authenticated'], extra: { scopes: ['a', 'b'], 'example.org/team': ['vm'] } } });
  });

  it('refuses a connection without a certificate of the requestheader CA, whatever its headers claim', () => {
    const result = authenticate(config, { verified: false, commonName: 'front-proxy-client' }, { 'x-remote-user': ['system:admin'], 'x-remote-group': ['system:masters'] });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/requestheader CA/) });
  });

  it('refuses a certificate of the CA whose name is not allowed', () => {
    expect(authenticate(config, { verified: true, commonName: 'someone-else' }, { 'x-remote-user': ['alice'] })).toMatchObject({ ok: false, reason: expect.stringMatching(/"someone-else" is not one of the allowed/) });
  });

  it('accepts any certificate of the CA when no names are configured', () => {
    const open = { ...config, allowedNames: [] };
    expect(authenticate(open, { verified: true, commonName: 'anything' }, { 'x-remote-user': ['bob'] })).toMatchObject({ ok: true, user: { username: 'bob', groups: [] } });
  });

  it('refuses a request without a user header', () => {
    expect(authenticate(config, proxy, { 'x-remote-group': ['dev'] })).toMatchObject({ ok: false, reason: expect.stringMatching(/no user header/) });
  });
});
