// The rendered installation: deploy/'s component manifests were the source of truth for RBAC and
// workloads, so until deploy/ is generated from here, the two must say the same; and the
// CR's settings (images, placement, replicas) land where KubeVirt puts them.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { InstallTarget, Manifest } from '../install.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../install.js';
import { MANAGED_KINDS } from '../managed-kinds.js';
import { renderInstallation } from './index.js';
import { USER_ROLE_NAMES } from './user-roles.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const target: InstallTarget = { namespace: 'kubevirt', registry: 'kubevm', tag: '0.1.0', pullPolicy: 'IfNotPresent' };

function deployFile(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(repo, 'deploy', path), 'utf8'))
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((obj): obj is Manifest => obj !== null);
}

function find(objects: readonly Manifest[], kind: string, name: string): Manifest {
  const found = objects.find((obj) => obj.kind === kind && obj.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

describe('renderInstallation', () => {
  const objects = renderInstallation({}, target);

  it('labels every object as the operator\'s, names each once, and renders only kinds it watches', () => {
    const keys = objects.map((obj) => `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const obj of objects) {
      expect(obj.metadata.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE);
      expect(Object.keys(MANAGED_KINDS)).toContain(obj.kind);
    }
  });

  it('installs every CRD but KubeVirt\'s own, which ships with the operator', () => {
    const crds = objects.filter((obj) => obj.kind === 'CustomResourceDefinition').map((obj) => obj.metadata.name);
    expect(crds).toContain('virtualmachines.kubevirt.io');
    expect(crds).toContain('migrationpolicies.migrations.kubevirt.io');
    expect(crds).not.toContain('kubevirts.kubevirt.io');
    expect(crds).toHaveLength(8);
    expect(objects.findIndex((obj) => obj.kind === 'Deployment')).toBeGreaterThan(objects.findIndex((obj) => obj.kind === 'CustomResourceDefinition'));
  });

  const roleFiles: Array<[string, Array<[string, string]>]> = [
    ['controller/rbac.yaml', [['ClusterRole', 'kubevm-controller'], ['Role', 'kubevm-controller-leader-election']]],
    ['node-handler/clusterrole.yaml', [['ClusterRole', 'kubevm-node-handler']]],
    ['api-server/rbac.yaml', [['ClusterRole', 'kubevm-api-server'], ['Role', 'kubevm-api-server-node-handlers']]],
  ];
  it.each(roleFiles)('grants exactly the rules of deploy/%s', (file, roles) => {
    const fromDeploy = deployFile(file);
    for (const [kind, name] of roles) {
      expect(find(objects, kind, name)['rules']).toEqual(find(fromDeploy, kind, name)['rules']);
    }
  });

  const workloadFiles: Array<[string, string, string]> = [
    ['controller/deployment.yaml', 'Deployment', 'kubevm-controller'],
    ['node-handler/daemonset.yaml', 'DaemonSet', 'kubevm-node-handler'],
    ['api-server/deployment.yaml', 'Deployment', 'kubevm-api-server'],
    ['api-server/service.yaml', 'Service', 'kubevm-api-server'],
    ['api-server/service.yaml', 'PodDisruptionBudget', 'kubevm-api-server'],
    ['api-server/apiservice.yaml', 'APIService', 'v1.subresources.kubevirt.io'],
    ['api-server/apiservice.yaml', 'APIService', 'v1alpha3.subresources.kubevirt.io'],
  ];
  it.each(workloadFiles)('renders the workload of deploy/%s', (file, kind, name) => {
    const fromDeploy = find(deployFile(file), kind, name);
    expect(find(objects, kind, name)['spec']).toEqual(fromDeploy['spec']);
  });

  const policyFiles: Array<[string, string]> = [
    ['controller/policy.yaml', 'kubevm-controller-launcher-pods'],
    ['node-handler/policy.yaml', 'kubevm-node-handler-node-restriction'],
  ];
  it.each(policyFiles)('renders the admission policy and binding of deploy/%s', (file, name) => {
    for (const kind of ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']) {
      expect(find(objects, kind, name)['spec']).toEqual(find(deployFile(file), kind, name)['spec']);
    }
  });

  it('binds each component\'s ServiceAccount to its roles', () => {
    for (const name of ['kubevm-controller', 'kubevm-node-handler', 'kubevm-api-server']) {
      expect(find(objects, 'ClusterRoleBinding', name)['subjects']).toEqual([{ kind: 'ServiceAccount', name, namespace: 'kubevirt' }]);
      expect(find(objects, 'ServiceAccount', name).metadata.namespace).toBe('kubevirt');
    }
  });

  it('gives the APIServices the CA bundle and rolls the api-server when its certificate changes', () => {
    const tls = { caBundle: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', servingCertSha256: 'abc' };
    const withTls = renderInstallation({}, target, { secrets: [], tls });
    const apiService = find(withTls, 'APIService', 'v1.subresources.kubevirt.io') as Manifest & { spec: { caBundle?: string } };
    expect(Buffer.from(apiService.spec.caBundle ?? '', 'base64').toString()).toBe(tls.caBundle);
    const deployment = find(withTls, 'Deployment', 'kubevm-api-server') as Manifest & { spec: { template: { metadata: { annotations?: Record<string, string> } } } };
    expect(deployment.spec.template.metadata.annotations).toEqual({ 'kubevm.io/serving-certificate-sha256': 'abc' });
  });

  it.each([
    ['ValidatingWebhookConfiguration', 'kubevm-validator'],
    ['MutatingWebhookConfiguration', 'kubevm-mutator'],
  ])('registers the %s of deploy/api-server/webhooks.yaml with the CA bundle, only when asked', (kind, name) => {
    const tls = { caBundle: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', servingCertSha256: 'abc' };
    expect(objects.some((obj) => obj.kind === kind)).toBe(false);
    expect(renderInstallation({}, target, { secrets: [], tls }).some((obj) => obj.kind === kind)).toBe(false);
    const rendered = find(renderInstallation({}, target, { secrets: [], tls }, true), kind, name) as Manifest & { webhooks: Array<{ clientConfig: { caBundle: string } }> };
    const fromDeploy = find(deployFile('api-server/webhooks.yaml'), kind, name) as Manifest & { webhooks: Array<{ clientConfig: { caBundle: string } }> };
    expect(rendered.webhooks.map((webhook) => Buffer.from(webhook.clientConfig.caBundle, 'base64').toString())).toEqual(fromDeploy.webhooks.map(() => tls.caBundle));
    const withoutCa = (webhooks: Array<{ clientConfig: { caBundle: string } }>) => webhooks.map((webhook) => ({ ...webhook, clientConfig: { ...webhook.clientConfig, caBundle: '' } }));
    expect(withoutCa(rendered.webhooks)).toEqual(withoutCa(fromDeploy.webhooks));
  });

  it('takes images, pull policy, placement, replicas and pull secrets from the CR', () => {
    const custom = renderInstallation(
      {
        imageRegistry: 'registry.example/kubevm',
        imageTag: '9.9.9',
        imagePullSecrets: [{ name: 'pull' }],
        infra: { replicas: 1, nodePlacement: { nodeSelector: { infra: 'yes' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }] } },
        workloads: { nodePlacement: { nodeSelector: { vms: 'yes' } } },
        configuration: { imagePullPolicy: 'Always' },
      },
      { ...target, registry: 'registry.example/kubevm', tag: '9.9.9', pullPolicy: 'Never' },
    );
    const controller = find(custom, 'Deployment', 'kubevm-controller') as Manifest & { spec: { replicas: number; template: { spec: Record<string, unknown> & { containers: Array<{ image: string; imagePullPolicy: string; env: Array<{ name: string; value?: string }> }> } } } };
    const pod = controller.spec.template.spec;
    expect(controller.spec.replicas).toBe(1);
    expect(pod['nodeSelector']).toEqual({ infra: 'yes' });
    expect(pod['tolerations']).toContainEqual({ key: 'dedicated', operator: 'Exists' });
    expect(pod['imagePullSecrets']).toEqual([{ name: 'pull' }]);
    const container = pod.containers[0];
    expect(container?.image).toBe('registry.example/kubevm/controller:9.9.9');
    expect(container?.imagePullPolicy).toBe('Never');
    expect(container?.env).toContainEqual({ name: 'KUBEVM_LAUNCHER_IMAGE', value: 'registry.example/kubevm/launcher:9.9.9' });
    // configuration.imagePullPolicy is the VM pods' (KubeVirt's meaning), not the components'.
    expect(container?.env).toContainEqual({ name: 'KUBEVM_LAUNCHER_PULL_POLICY', value: 'Always' });
    const handler = find(custom, 'DaemonSet', 'kubevm-node-handler') as Manifest & { spec: { template: { spec: Record<string, unknown> } } };
    expect(handler.spec.template.spec['nodeSelector']).toEqual({ vms: 'yes' });
    // One replica: a budget of one available would block every drain.
    expect(custom.some((obj) => obj.kind === 'PodDisruptionBudget')).toBe(false);
    expect(objects.some((obj) => obj.kind === 'PodDisruptionBudget' && obj.metadata.name === 'kubevm-controller')).toBe(true);
  });

  it('renders KubeVirt\'s user-facing roles with their aggregation', () => {
    const label = (name: string, key: string): string | undefined => find(objects, 'ClusterRole', name).metadata.labels?.[key];
    expect(label(USER_ROLE_NAMES.admin, 'rbac.authorization.k8s.io/aggregate-to-admin')).toBe('true');
    expect(label(USER_ROLE_NAMES.edit, 'rbac.authorization.k8s.io/aggregate-to-edit')).toBe('true');
    expect(label(USER_ROLE_NAMES.view, 'rbac.authorization.k8s.io/aggregate-to-view')).toBe('true');
    const migrateLabels = Object.keys(find(objects, 'ClusterRole', USER_ROLE_NAMES.migrate).metadata.labels ?? {});
    expect(migrateLabels.filter((key) => key.includes('aggregate-to'))).toEqual([]);
    for (const name of [USER_ROLE_NAMES.default, USER_ROLE_NAMES.instancetypeView]) {
      expect(find(objects, 'ClusterRoleBinding', name)['subjects']).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }]);
    }
  });
});

describe('the node handler\'s host mounts', () => {
  interface PodSpec {
    volumes: Array<{ name: string; hostPath?: { path: string } }>;
    containers: Array<{ env: Array<{ name: string; value?: string }>; volumeMounts: Array<{ name: string; readOnly?: boolean; mountPropagation?: string }> }>;
  }
  const podSpec = (objects: readonly Manifest[]): PodSpec => (find(objects, 'DaemonSet', 'kubevm-node-handler') as Manifest & { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  /** Each hostPath the rendered pod mounts, and whether read-only. */
  const hostMounts = (spec: PodSpec): Map<string, boolean> =>
    new Map(
      spec.volumes.flatMap((volume) => {
        if (!volume.hostPath) return [];
        const mount = spec.containers.flatMap((c) => c.volumeMounts).find((m) => m.name === volume.name);
        return [[volume.hostPath.path, mount?.readOnly === true] as const];
      }),
    );
  /** The node handler's hostPath rows of SECURITY.md's "Privileges, one by one": path -> read-only. */
  const documented = new Map(
    [...readFileSync(join(repo, 'SECURITY.md'), 'utf8').matchAll(/^\| node handler \| hostPath `([^`]+)`([^|]*)\|/gm)].map((m) => [m[1] ?? '', /read-only/.test(m[2] ?? '')] as const),
  );
  const withKsm = renderInstallation({ configuration: { ksmConfiguration: { nodeLabelSelector: { matchLabels: { 'kubevm.io/ksm': 'on' } } } } }, target);

  it('mounts no host path that SECURITY.md does not list with its reason, read-only where it says so', () => {
    expect(documented.size).toBeGreaterThanOrEqual(3);
    for (const objects of [renderInstallation({}, target), withKsm]) {
      for (const [path, readOnly] of hostMounts(podSpec(objects))) {
        expect({ path, documented: documented.has(path) }).toEqual({ path, documented: true });
        expect({ path, readOnly }).toEqual({ path, readOnly: documented.get(path) });
      }
    }
    // And SECURITY.md lists none the handler does not mount.
    expect([...documented.keys()].sort()).toEqual([...hostMounts(podSpec(withKsm)).keys()].sort());
  });

  it('sees the kubelet\'s pods without mount propagation, so tmpfs volumes mounted later stay out of its view', () => {
    const mounts = podSpec(renderInstallation({}, target)).containers.flatMap((c) => c.volumeMounts);
    expect(mounts.filter((m) => m.mountPropagation !== undefined && m.mountPropagation !== 'None')).toEqual([]);
  });

  it('mounts the host\'s KSM switches, and passes ksmConfiguration, only when the KubeVirt CR configures KSM', () => {
    expect(hostMounts(podSpec(renderInstallation({}, target))).has('/sys/kernel/mm/ksm')).toBe(false);
    expect(podSpec(renderInstallation({}, target)).containers[0]?.env.map((e) => e.name)).not.toContain('KUBEVM_KSM_CONFIGURATION');
    expect(hostMounts(podSpec(withKsm)).get('/sys/kernel/mm/ksm')).toBe(false);
    const env = Object.fromEntries((podSpec(withKsm).containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(JSON.parse(env['KUBEVM_KSM_CONFIGURATION'] ?? 'null')).toEqual({ nodeLabelSelector: { matchLabels: { 'kubevm.io/ksm': 'on' } } });
    expect(env['KUBEVM_KSM_DIR']).toBe('/host/sys/kernel/mm/ksm');
  });
});
