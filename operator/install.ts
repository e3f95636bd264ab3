// What one kubevm installation is made of, as the operator names and labels it. Every object the
// operator creates carries MANAGED_BY_LABEL, so it can watch exactly what it owns (drift), find
// what it no longer renders (prune) and remove exactly that on uninstall, and nothing else.
import type { WebhookClientAuth } from '../runtime/contracts/api-server.js';
import type { ObjectMeta } from '../runtime/kube.js';

/** The field manager of every server-side apply the operator sends. */
export const FIELD_MANAGER = 'kubevm-operator';
/** On the KubeVirt CR while the operator has objects to remove (KubeVirt's finalizer name). */
export const KUBEVIRT_FINALIZER = 'kubevirt.io/virtOperatorFinalizer';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'kubevm-operator';
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const NAME_LABEL = 'app.kubernetes.io/name';
export const VERSION_LABEL = 'app.kubernetes.io/version';
/** KubeVirt's app label (kubevirt.io: virt-controller, virt-handler, ...), kept for tools that select on it. */
export const KUBEVIRT_APP_LABEL = 'kubevirt.io';
/** Label selector of everything the operator manages. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/** kubevm's components, with KubeVirt's name for each (its kubevirt.io label). */
export const COMPONENTS = {
  controller: { name: 'kubevm-controller', image: 'controller', kubevirtName: 'virt-controller' },
  nodeHandler: { name: 'kubevm-node-handler', image: 'node-handler', kubevirtName: 'virt-handler' },
  apiServer: { name: 'kubevm-api-server', image: 'api-server', kubevirtName: 'virt-api' },
  operator: { name: 'kubevm-operator', image: 'operator', kubevirtName: 'virt-operator' },
} as const;
export type ComponentKey = keyof typeof COMPONENTS;

/** The Secret with a component's metrics serving certificate (operator/pki.ts issues it, runtime/metrics-server.ts serves it). */
export function metricsTlsSecret(component: ComponentKey): string {
  return `${COMPONENTS[component].name}-metrics-tls`;
}

/** The names in a component's metrics certificate; a scraper verifies the pod's certificate against one of them. */
export function metricsDnsNames(component: ComponentKey, namespace: string): string[] {
  const name = `${COMPONENTS[component].name}-metrics`;
  return [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}

/** The launcher image is not a Deployment of its own: the controller puts it in every VM's pod. */
export const LAUNCHER_IMAGE_NAME = 'launcher';

/** A rendered object: what is sent as a server-side apply body. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string };
  [field: string]: unknown;
}

/** Where and what to install: the KubeVirt CR's settings resolved against the operator's defaults. */
export interface InstallTarget {
  /** The namespace of the KubeVirt CR; the components run there. */
  namespace: string;
  registry: string;
  tag: string;
  pullPolicy: 'Always' | 'Never' | 'IfNotPresent';
  /** Whether the webhooks demand the kube-apiserver's client certificate (the operator's setting; optional when unset). */
  webhookClientAuth?: WebhookClientAuth;
}

export function imageRef(target: InstallTarget, image: string): string {
  return `${target.registry}/${image}:${target.tag}`;
}

/** Labels of every managed object of a component. */
export function managedLabels(component: string, target: Pick<InstallTarget, 'tag'>): Record<string, string> {
  return {
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [PART_OF_LABEL]: 'kubevm',
    [COMPONENT_LABEL]: component,
    [VERSION_LABEL]: target.tag,
  };
}

/** Pod selector labels of a component: stable across versions (a Deployment's selector is immutable). */
export function selectorLabels(component: string): Record<string, string> {
  return { [NAME_LABEL]: 'kubevm', [COMPONENT_LABEL]: component };
}
