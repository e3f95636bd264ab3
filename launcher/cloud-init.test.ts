import fc from 'fast-check';
import { parse } from 'yaml';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildCloudInitIso, cloudInitFiles, noCloudMetaData } from './cloud-init.js';
import type { LauncherVmi, LauncherVolume } from './vmi.js';

const vmi: LauncherVmi = { metadata: { name: 'vm1', namespace: 'ns1' }, spec: { domain: { devices: {} } } };
let dir: string;
const secrets = { userData: (v: string) => path.join(dir, 'secret', v), networkData: (v: string) => path.join(dir, 'secret', `${v}-ndata`) };

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kubevm-ci-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cloud-init NoCloud', () => {
  it('writes KubeVirt\'s meta-data', () => {
    expect(noCloudMetaData(vmi)).toBe('instance-id: vm1.ns1\nlocal-hostname: vm1\n');
    expect(noCloudMetaData({ ...vmi, spec: { ...vmi.spec, hostname: 'web' } })).toBe('instance-id: vm1.ns1\nlocal-hostname: web\n');
    // A hostname no admission checked stays one value: it cannot add a meta-data key.
    expect(noCloudMetaData({ ...vmi, spec: { ...vmi.spec, hostname: 'x\ninstance-id: other' } })).toBe('instance-id: vm1.ns1\nlocal-hostname: "x\\ninstance-id: other"\n');
    expect(noCloudMetaData({ ...vmi, spec: { ...vmi.spec, hostname: 'null' } })).toBe('instance-id: vm1.ns1\nlocal-hostname: "null"\n');
  });

  it('keeps any hostname and name one string in meta-data (property, parsed as YAML)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (hostname, name) => {
        const doc = parse(noCloudMetaData({ ...vmi, metadata: { ...vmi.metadata, name }, spec: { ...vmi.spec, hostname } })) as Record<string, unknown>;
        expect(doc).toEqual({ 'instance-id': `${name}.ns1`, 'local-hostname': hostname });
      }),
      { numRuns: 2000 },
    );
  });

  it('reads user-data inline, base64 or from a mounted Secret', async () => {
    const vol = (src: LauncherVolume['cloudInitNoCloud']): LauncherVolume => ({ name: 'ci', cloudInitNoCloud: src });
    expect((await cloudInitFiles(vmi, vol({ userData: '#cloud-config\n' }), 0, secrets)).userData).toBe('#cloud-config\n');
    const b64 = Buffer.from('#!/bin/sh\necho hi\n').toString('base64');
    const files = await cloudInitFiles(vmi, vol({ userDataBase64: b64, networkData: 'version: 2\n' }), 0, secrets);
    expect(files).toEqual({ metaData: 'instance-id: vm1.ns1\nlocal-hostname: vm1\n', userData: '#!/bin/sh\necho hi\n', networkConfig: 'version: 2\n' });
    await mkdir(path.join(dir, 'secret', 'ci'), { recursive: true });
    await mkdir(path.join(dir, 'secret', 'ci-ndata'), { recursive: true });
    await writeFile(path.join(dir, 'secret', 'ci', 'userData'), 'from-secret');
    await writeFile(path.join(dir, 'secret', 'ci-ndata', 'networkdata'), 'net-from-secret');
    const fromSecret = await cloudInitFiles(vmi, vol({ secretRef: { name: 's' }, networkDataSecretRef: { name: 'n' } }), 0, secrets);
    expect([fromSecret.userData, fromSecret.networkConfig]).toEqual(['from-secret', 'net-from-secret']);
    await expect(cloudInitFiles(vmi, vol({ userDataBase64: 'not base64!' }), 3, secrets)).rejects.toThrow('spec.volumes[3].cloudInitNoCloud.userDataBase64: not valid base64');
    await expect(cloudInitFiles(vmi, vol({ userData: 'a', userDataBase64: 'YQ==' }), 0, secrets)).rejects.toThrow('only one of userData, userDataBase64, secretRef');
    await rm(path.join(dir, 'secret', 'ci', 'userData'));
    await expect(cloudInitFiles(vmi, vol({ secretRef: { name: 's' } }), 0, secrets)).rejects.toThrow('has none of the keys userdata, userData');
  });

  it('builds an ISO 9660 volume labelled cidata holding the three files', async () => {
    const iso = path.join(dir, 'noCloud.iso');
    await buildCloudInitIso({ metaData: 'instance-id: a\n', userData: '#!/bin/sh\necho hi\n', networkConfig: 'version: 2\n' }, iso);
    // The volume id is at byte 40 of the primary volume descriptor (sector 16).
    const head = await readFile(iso);
    expect(head.subarray(16 * 2048 + 1, 16 * 2048 + 6).toString()).toBe('CD001');
    expect(head.subarray(16 * 2048 + 40, 16 * 2048 + 46).toString()).toBe('cidata');
    const out = path.join(dir, 'out');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out], { stdio: 'ignore' });
    expect(await readFile(path.join(out, 'meta-data'), 'utf8')).toBe('instance-id: a\n');
    expect(await readFile(path.join(out, 'user-data'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(await readFile(path.join(out, 'network-config'), 'utf8')).toBe('version: 2\n');
  });
});
