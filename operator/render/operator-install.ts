// The operator's own installation: what `kubectl apply -f deploy/` and the chart put in the
// cluster before any KubeVirt CR exists. The namespace, the KubeVirt CRD, the operator's identity
// and rights, its Deployment (two replicas, leader election). Its ClusterRole holds every rule the
// roles it renders grant (the API server lets nobody grant a right they do not hold), plus the
// rights to manage those objects and to remove workloads on uninstall.
import type { V1PolicyRule } from '@kubernetes/client-node';
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, KUBEVIRT_APP_LABEL, imageRef, selectorLabels } from '../install.js';
import { MANAGED_KINDS } from '../managed-kinds.js';
import { renderKubeVirtCrd } from './crds.js';
import { renderInstallation } from './index.js';
import { HEALTH_AND_METRICS_PORTS, metricsTlsVolume } from './workloads.js';
import { METRICS_AUTH_RULES } from './rbac.js';

const RBAC_API = 'rbac.authorization.k8s.io/v1';
const MANAGE = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];
const OPERATOR = COMPONENTS.operator.name;

/** Labels of the operator's own objects: part of kubevm, but not managed by the operator. */
function operatorLabels(): Record<string, string> {
  return { 'app.kubernetes.io/part-of': 'kubevm', 'app.kubernetes.io/component': 'operator' };
}

function ruleKey(rule: V1PolicyRule): string {
  return JSON.stringify([rule.apiGroups ?? [], rule.resources ?? [], rule.resourceNames ?? [], rule.nonResourceURLs ?? []]);
}

/** The rules of every Role and ClusterRole the operator renders, merged per (groups, resources, names). */
export function grantedRules(target: InstallTarget): V1PolicyRule[] {
  const merged = new Map<string, V1PolicyRule>();
  for (const manifest of renderInstallation({}, target)) {
    if (manifest.kind !== 'ClusterRole' && manifest.kind !== 'Role') continue;
    for (const rule of (manifest['rules'] ?? []) as V1PolicyRule[]) {
      const key = ruleKey(rule);
      const existing = merged.get(key);
      const verbs = [...new Set([...(existing?.verbs ?? []), ...rule.verbs])];
      merged.set(key, { ...rule, verbs });
    }
  }
  return [...merged.values()];
}

/** What the operator itself does: manage its objects, watch its CR, clear workloads on uninstall. */
export const OPERATOR_OWN_RULES: readonly V1PolicyRule[] = [
  // Secrets (the CA's key among them) only in its own namespace: see the Role below.
  ...Object.values(MANAGED_KINDS)
    .filter((descriptor) => descriptor.kind !== 'Secret')
    .map((descriptor) => ({ apiGroups: [descriptor.group], resources: [descriptor.resource], verbs: MANAGE })),
  // The api-server reads kube-system's extension-apiserver-authentication through Kubernetes' own
  // Role; binding it needs `bind` on exactly that Role.
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], resourceNames: ['extension-apiserver-authentication-reader'], verbs: ['bind'] },
  // delete: the chart's pre-delete hook (remove-kubevirt.ts) runs as the operator.
  { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch', 'patch', 'update', 'delete'] },
  { apiGroups: ['kubevirt.io'], resources: ['kubevirts/status'], verbs: ['update', 'patch'] },
  // uninstallStrategy: refused while these exist, or (RemoveWorkloads) deleted first.
  { apiGroups: ['kubevirt.io'], resources: ['virtualmachines', 'virtualmachineinstances', 'virtualmachineinstancemigrations'], verbs: ['list', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  // Its metrics endpoint (runtime/metrics-server.ts): a scraper's token, then its access to /metrics.
  ...METRICS_AUTH_RULES,
  // Uninstall: once no node handler pod is left, the labels, annotations and conditions they put on nodes go
  // (nodes/status comes with the node handler's own rules).
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'patch'] },
];

export interface OperatorInstallOptions {
  namespace: string;
  registry: string;
  version: string;
  pullPolicy: 'Always' | 'Never' | 'IfNotPresent';
  replicas?: number;
  /** The operator's KUBEVM_WEBHOOK_CLIENT_AUTH (optional when unset). */
  webhookClientAuth?: string;
}

export function renderOperatorInstall(options: OperatorInstallOptions): Manifest[] {
  const target: InstallTarget = { namespace: options.namespace, registry: options.registry, tag: options.version, pullPolicy: options.pullPolicy };
  const labels = operatorLabels();
  const selector = selectorLabels('operator');
  const namespaceRole = `${OPERATOR}-namespace`;
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: options.namespace,
        // The node handler runs here and needs host paths; launchers run in the VMs' namespaces.
        labels: { ...labels, 'pod-security.kubernetes.io/enforce': 'privileged' },
      },
    },
    renderKubeVirtCrd(),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: OPERATOR, namespace: options.namespace, labels } },
    { apiVersion: RBAC_API, kind: 'ClusterRole', metadata: { name: OPERATOR, labels }, rules: [...OPERATOR_OWN_RULES, ...grantedRules(target)] },
    {
      apiVersion: RBAC_API,
      kind: 'ClusterRoleBinding',
      metadata: { name: OPERATOR, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: OPERATOR },
      subjects: [{ kind: 'ServiceAccount', name: OPERATOR, namespace: options.namespace }],
    },
    {
      apiVersion: RBAC_API,
      kind: 'Role',
      metadata: { name: namespaceRole, namespace: options.namespace, labels },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [OPERATOR], verbs: ['get', 'update'] },
        // The certificate Secrets (pki.ts).
        { apiGroups: [''], resources: ['secrets'], verbs: MANAGE },
      ],
    },
    {
      apiVersion: RBAC_API,
      kind: 'RoleBinding',
      metadata: { name: namespaceRole, namespace: options.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: namespaceRole },
      subjects: [{ kind: 'ServiceAccount', name: OPERATOR, namespace: options.namespace }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: OPERATOR, namespace: options.namespace, labels: { ...labels, [KUBEVIRT_APP_LABEL]: COMPONENTS.operator.kubevirtName } },
      spec: {
        // Two replicas, one leader (Lease kubevm-operator): the standby takes over within 15 s.
        replicas: options.replicas ?? 2,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
        template: {
          metadata: { labels: { ...selector, [KUBEVIRT_APP_LABEL]: COMPONENTS.operator.kubevirtName } },
          spec: {
            serviceAccountName: OPERATOR,
            terminationGracePeriodSeconds: 30,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
                ],
              },
            },
            tolerations: [
              { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
              { key: 'CriticalAddonsOnly', operator: 'Exists' },
            ],
            containers: [
              {
                name: 'operator',
                image: imageRef(target, COMPONENTS.operator.image),
                imagePullPolicy: options.pullPolicy,
                command: ['node', 'dist/operator/main.js'],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  // What a KubeVirt CR that names no imageRegistry/imageTag/imagePullPolicy gets.
                  { name: 'KUBEVM_VERSION', value: options.version },
                  { name: 'KUBEVM_IMAGE_REGISTRY', value: options.registry },
                  { name: 'KUBEVM_IMAGE_PULL_POLICY', value: options.pullPolicy },
                  // required only where the kube-apiserver presents its client certificate to webhooks (docs/operations.md).
                  { name: 'KUBEVM_WEBHOOK_CLIENT_AUTH', value: options.webhookClientAuth ?? 'optional' },
                  { name: 'KUBEVM_HEALTH_PORT', value: '8080' },
                  { name: 'KUBEVM_METRICS_PORT', value: '8443' },
                  { name: 'LOG_LEVEL', value: 'info' },
                ],
                ports: HEALTH_AND_METRICS_PORTS,
                readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5 },
                livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, initialDelaySeconds: 10, periodSeconds: 20, failureThreshold: 3 },
                resources: { requests: { cpu: '20m', memory: '96Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  readOnlyRootFilesystem: true,
                  runAsNonRoot: true,
                  capabilities: { drop: ['ALL'] },
                },
                volumeMounts: [metricsTlsVolume('operator').mount],
              },
            ],
            volumes: [metricsTlsVolume('operator').volume],
          },
        },
      },
    },
  ];
}

/** The KubeVirt CR deploy/ ships: KubeVirt's defaults, and workloads protected on uninstall. */
export function renderKubeVirtCr(namespace: string, configuration: Record<string, unknown> = {}): Manifest {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    metadata: { name: 'kubevirt', namespace },
    spec: {
      imagePullPolicy: 'IfNotPresent',
      uninstallStrategy: 'BlockUninstallIfWorkloadsExist',
      configuration,
    },
  };
}
