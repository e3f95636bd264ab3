// The Helm chart (charts/kubevm) with Helm itself, built from its Go module by
// charts/build-helm.sh (cached in ~/.cache/kubevm; a cold build takes ~8 minutes):
//   helm lint --strict is clean;
//   helm template renders the operator exactly as deploy/kubevm-operator.yaml (one source), and
//   values reach the objects (image, replicas, the KubeVirt CR's spec);
//   a value the schema does not know is refused, naming it;
//   every rendered object passes a server-side dry-run on the real API server.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import { run } from '../cluster/cluster-env.js';
import { eventually } from '../support/eventually.js';
import { clusterClient, requireCluster, useLocalClusterKubeconfig } from './runtime-support.js';

jest.setTimeout(900_000);
useLocalClusterKubeconfig();

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const chart = join(repo, 'charts', 'kubevm');
let helm: string;
let admin: KubeClient;

interface Rendered extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

function documents(text: string): Rendered[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Rendered | null)
    .filter((obj): obj is Rendered => obj !== null);
}

async function helmRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(helm, args, { timeoutMs: 120_000 });
}

async function template(...sets: string[]): Promise<Rendered[]> {
  const res = await helmRun(['template', 'kubevm', chart, '--namespace', 'kubevirt', ...sets.flatMap((set) => ['--set', set])]);
  if (res.code !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  return documents(res.stdout);
}

const descriptors: Record<string, ResourceDescriptor> = {
  ...MANAGED_KINDS,
  Job: { group: 'batch', version: 'v1', resource: 'jobs', kind: 'Job', namespaced: true },
  KubeVirt: { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true },
  Namespace: coreResources.namespaces,
};

beforeAll(async () => {
  const built = await run('bash', [join(repo, 'charts', 'build-helm.sh')], { timeoutMs: 1_800_000 });
  if (built.code !== 0) throw new Error(`charts/build-helm.sh failed: ${built.stderr}`);
  helm = built.stdout.trim();
  admin = clusterClient();
  await requireCluster(admin);
});

afterAll(() => admin?.close());

describe('charts/kubevm', () => {
  it('passes helm lint --strict', async () => {
    const res = await helmRun(['lint', '--strict', chart]);
    expect(res.stderr + res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(res.code).toBe(0);
  });

  it('renders the operator exactly as deploy/kubevm-operator.yaml does', async () => {
    const fromChart = (await template()).filter((obj) => obj.kind !== 'KubeVirt' && obj.kind !== 'Job');
    const fromDeploy = documents(readFileSync(join(repo, 'deploy', 'kubevm-operator.yaml'), 'utf8')).filter((obj) => obj.kind !== 'Namespace' && obj.kind !== 'CustomResourceDefinition');
    expect(fromChart).toEqual(fromDeploy);
  });

  it('puts values where they belong and refuses one it does not know', async () => {
    const objects = await template('image.registry=registry.example/kubevm', 'image.tag=9.9.9', 'operator.replicas=3', 'kubevirt.spec.configuration.developerConfiguration.useEmulation=true');
    const operator = objects.find((obj) => obj.kind === 'Deployment') as Rendered & { spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } } };
    expect(operator.spec.replicas).toBe(3);
    expect(operator.spec.template.spec.containers[0]?.image).toBe('registry.example/kubevm/operator:9.9.9');
    const kv = objects.find((obj) => obj.kind === 'KubeVirt') as Rendered & { spec: Record<string, unknown> };
    expect(kv.spec).toMatchObject({ imageRegistry: 'registry.example/kubevm', imageTag: '9.9.9', configuration: { developerConfiguration: { useEmulation: true } } });
    expect((await template('kubevirt.create=false')).some((obj) => obj.kind === 'KubeVirt')).toBe(false);
    const refused = await helmRun(['template', 'kubevm', chart, '--set', 'kubevirt.spec.configuration.developerConfiguration.useEmulaton=true']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('useEmulaton');
  });

  it('renders objects the real API server accepts (server-side dry-run)', async () => {
    // Helm installs crds/ before the templates; so does this test, for real (CRDs are cluster-wide and idempotent).
    for (const file of readdirSync(join(chart, 'crds'))) {
      for (const crd of documents(readFileSync(join(chart, 'crds', file), 'utf8'))) {
        await admin.resource<Rendered>(descriptors['CustomResourceDefinition'] as ResourceDescriptor).patch(crd.metadata.name, undefined, crd, 'apply', { fieldManager: 'kubevm-chart-test', force: true });
      }
    }
    await eventually('the KubeVirt CRD to be served', 30_000, async () => {
      await admin.resource(descriptors['KubeVirt'] as ResourceDescriptor).list({ limit: 1 });
      return true;
    });
    const namespaces = admin.resource<Rendered>(descriptors['Namespace'] as ResourceDescriptor);
    if (!(await namespaces.find('kubevirt'))) await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } });
    const refusals: string[] = [];
    for (const obj of await template()) {
      const descriptor = descriptors[obj.kind];
      if (!descriptor) throw new Error(`no descriptor for ${obj.kind}`);
      try {
        await admin.resource<Rendered>(descriptor).patch(obj.metadata.name, obj.metadata.namespace, obj, 'apply', { fieldManager: 'helm', force: true, dryRun: true });
      } catch (err) {
        refusals.push(`${obj.kind} ${obj.metadata.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    expect(refusals).toEqual([]);
  });
});
