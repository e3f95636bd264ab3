// The mutating webhook's logic: the defaults of runtime/vmi-defaults.ts as a JSONPatch for a VMI
// being created, nothing for anything else. The patch is applied here by RFC 6902's rules for the
// two operations it uses; the e2e suite (test/e2e/admission.test.ts) has the kube-apiserver apply it.
import { describe, expect, it } from '@jest/globals';
import { VirtualMachineInstanceSchema } from '../../runtime/api/index.js';
import { firmwareUUID } from '../../runtime/vmi-defaults.js';
import { clone, validManifests } from '../../test/support/api-manifests.js';
import type { AdmissionContext, AdmissionRequest } from './admit.js';
import { admit } from './admit.js';
import type { JsonPatchOperation } from './mutate.js';
import { handleMutationReview, mutate } from './mutate.js';

type Json = Record<string, unknown>;

function applyPatch(document: Json, operations: readonly JsonPatchOperation[]): Json {
  const result = clone(document);
  for (const { op, path, value } of operations) {
    const tokens = path.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop() ?? '';
    let parent: Json = result;
    for (const token of tokens) {
      const next = parent[token];
      if (typeof next !== 'object' || next === null) throw new Error(`${op} ${path}: ${token} does not exist`);
      parent = next as Json;
    }
    if (op === 'add' && last in parent && !Array.isArray(parent)) throw new Error(`add ${path}: already set (an add would overwrite a user's value)`);
    if (op === 'replace' && !(last in parent)) throw new Error(`replace ${path}: not set`);
    parent[last] = clone(value);
  }
  return result;
}

const vmiRequest = (object: unknown, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: 'u1',
  kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachineInstance' },
  operation: 'CREATE',
  namespace: 'ns',
  object,
  ...overrides,
});

function patchOf(request: AdmissionRequest): JsonPatchOperation[] | undefined {
  const response = mutate(request);
  expect(response.allowed).toBe(true);
  if (response.patch === undefined) return undefined;
  expect(response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(response.patch, 'base64').toString()) as JsonPatchOperation[];
}

const bare = (): Json => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'bare', namespace: 'ns' },
  spec: {
    domain: { memory: { guest: '128Mi' }, devices: { disks: [{ name: 'root' }, { name: 'data', disk: {} }, { name: 'iso', cdrom: { readonly: true } }] } },
    volumes: [
      { name: 'root', containerDisk: { image: 'quay.io/containerdisks/cirros@sha256:' + '0'.repeat(64) } },
      { name: 'data', emptyDisk: { capacity: '1Gi' } },
      { name: 'iso', emptyDisk: { capacity: '1Gi' } },
    ],
  },
});

describe('mutating webhook', () => {
  it('writes the defaults into a VMI being created, adding only what is unset', async () => {
    const object = bare();
    const patch = patchOf(vmiRequest(object));
    expect(patch).toBeDefined();
    const patched = applyPatch(object, patch ?? []);
    expect(patched['spec']).toEqual({
      domain: {
        memory: { guest: '128Mi' },
        machine: { type: 'q35' },
        firmware: { uuid: firmwareUUID('bare') },
        devices: {
          disks: [
            { name: 'root', disk: { bus: 'virtio' } },
            { name: 'data', disk: { bus: 'virtio' } },
            { name: 'iso', cdrom: { readonly: true, bus: 'sata' } },
          ],
          interfaces: [{ name: 'default', masquerade: {} }],
        },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: (object['spec'] as Json)['volumes'],
    });
    expect(VirtualMachineInstanceSchema.safeParse(patched).success).toBe(true);
    // The validating webhook, which runs after this one, admits the result (it reads nothing from
    // the cluster for this VMI: a lookup would fail the test).
    const noCluster = new Proxy({}, { get: (_t, key) => (key === 'isKubevmComponent' ? () => false : () => Promise.reject(new Error(`unexpected lookup ${String(key)}`))) }) as AdmissionContext;
    expect(await admit(vmiRequest(patched), noCluster)).toMatchObject({ allowed: true });
    // Defaulting is idempotent: the defaulted VMI (what the controller renders) gets no patch.
    expect(patchOf(vmiRequest(patched))).toBeUndefined();
  });

  it('keeps every value the VMI sets', () => {
    const object = bare();
    const spec = object['spec'] as { domain: Json & { devices: Json }; networks?: unknown };
    spec.domain['machine'] = { type: 'pc-q35-9.0' };
    spec.domain['firmware'] = { uuid: '11111111-2222-3333-4444-555555555555' };
    spec.domain.devices['disks'] = [{ name: 'root', disk: { bus: 'sata' } }, { name: 'data', lun: {} }, { name: 'iso', cdrom: { bus: 'scsi' } }];
    spec.domain.devices['interfaces'] = [{ name: 'net', bridge: {} }];
    spec.networks = [{ name: 'net', pod: {} }];
    expect(patchOf(vmiRequest(object))).toBeUndefined();
  });

  it('names the default interface after the pod network, and adds none when told not to or without one', () => {
    const named = bare();
    (named['spec'] as Json)['networks'] = [{ name: 'podnet', pod: {} }];
    const patched = applyPatch(named, patchOf(vmiRequest(named)) ?? []);
    expect((patched['spec'] as { domain: { devices: Json } }).domain.devices['interfaces']).toEqual([{ name: 'podnet', masquerade: {} }]);
    expect((patched['spec'] as Json)['networks']).toEqual([{ name: 'podnet', pod: {} }]);

    const off = bare();
    ((off['spec'] as { domain: { devices: Json } }).domain.devices)['autoattachPodInterface'] = false;
    const offPatched = applyPatch(off, patchOf(vmiRequest(off)) ?? []);
    expect((offPatched['spec'] as { domain: { devices: Json } }).domain.devices['interfaces']).toBeUndefined();
    expect((offPatched['spec'] as Json)['networks']).toBeUndefined();

    const none = bare();
    (none['spec'] as Json)['networks'] = [];
    expect((applyPatch(none, patchOf(vmiRequest(none)) ?? [])['spec'] as { domain: { devices: Json } }).domain.devices['interfaces']).toBeUndefined();
  });

  it('gives no firmware UUID while the name is not known (generateName)', () => {
    const object = bare();
    object['metadata'] = { generateName: 'bare-', namespace: 'ns' };
    const patched = applyPatch(object, patchOf(vmiRequest(object)) ?? []);
    expect((patched['spec'] as { domain: Json }).domain['firmware']).toBeUndefined();
    expect((patched['spec'] as { domain: Json }).domain['machine']).toEqual({ type: 'q35' });
  });

  it('never mutates a VirtualMachine, an update, or an object the validator will refuse', () => {
    const vm = clone(validManifests['quickstartVM']);
    expect(patchOf(vmiRequest(vm, { kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachine' } }))).toBeUndefined();
    expect(patchOf(vmiRequest(bare(), { operation: 'UPDATE', oldObject: bare() }))).toBeUndefined();
    const invalid = bare();
    (invalid['spec'] as Json)['unknownField'] = true;
    expect(patchOf(vmiRequest(invalid))).toBeUndefined();
  });

  it('refuses what is not an AdmissionReview, keeping the uid', () => {
    const review = handleMutationReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x' } });
    expect(review.response).toMatchObject({ uid: 'x', allowed: false, status: { code: 400 } });
    expect(handleMutationReview(undefined).response.allowed).toBe(false);
    const ok = handleMutationReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: vmiRequest(bare()) });
    expect(ok).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u1', allowed: true, patchType: 'JSONPatch' } });
  });
});
