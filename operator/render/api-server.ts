// The api-server (KubeVirt's virt-api): its identity and rights (deploy/api-server/rbac.yaml was
// the source), Deployment, Service, PodDisruptionBudget, and the APIServices of
// subresources.kubevirt.io with the CA bundle that lets the kube-apiserver trust it.
import { WEBHOOK_CLIENT_AUTH_ENV } from '../../runtime/contracts/api-server.js';
import type { KubeVirtSpec } from '../../runtime/api/index.js';
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, KUBEVIRT_APP_LABEL, imageRef, managedLabels, selectorLabels } from '../install.js';
import type { Grant } from './rbac.js';
import { clusterRoleWithBinding, namespaceRoleWithBinding, serviceAccount } from './rbac.js';
import { API_SERVER_STREAMS_TLS_SECRET, STREAM_TLS_DIR } from '../../runtime/contracts/streams.js';

/** In kubevm's namespace only. */
export const API_SERVER_NAMESPACE_GRANTS: readonly Grant[] = [
  { why: 'node-streams.ts finds the node handler pod of a VMI\'s node to open console, VNC and port-forward streams there (ADR 0014).', apiGroups: [''], resources: ['pods'], verbs: ['list'] },
];
import { RESTRICTED_CONTAINER, controlPlanePod, metricsTlsVolume, probes, renderPodDisruptionBudget } from './workloads.js';

export const API_SERVER_TLS_SECRET = 'kubevm-api-server-tls';
/** On the pod template: the serving certificate's hash, so a renewed one rolls the pods one by one. */
export const SERVING_CERT_ANNOTATION = 'kubevm.io/serving-certificate-sha256';

const INSTANCETYPE_RESOURCES = ['virtualmachineinstancetypes', 'virtualmachineclusterinstancetypes', 'virtualmachinepreferences', 'virtualmachineclusterpreferences'];

export const API_SERVER_GRANTS: readonly Grant[] = [
  { why: 'authorize.ts: every subresource request is checked with a SubjectAccessReview (and a metrics scraper\'s access to /metrics).', apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
  { why: 'The metrics endpoint (runtime/metrics-server.ts) reviews a scraper\'s token.', apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { why: 'start/stop/restart/migrate read the VM; start/stop of Halted/Always/Once VMs patch runStrategy.', apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'patch'] },
  { why: "start/stop/restart queue stateChangeRequests on the VM's status.", apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['patch'] },
  { why: 'Every subresource reads the VMI; stop/restart and the request annotations patch it.', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'patch'] },
  { why: "The validating webhook: the KubeVirt CR's permittedHostDevices and evictionStrategy, and one KubeVirt CR only.", apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['list'] },
  { why: "The validating webhook warns when a VM's instancetype or preference does not exist (yet); expand-spec reads them.", apiGroups: ['instancetype.kubevirt.io'], resources: INSTANCETYPE_RESOURCES, verbs: ['get'] },
  { why: "expand-spec expands with the VM's snapshot of its instancetype and preference, as KubeVirt does.", apiGroups: ['apps'], resources: ['controllerrevisions'], verbs: ['get'] },
  { why: 'The exec guard and the eviction webhook: whether the pod an exec, attach, port-forward or eviction goes to is a launcher pod (its label), which VMI it runs and on which node.', apiGroups: [''], resources: ['pods'], verbs: ['get'] },
  { why: "The eviction webhook marks a VMI a drain must migrate: status.evacuationNodeName, a JSON patch of the status subresource that tests status.nodeName (ADR 0008); the KubeVirt CR's evictionStrategy is read with the list above.", apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances/status'], verbs: ['patch'] },
  { why: 'migrate creates a VirtualMachineInstanceMigration; the webhook lists them to refuse a second one in flight for a VMI.', apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ['create', 'list'] },
];

/** What the API server must trust, and which serving certificate the pods run with. */
export interface ApiServerTls {
  /** PEM bundle: the current CA and, during a rotation, the previous one. */
  caBundle: string;
  servingCertSha256: string;
}

export function renderApiServer(spec: KubeVirtSpec, target: InstallTarget, tls: ApiServerTls | undefined): Manifest[] {
  const { name, image, kubevirtName } = COMPONENTS.apiServer;
  const selector = selectorLabels('api-server');
  const labels = managedLabels('api-server', target);
  const apiService = (version: string, versionPriority: number): Manifest => ({
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: `${version}.subresources.kubevirt.io`, labels },
    spec: {
      group: 'subresources.kubevirt.io',
      version,
      service: { namespace: target.namespace, name, port: 443 },
      groupPriorityMinimum: 1000,
      versionPriority,
      ...(tls ? { caBundle: Buffer.from(tls.caBundle).toString('base64') } : {}),
    },
  });
  return [
    serviceAccount('apiServer', 'api-server', target),
    ...clusterRoleWithBinding('apiServer', 'api-server', API_SERVER_GRANTS, target),
    ...namespaceRoleWithBinding('apiServer', 'api-server', `${name}-node-handlers`, API_SERVER_NAMESPACE_GRANTS, target),
    {
      // front-proxy.ts reads kube-system's extension-apiserver-authentication ConfigMap; Kubernetes' built-in Role grants exactly that.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${name}-extension-apiserver-authentication-reader`, namespace: 'kube-system', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: [{ kind: 'ServiceAccount', name, namespace: target.namespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: target.namespace, labels },
      spec: { selector, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: target.namespace, labels: { ...labels, [KUBEVIRT_APP_LABEL]: kubevirtName } },
      spec: {
        replicas: spec.infra?.replicas ?? 2,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
        template: {
          metadata: {
            labels: { ...selector, [KUBEVIRT_APP_LABEL]: kubevirtName },
            ...(tls ? { annotations: { [SERVING_CERT_ANNOTATION]: tls.servingCertSha256 } } : {}),
          },
          spec: {
            ...controlPlanePod(name, selector, spec),
            containers: [
              {
                name: 'api-server',
                image: imageRef(target, image),
                imagePullPolicy: target.pullPolicy,
                command: ['node', 'dist/api-server/main.js'],
                env: [
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'KUBEVM_API_PORT', value: '8443' },
                  { name: 'KUBEVM_API_TLS_CERT', value: '/etc/kubevm/tls/tls.crt' },
                  { name: 'KUBEVM_API_TLS_KEY', value: '/etc/kubevm/tls/tls.key' },
                  { name: WEBHOOK_CLIENT_AUTH_ENV, value: target.webhookClientAuth ?? 'optional' },
                  { name: 'KUBEVM_HEALTH_PORT', value: '8080' },
                  { name: 'KUBEVM_METRICS_PORT', value: '8444' },
                  { name: 'LOG_LEVEL', value: 'info' },
                ],
                ports: [
                  { name: 'https', containerPort: 8443, protocol: 'TCP' },
                  { name: 'health', containerPort: 8080, protocol: 'TCP' },
                  { name: 'metrics', containerPort: 8444, protocol: 'TCP' },
                ],
                ...probes('health', 5, 10, 3),
                volumeMounts: [
                  { name: 'tls', mountPath: '/etc/kubevm/tls', readOnly: true },
                  // The client certificate of the node handlers' streams (ADR 0014); optional.
                  { name: 'streams-tls', mountPath: STREAM_TLS_DIR, readOnly: true },
                  metricsTlsVolume('apiServer').mount,
                ],
                resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: RESTRICTED_CONTAINER,
              },
            ],
            volumes: [
              { name: 'tls', secret: { secretName: API_SERVER_TLS_SECRET } },
              { name: 'streams-tls', secret: { secretName: API_SERVER_STREAMS_TLS_SECRET, optional: true } },
              metricsTlsVolume('apiServer').volume,
            ],
          },
        },
      },
    },
    // A budget of one available replica would block every drain of a single replica.
    ...((spec.infra?.replicas ?? 2) >= 2 ? [renderPodDisruptionBudget('api-server', name, target)] : []),
    apiService('v1', 15),
    apiService('v1alpha3', 14),
  ];
}
