import { afterEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { setCondition } from './conditions.js';
import { createRootLogger } from './logging.js';
import { REDACTED, clearSecretValues, isSensitiveKey, redactText, redactValue, registerSecretValue } from './redact.js';

afterEach(() => clearSecretValues());

function capture(): { text: () => string; destination: Writable } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { text: () => chunks.join(''), destination };
}

describe('sensitive keys (a class, by pattern)', () => {
  it.each([
    'password', 'adminPassword', 'passwd', 'passphrase', 'token', 'bearerToken', 'accessToken', 'refresh_token', 'secret', 'clientSecret',
    'credentials', 'privateKey', 'private_key', 'client-key-data', 'clientKey', 'apiKey', 'api-key', 'sshKey', 'authorization', 'Authorization',
    'cookie', 'Set-Cookie', 'userData', 'userDataBase64', 'user_data', 'networkData', 'networkDataBase64',
  ])('%s is sensitive', (key) => expect(isSensitiveKey(key)).toBe(true));
  it.each(['secretRef', 'networkDataSecretRef', 'secretName', 'imagePullSecrets', 'name', 'namespace', 'tokenExpirationSeconds', 'data', 'message'])(
    '%s is not (a reference or an ordinary field)',
    (key) => expect(isSensitiveKey(key)).toBe(false),
  );
});

describe('redactText (by shape)', () => {
  it.each([
    ['a PEM private key', 'key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY----- end', 'b3BlbnNzaC1rZXk'],
    ['a cut-off PEM key', 'tail: -----BEGIN RSA PRIVATE KEY-----\nMIIEow', 'MIIEow'],
    ['a bearer token', 'GET / Authorization: Bearer abcdef123456', 'abcdef123456'],
    ['a JWT', 'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl seen', 'eyJzdWIiOiJ4In0'],
    ['a password assignment', 'user: root, password: hunter2 and PASSWORD=hunter2 or "password": "hunter2"', 'hunter2'],
    ['a cloud-config document', 'last lines: #cloud-config\nusers:\n  - name: x\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3Nz]', 'AAAAC3Nz'],
  ])('%s', (_label, text, secret) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  it('leaves ordinary messages alone, and is idempotent', () => {
    const message = 'launcher pod virt-launcher-vm-abcde: init container cd-root exited with code 1: spec.volumes[0].containerDisk.path: "/disk/x" does not exist';
    expect(redactText(message)).toBe(message);
    const once = redactText('password: hunter2, Bearer abcdefgh, #cloud-config\nx: y');
    expect(redactText(once)).toBe(once);
  });
});

describe('redaction by value', () => {
  it('a registered secret is redacted whole and line by line, wherever it appears', () => {
    const userData = '#!/bin/sh\necho the-marker-value-1234 > /dev/null\nexit 0';
    registerSecretValue(userData);
    expect(redactText(`ISO built from ${userData}`)).toBe(`ISO built from ${REDACTED}`);
    expect(redactText('[   3.1] guest: echo the-marker-value-1234 > /dev/null')).not.toContain('the-marker-value-1234');
    // Short lines are not registered on their own ("exit 0" would match too much).
    expect(redactText('exit 0')).toBe('exit 0');
  });
});

describe('redactValue', () => {
  it('replaces sensitive fields at any depth, a Secret data, and secrets inside strings and errors', () => {
    const vmi = { metadata: { name: 'vm1' }, spec: { volumes: [{ name: 'ci', cloudInitNoCloud: { userData: 'x', networkDataSecretRef: { name: 'net' } } }] } };
    const secret = { kind: 'Secret', metadata: { name: 's' }, data: { 'vmi.json': 'e30=' }, stringData: { a: 'b' } };
    const deep = { a: { b: { c: { d: { e: { f: { g: { h: { password: 'p' } } } } } } } } };
    const err = new Error('apply failed: Bearer abcdefgh123');
    const out = JSON.stringify(redactValue({ vmi, secret, deep, err }));
    expect(out).not.toMatch(/"userData":"x"|e30=|"a":"b"|"password":"p"|abcdefgh123/);
    expect(out).toContain('"networkDataSecretRef":{"name":"net"}');
    expect(out).toContain('vm1');
    expect(out).toContain('apply failed');
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a['self'] = a;
    expect(redactValue(a)).toEqual({ name: 'a', self: '[Circular]' });
  });
});

describe('where redaction applies', () => {
  it('log lines: objects, bindings, messages and format arguments', () => {
    const { text, destination } = capture();
    registerSecretValue('registered-secret-value-42');
    const log = createRootLogger({ component: 'test', level: 'info', destination }).child({ headers: { authorization: 'Bearer child-binding-1' } });
    log.info({ vmi: { spec: { volumes: [{ cloudInitNoCloud: { userDataBase64: 'dXNlcg==' } }] } }, token: 'tok-123456' }, 'rendering with password: hunter2');
    log.info('format %s', 'registered-secret-value-42');
    log.error({ err: new Error('failed with -----BEGIN PRIVATE KEY-----\nABCD') }, 'boom');
    const out = text();
    for (const secret of ['child-binding-1', 'dXNlcg==', 'tok-123456', 'hunter2', 'registered-secret-value-42', 'ABCD']) expect(out).not.toContain(secret);
    expect(out).toContain('rendering with password');
    expect(out).toContain('"msg":"boom"');
  });

  it('condition messages', () => {
    const { conditions } = setCondition([], { type: 'Synchronized', status: 'False', reason: 'PodFailed', message: 'last lines: password=hunter2' });
    expect(conditions[0]?.message).toBe(`last lines: password=${REDACTED}`);
  });
});
