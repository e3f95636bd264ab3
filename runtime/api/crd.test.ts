// The generated CRDs: structural, named and presented as KubeVirt's, documented on every field,
// deterministic, and in sync with the files checked in.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../../scripts/lib/generated.js';
import { API_RESOURCES, crdSchema, renderCustomResourceDefinition, structuralViolations, UNSUPPORTED_FIELDS, type JSONSchemaProps } from './index.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function byKind(kind: string) {
  const resource = API_RESOURCES.find((candidate) => candidate.names.kind === kind);
  if (!resource) throw new Error(kind);
  return resource;
}

/** Walks every property of a schema with its path (`spec.volumes[].name`). */
function* fields(schema: JSONSchemaProps, path = ''): Generator<[string, JSONSchemaProps]> {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const childPath = path === '' ? name : `${path}.${name}`;
    yield [childPath, child];
    yield* fields(child, childPath);
  }
  if (schema.items) yield* fields(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === 'object') yield* fields(schema.additionalProperties, `${path}.*`);
}

function lookup(schema: JSONSchemaProps, path: string): JSONSchemaProps | undefined {
  let node: JSONSchemaProps | undefined = schema;
  for (const part of path.split('.')) {
    if (!node) return undefined;
    const name = part.endsWith('[]') ? part.slice(0, -2) : part;
    node = node.properties?.[name];
    if (part.endsWith('[]')) node = node?.items;
  }
  return node;
}

describe.each(API_RESOURCES.map((resource) => [resource.names.kind, resource] as const))('%s CRD', (kind, resource) => {
  const schema = crdSchema(resource);

  it('is structural', () => {
    expect(structuralViolations(schema)).toEqual([]);
  });

  it('describes every field (so kubectl explain has something to say)', () => {
    const undocumented = [...fields(schema)].filter(([path, node]) => path !== 'metadata' && !node.description).map(([path]) => path);
    expect(undocumented).toEqual([]);
  });

  it('declares metadata as a plain object and spec as required', () => {
    expect(schema.properties?.metadata).toEqual({ type: 'object' });
    expect(schema.required).toContain('spec');
  });

  it('leaves unknown fields open only where KubeVirt does (VM template metadata)', () => {
    const open = [...fields(schema)].filter(([, node]) => node['x-kubernetes-preserve-unknown-fields']).map(([path]) => path);
    expect(open).toEqual(kind === 'VirtualMachine' ? ['spec.template.metadata'] : []);
  });

  it('bakes in no server-side defaults', () => {
    expect([...fields(schema)].filter(([, node]) => node.default !== undefined)).toEqual([]);
  });

  it('does not contain the KubeVirt fields listed as unsupported', () => {
    for (const path of UNSUPPORTED_FIELDS[kind] ?? []) {
      expect([path, lookup(schema, path)]).toEqual([path, undefined]);
    }
  });

  it('is a v1 CRD for the right group, scope and names', () => {
    const crd = renderCustomResourceDefinition(resource) as any;
    expect(crd.metadata.name).toBe(`${resource.names.plural}.${resource.names.group}`);
    expect(crd.spec.scope).toBe(resource.names.scope);
    expect(crd.spec.versions).toHaveLength(1);
    expect(crd.spec.versions[0].served && crd.spec.versions[0].storage).toBe(true);
  });
});

describe('names and columns as KubeVirt', () => {
  const crd = (kind: string) => renderCustomResourceDefinition(byKind(kind)) as any;

  it.each([
    ['VirtualMachine', 'kubevirt.io', 'v1', 'virtualmachines', ['vm', 'vms'], ['all'], 'Namespaced'],
    ['VirtualMachineInstance', 'kubevirt.io', 'v1', 'virtualmachineinstances', ['vmi', 'vmis'], ['all'], 'Namespaced'],
    ['VirtualMachineInstanceMigration', 'kubevirt.io', 'v1', 'virtualmachineinstancemigrations', ['vmim', 'vmims'], ['all'], 'Namespaced'],
    ['KubeVirt', 'kubevirt.io', 'v1', 'kubevirts', ['kv', 'kvs'], ['all'], 'Namespaced'],
    ['VirtualMachineInstancetype', 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineinstancetypes', ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'], ['all'], 'Namespaced'],
    ['VirtualMachineClusterInstancetype', 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineclusterinstancetypes', ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'], undefined, 'Cluster'],
    ['VirtualMachinePreference', 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachinepreferences', ['vmpref', 'vmprefs', 'vmp', 'vmps'], ['all'], 'Namespaced'],
    ['VirtualMachineClusterPreference', 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineclusterpreferences', ['vmcp', 'vmcps'], undefined, 'Cluster'],
    ['MigrationPolicy', 'migrations.kubevirt.io', 'v1alpha1', 'migrationpolicies', undefined, undefined, 'Cluster'],
  ])('%s', (kind, group, version, plural, shortNames, categories, scope) => {
    const spec = crd(kind).spec;
    expect(spec.group).toBe(group);
    expect(spec.versions[0].name).toBe(version);
    expect(spec.names.plural).toBe(plural);
    expect(spec.names.shortNames).toEqual(shortNames);
    expect(spec.names.categories).toEqual(categories);
    expect(spec.scope).toBe(scope);
  });

  it('VirtualMachine: Age, Status, Ready and a status subresource', () => {
    const version = crd('VirtualMachine').spec.versions[0];
    expect(version.additionalPrinterColumns.map((column: { name: string }) => column.name)).toEqual(['Age', 'Status', 'Ready']);
    expect(version.additionalPrinterColumns[1].jsonPath).toBe('.status.printableStatus');
    expect(version.subresources).toEqual({ status: {} });
  });

  it('VirtualMachineInstance: Age, Phase, IP, NodeName, Ready, and wide Live-Migratable, Paused', () => {
    const columns = crd('VirtualMachineInstance').spec.versions[0].additionalPrinterColumns;
    expect(columns.map((column: { name: string }) => column.name)).toEqual(['Age', 'Phase', 'IP', 'NodeName', 'Ready', 'Live-Migratable', 'Paused']);
    expect(columns.filter((column: { priority?: number }) => column.priority === 1).map((column: { name: string }) => column.name)).toEqual(['Live-Migratable', 'Paused']);
  });

  it('VirtualMachineInstanceMigration: Phase, VMI', () => {
    const columns = crd('VirtualMachineInstanceMigration').spec.versions[0].additionalPrinterColumns;
    expect(columns.map((column: { jsonPath: string }) => column.jsonPath)).toEqual(['.status.phase', '.spec.vmiName']);
  });

  it('instancetypes and preferences have no status subresource, like KubeVirt', () => {
    for (const kind of ['VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype', 'VirtualMachinePreference', 'VirtualMachineClusterPreference']) {
      expect(crd(kind).spec.versions[0].subresources).toBeUndefined();
    }
  });

  it('uses the int-or-string form for quantities and list-maps keyed by name for disks and volumes', () => {
    const schema = crdSchema(byKind('VirtualMachineInstance'));
    const guest = lookup(schema, 'spec.domain.memory.guest');
    expect(guest?.['x-kubernetes-int-or-string']).toBe(true);
    expect(guest?.anyOf).toEqual([{ type: 'integer' }, { type: 'string' }]);
    for (const path of ['spec.domain.devices.disks', 'spec.domain.devices.interfaces', 'spec.volumes', 'spec.networks']) {
      const list = lookup(schema, path);
      expect([path, list?.['x-kubernetes-list-type'], list?.['x-kubernetes-list-map-keys']]).toEqual([path, 'map', ['name']]);
    }
  });

  it('explains runStrategy in our words', () => {
    expect(lookup(crdSchema(byKind('VirtualMachine')), 'spec.runStrategy')?.description).toMatch(/^When the VM runs\./);
  });
});

describe('structuralViolations', () => {
  it('finds what makes a schema non-structural', () => {
    const bad: JSONSchemaProps = {
      type: 'object',
      properties: {
        untyped: { description: 'x' },
        both: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } },
        union: { anyOf: [{ type: 'string' }, { type: 'boolean' }] },
        list: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } }, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
      },
      required: ['missing'],
    };
    expect(structuralViolations(bad)).toEqual(
      expect.arrayContaining([
        'untyped: no type',
        'both: additionalProperties beside properties',
        'union: anyOf other than the int-or-string form',
        'list: list-map key name must be a required field of the items',
        '<root>: required field missing is not declared',
      ]),
    );
  });
});

describe('generated files', () => {
  it('are deterministic', () => {
    expect(generatedFiles()).toEqual(generatedFiles());
  });

  it('are up to date in the repository (run `make generate` otherwise)', () => {
    for (const [path, content] of generatedFiles()) {
      expect([path, readFileSync(join(repoRoot, path), 'utf8') === content]).toEqual([path, true]);
    }
  });

  it('document every kind in docs/api.md, with enum values', () => {
    const docs = generatedFiles().get('docs/api.md') ?? '';
    for (const resource of API_RESOURCES) expect(docs).toContain(`## ${resource.names.kind}`);
    expect(docs).toContain('`spec.runStrategy`');
    expect(docs).toContain('`RerunOnFailure`');
    expect(docs).toContain('- `spec.template.spec.volumes[].dataVolume`');
  });
});
