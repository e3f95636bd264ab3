// Manifests modelled on KubeVirt's user guide, judged by the zod schemas and by the generated CRD
// schemas alike: valid ones pass both unchanged, invalid ones fail both naming the same field.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { API_RESOURCES, crdSchema, findResource, validateManifest, type ApiResource } from './index.js';
import { checkAgainstCrdSchema } from './openapi-check.js';
import { clone, invalidCases, validManifests } from '../../test/support/api-manifests.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const examplesDir = join(repoRoot, 'docs', 'examples');

function resourceOf(manifest: { apiVersion: string; kind: string }): ApiResource {
  const resource = findResource(manifest.apiVersion, manifest.kind);
  if (!resource) throw new Error(`no resource for ${manifest.apiVersion} ${manifest.kind}`);
  return resource;
}

function crdErrors(manifest: { apiVersion: string; kind: string }): string[] {
  return checkAgainstCrdSchema(crdSchema(resourceOf(manifest)), manifest);
}

describe('valid manifests', () => {
  it.each(Object.entries(validManifests))('%s is accepted by zod unchanged and by the CRD schema', (_name, manifest) => {
    const result = validateManifest(manifest);
    expect(result).toEqual({ ok: true, value: manifest });
    expect(crdErrors(manifest)).toEqual([]);
  });

  it.each(Object.entries(validManifests))('%s round-trips: parse, serialise, parse gives the same object', (_name, manifest) => {
    const schema = resourceOf(manifest).schema;
    const first = schema.parse(manifest);
    const second = schema.parse(JSON.parse(JSON.stringify(first)));
    expect(second).toEqual(first);
  });
});

describe('docs/examples', () => {
  // Recursive: docs/examples/local/ holds the manifests `make up` applies on the local cluster.
  const files = readdirSync(examplesDir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.yaml')).sort();

  it('has the examples a user starts from', () => {
    const kinds = files.flatMap((file) =>
      parseAllDocuments(readFileSync(join(examplesDir, file), 'utf8')).map((doc) => (doc.toJS() as { kind: string }).kind),
    );
    for (const kind of ['VirtualMachine', 'VirtualMachineInstancetype', 'VirtualMachinePreference', 'VirtualMachineInstanceMigration', 'MigrationPolicy', 'KubeVirt']) {
      expect(kinds).toContain(kind);
    }
  });

  it.each(files)('%s is valid for zod and for the CRD schema', (file) => {
    const docs = parseAllDocuments(readFileSync(join(examplesDir, file), 'utf8'));
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      expect(doc.errors).toEqual([]);
      const manifest = doc.toJS() as { apiVersion: string; kind: string };
      expect(validateManifest(manifest)).toEqual({ ok: true, value: manifest });
      expect(crdErrors(manifest)).toEqual([]);
    }
  });
});

describe('invalid manifests', () => {
  it.each(Object.entries(invalidCases))('%s is rejected naming the field', (_name, testCase) => {
    const manifest = clone(testCase.base) as any;
    testCase.mutate(manifest);
    const result = validateManifest(manifest);
    // One problem, one message: nothing else piles up beside the one that names the field.
    expect(result).toEqual({ ok: false, errors: [testCase.message] });
    const errors = crdErrors(manifest);
    if (testCase.crdPath === undefined) {
      expect(errors).toEqual([]);
    } else {
      expect(errors.some((error) => error.startsWith(`${testCase.crdPath}:`))).toBe(true);
    }
  });
});

describe('metadata', () => {
  it('is loose: fields the API server owns pass through untouched', () => {
    const manifest = clone(validManifests.masqueradeVMI) as any;
    manifest.metadata = { ...manifest.metadata, uid: 'u', resourceVersion: '7', generation: 3, managedFields: [{ manager: 'kubectl' }], selfLink: 'legacy' };
    expect(validateManifest(manifest)).toEqual({ ok: true, value: manifest });
  });

  it('still types what controllers read', () => {
    const manifest = clone(validManifests.masqueradeVMI) as any;
    manifest.metadata.labels = { a: 1 };
    const result = validateManifest(manifest);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContain('metadata.labels.a: expected string, got number');
  });
});

describe('validateManifest', () => {
  it('refuses kinds kubevm does not serve', () => {
    const result = validateManifest({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachinePool' });
    expect(result.ok).toBe(false);
  });

  it('knows every resource by apiVersion and kind', () => {
    for (const resource of API_RESOURCES) {
      expect(findResource(`${resource.names.group}/${resource.names.version}`, resource.names.kind)).toBe(resource);
    }
  });
});
