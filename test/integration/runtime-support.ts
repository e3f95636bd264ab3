// Shared setup for the runtime's integration tests. They run against the real kube-apiserver of
// the local cluster (make cluster-up-cp writes KUBECONFIG into ${KUBEVM_STATE}/env) and fail,
// rather than skip, when no cluster is reachable.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { HttpMethod } from '@kubernetes/client-node';
import { KubeClient, KubeConfig, coreResources, isNotFound } from '../../runtime/kube.js';
import type { KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { CrdFinalizerRetrier } from '../../operator/crd-deletion.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import { silentLogger } from '../../runtime/logging.js';
import { eventually } from '../support/eventually.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A setting of the local cluster: the environment's, else the one `make cluster-up` wrote into ${KUBEVM_STATE}/env. */
export function localClusterSetting(name: string): string | undefined {
  if (process.env[name]) return process.env[name];
  const envFile = join(process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local', 'env');
  if (!existsSync(envFile)) return undefined;
  const line = readFileSync(envFile, 'utf8').split('\n').find((entry) => entry.startsWith(`${name}=`));
  return line?.slice(name.length + 1).trim() || undefined;
}

/** Sets KUBECONFIG from the local cluster's env file when the environment has none (for code that reads it itself). */
export function useLocalClusterKubeconfig(): void {
  const path = localClusterSetting('KUBECONFIG');
  if (path) process.env['KUBECONFIG'] = path;
}

export function clusterClient(): KubeClient {
  const path = process.env['KUBECONFIG'];
  if (!path) {
    throw new Error(
      'KUBECONFIG is not set: these tests need a real API server. Run `make cluster-up-cp`, then ' +
        '`source ${KUBEVM_STATE:-/var/lib/kubevm-local}/env && export KUBECONFIG`.',
    );
  }
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return new KubeClient(kubeConfig);
}

/** Throws unless the API server answers /readyz. */
export async function requireCluster(client: KubeClient): Promise<void> {
  try {
    await client.request(HttpMethod.GET, '/readyz', { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`no reachable API server at ${client.kubeConfig.getCurrentCluster()?.server}: ${detail}`, { cause: err });
  }
}

/** Suites that start their own controller: an installed one would act on their objects too. */
export async function requireNoInstalledController(client: KubeClient): Promise<void> {
  if (await client.resource<KubeObject>(MANAGED_KINDS.Deployment).find('kubevm-controller', 'kubevirt')) {
    throw new Error('kubevm is installed (deployment kubevirt/kubevm-controller): run the integration suites before installing it, or uninstall it first');
  }
}

export async function createTestNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await client.resource<KubeObject>(coreResources.namespaces).create({ metadata: { name, labels: { 'kubevm.io/test': 'runtime' } } });
  return name;
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  try {
    await client.resource<KubeObject>(coreResources.namespaces).delete(name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const testGroup = 'runtimetest.kubevm.io';

/** A throwaway namespaced custom resource with a status subresource, for tests only. */
export function testResource(plural: string, kind: string): ResourceDescriptor {
  return { group: testGroup, version: 'v1', resource: plural, kind, namespaced: true };
}

interface CrdStatus extends KubeObject {
  status?: { conditions?: Array<{ type: string; status: string }> };
}

export async function ensureTestCrd(client: KubeClient, descriptor: ResourceDescriptor): Promise<void> {
  const name = `${descriptor.resource}.${descriptor.group}`;
  const crdClient = client.resource<CrdStatus>(MANAGED_KINDS.CustomResourceDefinition);
  const body = {
    metadata: { name, labels: { 'kubevm.io/test': 'runtime' } },
    spec: {
      group: descriptor.group,
      scope: 'Namespaced',
      names: { plural: descriptor.resource, singular: descriptor.kind.toLowerCase(), kind: descriptor.kind, listKind: `${descriptor.kind}List` },
      versions: [
        {
          name: descriptor.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  } as KubeObject;
  const existing = await crdClient.find(name);
  if (!existing || existing.metadata?.deletionTimestamp) {
    if (existing) await waitForCrdDeletion(client, name);
    await crdClient.create(body);
  }
  await eventually(`CRD ${name} to be established`, 30_000, async () => ((await crdClient.find(name))?.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'));
  // Established can precede the resource being served by a moment.
  await eventually(`${name} to be served`, 30_000, async () => {
    try {
      await client.resource(descriptor).list({ namespace: 'default', limit: 1 });
      return true;
    } catch {
      return false;
    }
  });
}

export async function deleteTestCrd(client: KubeClient, descriptor: ResourceDescriptor, wait = true): Promise<void> {
  const name = `${descriptor.resource}.${descriptor.group}`;
  const crdClient = client.resource<KubeObject>(MANAGED_KINDS.CustomResourceDefinition);
  try {
    await crdClient.delete(name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (wait) await waitForCrdDeletion(client, name);
}

/**
 * Waits for a CRD being deleted to go (or to be there again, created anew). Like the operator's
 * uninstall, it touches the CRD when the API server's CRD finalizer failed a pass, which may
 * otherwise wait for a 5-minute resync (operator/crd-deletion.ts says why).
 */
async function waitForCrdDeletion(client: KubeClient, name: string): Promise<void> {
  const crds = client.resource<KubeObject>(MANAGED_KINDS.CustomResourceDefinition);
  const retrier = new CrdFinalizerRetrier(client);
  await eventually(`CRD ${name} to be deleted`, 60_000, async () => {
    const crd = await crds.find(name);
    if (crd?.metadata?.deletionTimestamp === undefined) return true; // gone (or created again by someone else)
    await retrier.retryFailed([crd], silentLogger);
    return false;
  });
}

type CrdObject = KubeObject & {
  spec?: { group?: string; scope?: string; names?: { plural?: string; kind?: string }; versions?: Array<{ name: string; storage?: boolean }> };
  status?: { conditions?: Array<{ type: string; status: string }> };
};

/**
 * Applies kubevm's CRDs from crds/ (those whose file name passes `select`) and waits until they
 * are established. Every suite that needs them calls this itself: another suite may have removed
 * them (the operator suite's uninstall deletes the CRDs it manages), and jest orders suites by
 * their last durations, so no suite may rely on one that ran before it.
 */
export async function applyKubevmCrds(client: KubeClient, fieldManager: string, select: (file: string) => boolean = () => true): Promise<void> {
  const crds = client.resource<CrdObject>(MANAGED_KINDS.CustomResourceDefinition);
  const dir = join(repoRoot, 'crds');
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml') && select(name))) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const crd = doc.toJS() as KubeObject | null;
      const name = crd?.metadata?.name;
      if (!crd || !name) continue;
      // A CRD still being deleted cannot be applied: wait for it to go first.
      await waitForCrdDeletion(client, name);
      await crds.patch(name, undefined, crd, 'apply', { fieldManager, force: true });
      names.push(name);
    }
  }
  await waitForCrdsServed(client, names);
}

/**
 * Waits until each named CRD is Established and its resource answers a list. A CRD created a
 * moment ago has `status.conditions: null`, which `kubectl wait --for=condition=...` reports as an
 * error instead of waiting. Established is not yet served either: a new CRD's storage answers 429
 * ("storage is (re)initializing") to lists and watches for a while, which sends a suite's
 * informers into their back-off.
 */
export async function waitForCrdsServed(client: KubeClient, names: readonly string[]): Promise<void> {
  const crds = client.resource<CrdObject>(MANAGED_KINDS.CustomResourceDefinition);
  for (const name of names) {
    let crd: CrdObject | undefined;
    await eventually(`CRD ${name} established`, 30_000, async () => ((crd = await crds.find(name))?.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'));
    const spec = crd?.spec;
    const version = spec?.versions?.find((v) => v.storage)?.name;
    if (!spec?.group || !spec.names?.plural || !version) throw new Error(`CRD ${name} has no group, plural or storage version`);
    const served = client.resource<KubeObject>({ group: spec.group, version, resource: spec.names.plural, kind: spec.names.kind ?? '', namespaced: spec.scope === 'Namespaced' });
    await eventually(`CRD ${name} served (a list answers)`, 60_000, async () => (await served.list({ limit: 1, resourceVersion: '0' }), true));
  }
}
