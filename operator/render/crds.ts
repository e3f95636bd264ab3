// The CRDs the operator installs and upgrades: every kind of runtime/api (the same generator that
// writes crds/) except KubeVirt's own, which must exist before the operator can watch a KubeVirt CR
// and so ships with the operator's manifests (deploy/, the chart's crds/).
import { API_RESOURCES, KubeVirtNames, renderCustomResourceDefinition } from '../../runtime/api/index.js';
import type { InstallTarget, Manifest } from '../install.js';
import { managedLabels } from '../install.js';

export function renderManagedCrds(target: InstallTarget): Manifest[] {
  return API_RESOURCES.filter((resource) => resource.names.kind !== KubeVirtNames.kind).map((resource) => {
    const crd = renderCustomResourceDefinition(resource) as unknown as Manifest;
    return { ...crd, metadata: { ...crd.metadata, labels: { ...crd.metadata.labels, ...managedLabels('crds', target) } } };
  });
}

/** The KubeVirt CRD, as the operator's own install manifests carry it. */
export function renderKubeVirtCrd(): Manifest {
  const resource = API_RESOURCES.find((candidate) => candidate.names.kind === KubeVirtNames.kind);
  if (!resource) throw new Error('runtime/api has no KubeVirt resource');
  return renderCustomResourceDefinition(resource) as unknown as Manifest;
}
