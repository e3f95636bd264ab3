// The api-server's admission webhooks (ADR 0009), registered by the operator with the operator's
// CA bundle. deploy/api-server/webhooks.yaml holds the same registrations for reading.
import { MUTATING_WEBHOOK_PATH, VALIDATING_WEBHOOK_PATH } from '../../runtime/contracts/api-server.js';
import { LAUNCHER_POD_NAME_PREFIX } from '../../runtime/contracts/launcher-pod.js';
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, managedLabels } from '../install.js';

export const VALIDATING_WEBHOOK_CONFIGURATION = 'kubevm-validator';
export const MUTATING_WEBHOOK_CONFIGURATION = 'kubevm-mutator';

const RULES = [
  { apiGroups: ['kubevirt.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['virtualmachines', 'virtualmachineinstances', 'virtualmachineinstancemigrations', 'kubevirts'], scope: 'Namespaced' },
  { apiGroups: ['instancetype.kubevirt.io'], apiVersions: ['v1beta1'], operations: ['CREATE', 'UPDATE'], resources: ['virtualmachineinstancetypes', 'virtualmachinepreferences'], scope: 'Namespaced' },
  { apiGroups: ['instancetype.kubevirt.io'], apiVersions: ['v1beta1'], operations: ['CREATE', 'UPDATE'], resources: ['virtualmachineclusterinstancetypes', 'virtualmachineclusterpreferences'], scope: 'Cluster' },
  { apiGroups: ['migrations.kubevirt.io'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['migrationpolicies'], scope: 'Cluster' },
];

/**
 * The ValidatingWebhookConfiguration, trusting `caBundle` (PEM). It fails closed, so the reconciler
 * registers it only once an api-server replica answers, and keeps it from then on.
 */
/** What every kubevm webhook shares: it only reads (dry runs work), and it fails closed (ADR 0009). */
const FAIL_CLOSED = { admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 10, matchPolicy: 'Equivalent' } as const;

function clientConfig(target: InstallTarget, caBundle: string, path: string) {
  return {
    caBundle: Buffer.from(caBundle).toString('base64'),
    service: { namespace: target.namespace, name: COMPONENTS.apiServer.name, path, port: 443 },
  };
}

function webhookConfiguration(kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration', name: string, target: InstallTarget, webhooks: object[]): Manifest {
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name, labels: managedLabels('api-server', target) }, webhooks };
}

export function renderValidatingWebhooks(target: InstallTarget, caBundle: string): Manifest {
  const validate = clientConfig(target, caBundle, VALIDATING_WEBHOOK_PATH);
  return webhookConfiguration('ValidatingWebhookConfiguration', VALIDATING_WEBHOOK_CONFIGURATION, target, [
    {
      name: 'virtualmachines.validator.kubevm.io',
      ...FAIL_CLOSED,
      clientConfig: validate,
      rules: RULES,
    },
    {
      // The exec guard (api-server/admission/guards.ts): every pod CONNECT (exec, attach,
      // port-forward) is sent; the webhook lets pods other than launchers through. Not in
      // kube-system and kubevm's own namespace, so a cluster whose api-server is down can still be
      // debugged there.
      name: 'launcher-pods.connect.kubevm.io',
      ...FAIL_CLOSED,
      namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', target.namespace] }] },
      clientConfig: validate,
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CONNECT'], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], scope: 'Namespaced' }],
    },
    {
      // KubeVirt's: an eviction (kubectl drain) of a launcher pod whose VMI is to migrate is refused
      // with 429 and the VMI marked for the evacuation controller (api-server/admission/eviction.ts).
      // The request's object is the Eviction, whose labels are not the pod's, so no objectSelector
      // can pick launcher pods: a matchCondition on the launcher pods' name prefix sends only those
      // (target pods included), and the webhook checks the pod's kubevirt.io label. It writes the
      // mark, except on a dry run (NoneOnDryRun).
      name: 'virt-launcher-eviction-interceptor.kubevirt.io',
      ...FAIL_CLOSED,
      sideEffects: 'NoneOnDryRun',
      clientConfig: validate,
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods/eviction'], scope: 'Namespaced' }],
      matchConditions: [{ name: 'only-launcher-pods', expression: `object.metadata.name.startsWith(${JSON.stringify(LAUNCHER_POD_NAME_PREFIX)})` }],
    },
  ]);
}

/**
 * The MutatingWebhookConfiguration: kubevm's defaults into each VMI created, VirtualMachines never
 * (ADR 0009). Fails closed like the validator, which the same replicas serve; registered with it.
 */
export function renderMutatingWebhooks(target: InstallTarget, caBundle: string): Manifest {
  return webhookConfiguration('MutatingWebhookConfiguration', MUTATING_WEBHOOK_CONFIGURATION, target, [
    {
      name: 'virtualmachineinstances.mutator.kubevm.io',
      ...FAIL_CLOSED,
      reinvocationPolicy: 'Never',
      clientConfig: clientConfig(target, caBundle, MUTATING_WEBHOOK_PATH),
      rules: [{ apiGroups: ['kubevirt.io'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['virtualmachineinstances'], scope: 'Namespaced' }],
    },
  ]);
}
