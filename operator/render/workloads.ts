// The components' workloads: the controller Deployment (two replicas, leader election), the node
// handler DaemonSet, their PodDisruptionBudget, and the PriorityClass of launcher pods. What
// deploy/controller and deploy/node-handler held, now with the KubeVirt CR's image, pull policy,
// placement (spec.infra, spec.workloads) and pull secrets applied.
import type { KubeVirtSpec } from '../../runtime/api/index.js';
import type { InstallTarget, Manifest } from '../install.js';
import type { ComponentKey } from '../install.js';
import { COMPONENTS, KUBEVIRT_APP_LABEL, LAUNCHER_IMAGE_NAME, imageRef, managedLabels, metricsTlsSecret, selectorLabels } from '../install.js';
import { METRICS_TLS_DIR } from '../../runtime/metrics-server.js';
import { NODE_HANDLER_STREAMS_TLS_SECRET, NODE_HANDLER_STREAM_PORT, STREAM_TLS_DIR } from '../../runtime/contracts/streams.js';
import { MIGRATION_TLS_DIR, NODE_HANDLER_MIGRATION_PORT, NODE_HANDLER_MIGRATION_TLS_SECRET } from '../../runtime/contracts/migration-channel.js';

type NodePlacement = NonNullable<NonNullable<KubeVirtSpec['infra']>['nodePlacement']>;

/** What the launcher image runs (its entrypoint is node); the controller's admission policy pins it too. */
export const LAUNCHER_COMMAND = 'node dist/launcher/main.js';

/** The PriorityClass launcher pods run with: above ordinary workloads, so a VM is not preempted for them. */
export const LAUNCHER_PRIORITY_CLASS = 'kubevm-launcher';
export const LAUNCHER_PRIORITY = 1_000_000;

const DEFAULT_CONTROLLER_REPLICAS = 2;

const DEFAULT_TOLERATIONS = [
  { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'CriticalAddonsOnly', operator: 'Exists' },
];

export const RESTRICTED_CONTAINER = {
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

function fieldRef(name: string, fieldPath: string): Record<string, unknown> {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** Health (plain HTTP, for the kubelet's probes) and metrics (HTTPS, authorized scrapers: runtime/metrics-server.ts). */
export const HEALTH_AND_METRICS_PORTS = [
  { name: 'health', containerPort: 8080, protocol: 'TCP' },
  { name: 'metrics', containerPort: 8443, protocol: 'TCP' },
];

/**
 * The component's metrics certificate (operator/pki.ts), re-read by the process when renewed.
 * Optional: the operator's own Deployment exists before the operator has issued its Secret (it
 * serves a self-signed certificate until the Secret volume fills in).
 */
export function metricsTlsVolume(component: ComponentKey): { volume: Record<string, unknown>; mount: Record<string, unknown> } {
  return {
    volume: { name: 'metrics-tls', secret: { secretName: metricsTlsSecret(component), optional: true } },
    mount: { name: 'metrics-tls', mountPath: METRICS_TLS_DIR, readOnly: true },
  };
}

export function probes(port: string, readinessPeriod: number, livenessDelay: number, failureThreshold?: number): Record<string, unknown> {
  return {
    readinessProbe: { httpGet: { path: '/readyz', port }, periodSeconds: readinessPeriod },
    livenessProbe: { httpGet: { path: '/healthz', port }, initialDelaySeconds: livenessDelay, periodSeconds: 20, ...(failureThreshold ? { failureThreshold } : {}) },
  };
}

/** nodeSelector, affinity and tolerations of a component's pods: the CR's placement over the defaults. */
export function placement(nodePlacement: NodePlacement | undefined, defaultAffinity?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (nodePlacement?.nodeSelector) out['nodeSelector'] = nodePlacement.nodeSelector;
  const affinity = nodePlacement?.affinity ?? defaultAffinity;
  if (affinity) out['affinity'] = affinity;
  out['tolerations'] = [...DEFAULT_TOLERATIONS, ...(nodePlacement?.tolerations ?? [])];
  return out;
}

export function pullSecrets(spec: KubeVirtSpec): Record<string, unknown> {
  return spec.imagePullSecrets?.length ? { imagePullSecrets: spec.imagePullSecrets } : {};
}

/**
 * The pod-level settings of a control-plane component (controller, api-server): its identity, a
 * non-root restricted pod, replicas spread over nodes, spec.infra's placement, pull secrets.
 * terminationGracePeriodSeconds: stop work, release a Lease, close endpoints (the process's own deadline is 25 s).
 */
export function controlPlanePod(serviceAccountName: string, selector: Record<string, string>, spec: KubeVirtSpec): Record<string, unknown> {
  return {
    serviceAccountName,
    terminationGracePeriodSeconds: 30,
    securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    ...placement(spec.infra?.nodePlacement, {
      // Spread the replicas so a node failure does not take both (preferred: one-node clusters work).
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }],
      },
    }),
    ...pullSecrets(spec),
  };
}

export function renderControllerDeployment(spec: KubeVirtSpec, target: InstallTarget): Manifest {
  const { name, image, kubevirtName } = COMPONENTS.controller;
  const selector = selectorLabels('controller');
  const launcherPullPolicy = spec.configuration?.imagePullPolicy ?? target.pullPolicy;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: target.namespace, labels: { ...managedLabels('controller', target), [KUBEVIRT_APP_LABEL]: kubevirtName } },
    spec: {
      // Only the leader reconciles; the other keeps a warm cache and takes over within the lease (15 s).
      replicas: spec.infra?.replicas ?? DEFAULT_CONTROLLER_REPLICAS,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...selector, [KUBEVIRT_APP_LABEL]: kubevirtName } },
        spec: {
          ...controlPlanePod(name, selector, spec),
          containers: [
            {
              name: 'controller',
              image: imageRef(target, image),
              imagePullPolicy: target.pullPolicy,
              command: ['node', 'dist/controller/main.js'],
              env: [
                fieldRef('POD_NAME', 'metadata.name'),
                fieldRef('POD_NAMESPACE', 'metadata.namespace'),
                { name: 'KUBEVM_LAUNCHER_IMAGE', value: imageRef(target, LAUNCHER_IMAGE_NAME) },
                { name: 'KUBEVM_LAUNCHER_PULL_POLICY', value: launcherPullPolicy },
                // The launcher image's entrypoint is node; this is the script it runs.
                { name: 'KUBEVM_LAUNCHER_COMMAND', value: LAUNCHER_COMMAND },
                // KUBEVM_USE_EMULATION stays unset: the controller follows the CR's useEmulation live.
                { name: 'KUBEVM_HEALTH_PORT', value: '8080' },
                { name: 'KUBEVM_METRICS_PORT', value: '8443' },
                { name: 'LOG_LEVEL', value: 'info' },
              ],
              ports: HEALTH_AND_METRICS_PORTS,
              ...probes('health', 5, 10, 3),
              resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '640Mi' } },
              securityContext: RESTRICTED_CONTAINER,
              volumeMounts: [metricsTlsVolume('controller').mount],
            },
          ],
          volumes: [metricsTlsVolume('controller').volume],
        },
      },
    },
  };
}

/** Where the node handler sees the host's KSM switches when the CR configures KSM. */
export const KSM_MOUNT_PATH = '/host/sys/kernel/mm/ksm';

export function renderNodeHandlerDaemonSet(spec: KubeVirtSpec, target: InstallTarget): Manifest {
  const { name, image, kubevirtName } = COMPONENTS.nodeHandler;
  const selector = selectorLabels('node-handler');
  const ksm = spec.configuration?.ksmConfiguration;
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: target.namespace, labels: { ...managedLabels('node-handler', target), [KUBEVIRT_APP_LABEL]: kubevirtName } },
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { ...selector, [KUBEVIRT_APP_LABEL]: kubevirtName } },
        spec: {
          serviceAccountName: name,
          priorityClassName: 'system-node-critical',
          // Stopping the handler never stops a VM (the launchers run on); this is only the time to
          // finish in-flight status writes and close sockets.
          terminationGracePeriodSeconds: 30,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          ...placement(spec.workloads?.nodePlacement),
          ...pullSecrets(spec),
          containers: [
            {
              name: 'node-handler',
              image: imageRef(target, image),
              imagePullPolicy: target.pullPolicy,
              command: ['node', 'dist/node-handler/main.js'],
              env: [
                fieldRef('NODE_NAME', 'spec.nodeName'),
                // A migration target's address for the source's node handler.
                fieldRef('POD_IP', 'status.podIP'),
                { name: 'KUBEVM_KUBELET_ROOT', value: '/var/lib/kubelet' },
                { name: 'KUBEVM_DEV_ROOT', value: '/host' },
                { name: 'KUBEVM_HEALTH_PORT', value: '8080' },
                { name: 'KUBEVM_METRICS_PORT', value: '8443' },
                ...(ksm ? [{ name: 'KUBEVM_KSM_CONFIGURATION', value: JSON.stringify(ksm) }, { name: 'KUBEVM_KSM_DIR', value: KSM_MOUNT_PATH }] : []),
              ],
              ports: [
                ...HEALTH_AND_METRICS_PORTS,
                // Console, VNC and port-forward streams for the api-server, mutual TLS (ADR 0014).
                { name: 'streams', containerPort: NODE_HANDLER_STREAM_PORT, protocol: 'TCP' },
                // Migration streams from other nodes' handlers, mutual TLS (docs/migration.md).
                { name: 'migration', containerPort: NODE_HANDLER_MIGRATION_PORT, protocol: 'TCP' },
              ],
              ...probes('health', 10, 15),
              // The CPU request is the handler's weight against the guests it serves when they use
              // every core (cgroup cpu shares): at 10m ten starting guests left it ~1 % of the CPU and
              // seconds late to attach and to report Running (bench/vm-startup.md, 2026-12-01).
              resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              // Root, for the root-owned kubelet directories (device-plugins is 0750 root); no
              // privileged mode and one capability, see SECURITY.md (privileges, one by one).
              securityContext: {
                runAsUser: 0,
                runAsNonRoot: false,
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] },
              },
              volumeMounts: [
                // The launchers' sockets are in their pods' disk-backed emptyDirs: plain directories
                // of the kubelet's file system, seen without mount propagation. Without it, Secret
                // and service-account token volumes (tmpfs mounts) of pods started after the handler
                // do not appear in this container (SECURITY.md, privileges one by one).
                { name: 'kubelet-pods', mountPath: '/var/lib/kubelet/pods', readOnly: true },
                { name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' },
                { name: 'host-dev', mountPath: '/host/dev', readOnly: true },
                // Only when the CR configures KSM: the one host switch it writes (not under the
                // container's /sys, which the runtime mounts read-only and confines by path).
                ...(ksm ? [{ name: 'host-ksm', mountPath: KSM_MOUNT_PATH }] : []),
                // The streams certificate; optional: without it no streams are served on the node.
                { name: 'streams-tls', mountPath: STREAM_TLS_DIR, readOnly: true },
                // The migration client certificate; optional: without it this node migrates nothing out.
                { name: 'migration-tls', mountPath: MIGRATION_TLS_DIR, readOnly: true },
                metricsTlsVolume('nodeHandler').mount,
              ],
            },
          ],
          volumes: [
            { name: 'kubelet-pods', hostPath: { path: '/var/lib/kubelet/pods', type: 'Directory' } },
            { name: 'device-plugins', hostPath: { path: '/var/lib/kubelet/device-plugins', type: 'Directory' } },
            { name: 'host-dev', hostPath: { path: '/dev', type: 'Directory' } },
            ...(ksm ? [{ name: 'host-ksm', hostPath: { path: '/sys/kernel/mm/ksm', type: 'Directory' } }] : []),
            { name: 'streams-tls', secret: { secretName: NODE_HANDLER_STREAMS_TLS_SECRET, optional: true } },
            metricsTlsVolume('nodeHandler').volume,
            { name: 'migration-tls', secret: { secretName: NODE_HANDLER_MIGRATION_TLS_SECRET, optional: true } },
          ],
        },
      },
    },
  };
}

/** Voluntary disruptions (drains, upgrades) keep one replica of a control-plane component. */
export function renderPodDisruptionBudget(component: 'controller' | 'api-server', name: string, target: InstallTarget): Manifest {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: target.namespace, labels: managedLabels(component, target) },
    spec: { minAvailable: 1, selector: { matchLabels: selectorLabels(component) } },
  };
}

export function renderLauncherPriorityClass(target: InstallTarget): Manifest {
  return {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name: LAUNCHER_PRIORITY_CLASS, labels: managedLabels('launcher', target) },
    value: LAUNCHER_PRIORITY,
    globalDefault: false,
    // A VM's pod waits for room rather than evicting others; once running it is not preempted by them.
    preemptionPolicy: 'Never',
    description: 'kubevm launcher pods (one per running VM): above ordinary workloads, so a running VM is not preempted for them.',
  };
}
