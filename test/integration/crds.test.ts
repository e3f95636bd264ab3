// The generated CRDs against a real kube-apiserver: they are accepted and become Established,
// every docs/examples manifest passes server-side strict field validation, invalid manifests are
// rejected naming the field, and `kubectl explain` shows kubevm's descriptions.
// Needs KUBECONFIG (make cluster-up-cp writes it into ${KUBEVM_STATE:-/var/lib/kubevm-local}/env);
// fails, never skips, when no API server is reachable.
//
// The CRDs are applied for real (server-side apply) and left installed: other suites and the
// operator use the same definitions, and deleting a CRD would delete their objects.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { API_RESOURCES, findResource } from '../../runtime/api/index.js';
import { clone, invalidCases, validManifests } from '../support/api-manifests.js';
import { eventually } from '../support/eventually.js';
import { clusterClient, waitForCrdsServed } from './runtime-support.js';

jest.setTimeout(180_000);

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const crdDir = join(repoRoot, 'crds');
const examplesDir = join(repoRoot, 'docs', 'examples');

/** kubectl of the local cluster's Kubernetes version when known, else the one on PATH. */
function kubectlBinary(): string {
  if (process.env['KUBEVM_KUBECTL']) return process.env['KUBEVM_KUBECTL'];
  const envFile = join(process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local', 'env');
  if (existsSync(envFile)) {
    const line = readFileSync(envFile, 'utf8').split('\n').find((entry) => entry.startsWith('KUBEVM_KUBECTL='));
    const path = line?.slice('KUBEVM_KUBECTL='.length).trim();
    if (path && existsSync(path)) return path;
  }
  return 'kubectl';
}

const kubectlPath = kubectlBinary();

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(args: string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(kubectlPath, args, { env: process.env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const result = await kubectl(args, stdin);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr || result.stdout}`);
  return result.stdout;
}

const crdFiles = readdirSync(crdDir).filter((file) => file.endsWith('.yaml')).sort();
const crdNames = API_RESOURCES.map((resource) => `${resource.names.plural}.${resource.names.group}`);
const namespace = `kubevm-crds-${randomBytes(3).toString('hex')}`;

/** A manifest ready for `kubectl create -f -`: namespaced kinds moved into the test namespace. */
function intoTestNamespace(manifest: Record<string, any>): string {
  const resource = findResource(manifest.apiVersion, manifest.kind);
  if (!resource) throw new Error(`not a kubevm kind: ${manifest.apiVersion} ${manifest.kind}`);
  const copy = JSON.parse(JSON.stringify(manifest)) as Record<string, any>;
  copy.metadata = { ...(copy.metadata ?? {}) };
  if (resource.names.scope === 'Namespaced') copy.metadata.namespace = namespace;
  else delete copy.metadata.namespace;
  return JSON.stringify(copy);
}

/** Server-side dry-run create with strict field validation (fieldValidation=Strict). */
function dryRunCreate(manifest: Record<string, any>): Promise<KubectlResult> {
  return kubectl(['create', '--dry-run=server', '--validate=strict', '-o', 'name', '-f', '-'], intoTestNamespace(manifest));
}

let dryRunOutput = '';

beforeAll(async () => {
  if (!process.env['KUBECONFIG']) {
    throw new Error(
      'KUBECONFIG is not set: these tests need a real API server. Run `make cluster-up-cp`, then ' +
        '`source ${KUBEVM_STATE:-/var/lib/kubevm-local}/env && export KUBECONFIG`.',
    );
  }
  const ready = await kubectl(['get', '--raw', '/readyz', '--request-timeout=10s']);
  if (ready.code !== 0) throw new Error(`no reachable API server (KUBECONFIG=${process.env['KUBECONFIG']}): ${ready.stderr}`);
  // Dry run first, so a CRD the API server refuses is reported as such, then install for real.
  dryRunOutput = await kubectlOk(['apply', '--dry-run=server', '-f', crdDir]);
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager=kubevm-crds-test', '-f', crdDir]);
  // Not `kubectl wait`: it fails at once on a CRD too new to have conditions.
  await waitForCrdsServed(clusterClient(), crdNames);
  await kubectlOk(['create', 'namespace', namespace]);
});

afterAll(async () => {
  await kubectl(['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']);
});

describe('the generated CRDs on a real API server', () => {
  it('has one file per kind', () => {
    expect(crdFiles).toEqual(crdNames.map((name) => `${name}.yaml`).sort());
  });

  it('are accepted by kubectl apply --dry-run=server', () => {
    for (const name of crdNames) expect(dryRunOutput).toContain(`customresourcedefinition.apiextensions.k8s.io/${name}`);
  });

  it('are Established with their names accepted (no short name collides)', async () => {
    const out = await kubectlOk(['get', ...crdNames.map((name) => `crd/${name}`), '-o', 'json']);
    const list = JSON.parse(out) as { items: Array<{ metadata: { name: string }; status: { conditions: Array<{ type: string; status: string }> } }> };
    for (const crd of list.items) {
      const conditions = Object.fromEntries(crd.status.conditions.map((condition) => [condition.type, condition.status]));
      expect([crd.metadata.name, conditions['Established'], conditions['NamesAccepted']]).toEqual([crd.metadata.name, 'True', 'True']);
    }
    expect(list.items).toHaveLength(crdNames.length);
  });

  it('serve the short names and categories', async () => {
    await eventually('short names to be served', 30_000, () => kubectlOk(['get', 'vm,vmi,vmim,vmf,vmp', '-n', namespace]).then(() => true));
    const out = await kubectlOk(['api-resources', '--api-group=kubevirt.io', '-o', 'wide']);
    expect(out).toMatch(/virtualmachines\s+vm,vms\s+kubevirt\.io\/v1\s+true\s+VirtualMachine\s+.*all/);
  });

  it('show the printer columns of KubeVirt in kubectl get', async () => {
    const vm = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'columns' },
      spec: {
        runStrategy: 'Halted',
        template: { spec: { domain: { devices: {} }, volumes: [{ name: 'root', containerDisk: { image: 'kubevm/none' } }] } },
      },
    };
    await kubectlOk(['create', '-f', '-'], intoTestNamespace(vm));
    const vms = await kubectlOk(['get', 'vms', '-n', namespace]);
    expect(vms.split('\n')[0]).toMatch(/^NAME\s+AGE\s+STATUS\s+READY\s*$/);
    const wide = await kubectlOk(['get', 'vmis', '-n', namespace, '-o', 'wide', '--no-headers=false']);
    // No VMIs: kubectl prints the "No resources" notice on stderr and nothing on stdout.
    expect(wide).toBe('');
  });
});

describe('docs/examples under strict server-side validation', () => {
  const documents = readdirSync(examplesDir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(examplesDir, file), 'utf8')).map((doc, index) => [`${file}#${index}`, doc.toJS() as Record<string, any>] as const),
    );

  it.each(documents)('%s is accepted', async (_name, manifest) => {
    const result = await dryRunCreate(manifest);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`/${manifest.metadata.name}`);
  });
});

// The same corpus the unit tests judge with zod and with the CRD schema offline.
describe('the manifest corpus, as the unit tests judge it', () => {
  it.each(Object.entries(validManifests))('%s is accepted', async (_name, manifest) => {
    const result = await dryRunCreate(manifest);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  const rejectedByCrd = Object.entries(invalidCases).filter(([, testCase]) => testCase.crdPath !== undefined);
  it.each(rejectedByCrd)('%s is rejected naming the field', async (_name, testCase) => {
    const manifest = clone(testCase.base) as Record<string, any>;
    testCase.mutate(manifest);
    const result = await dryRunCreate(manifest);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(testCase.crdPath);
  });

  // Rules only zod expresses (refinements) are the webhook's to enforce; the API server alone
  // accepts these. This pins down that layering, so moving a rule is a visible change. (The
  // integration stage runs before kubevm and its webhooks are installed.)
  const refinementsOnly = Object.entries(invalidCases).filter(([, testCase]) => testCase.crdPath === undefined);
  it.each(refinementsOnly)('%s passes the CRD schema (the webhook rejects it)', async (_name, testCase) => {
    const manifest = clone(testCase.base) as Record<string, any>;
    testCase.mutate(manifest);
    const result = await dryRunCreate(manifest);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('invalid manifests are rejected by the API server with its own wording', () => {
  const base = () =>
    parseAllDocuments(readFileSync(join(examplesDir, 'vm-containerdisk-cloudinit.yaml'), 'utf8'))[0]!.toJS() as Record<string, any>;

  it('an unknown field', async () => {
    const vm = base();
    vm.spec.template.spec.domain.foo = 'bar';
    const result = await dryRunCreate(vm);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('unknown field "spec.template.spec.domain.foo"');
  });

  it('a value outside an enum', async () => {
    const vm = base();
    vm.spec.runStrategy = 'Sometimes';
    const result = await dryRunCreate(vm);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/spec\.runStrategy: Unsupported value: "Sometimes": supported values: "Always", "Halted", "Manual", "RerunOnFailure", "Once"/);
  });

  it('two disks with the same name', async () => {
    const vm = base();
    vm.spec.template.spec.domain.devices.disks.push({ name: 'containerdisk', cdrom: {} });
    const result = await dryRunCreate(vm);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/spec\.template\.spec\.domain\.devices\.disks\[2\]: Duplicate value/);
  });
});

describe('kubectl explain', () => {
  it('shows kubevm\'s description of virtualmachine.spec.runStrategy', async () => {
    // The OpenAPI document is republished shortly after a CRD changes.
    const out = await eventually('kubectl explain to show the CRD description', 60_000, async () => {
      const text = await kubectlOk(['explain', 'virtualmachine.spec.runStrategy']);
      if (!text.includes('When the VM runs.')) throw new Error(`not yet: ${text}`);
      return text;
    });
    expect(out).toContain('GROUP:      kubevirt.io');
    expect(out).toMatch(/RerunOnFailure/);
  });

  it('explains nested fields too', async () => {
    const out = await kubectlOk(['explain', 'vmi.spec.domain.devices.disks.cache']);
    expect(out).toContain('The host page cache mode');
  });
});
