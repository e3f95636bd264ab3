// The api-server's validating admission webhook (ADR 0009), registered by the operator with the
// operator's CA bundle. deploy/api-server/webhooks.yaml holds the same registration for reading.
import { VALIDATING_WEBHOOK_PATH } from '../../runtime/contracts/api-server.js';
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, managedLabels } from '../install.js';

export const VALIDATING_WEBHOOK_CONFIGURATION = 'kubevm-validator';

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
export function renderValidatingWebhooks(target: InstallTarget, caBundle: string): Manifest {
  const clientConfig = {
    caBundle: Buffer.from(caBundle).toString('base64'),
    service: { namespace: target.namespace, name: COMPONENTS.apiServer.name, path: VALIDATING_WEBHOOK_PATH, port: 443 },
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: VALIDATING_WEBHOOK_CONFIGURATION, labels: managedLabels('api-server', target) },
    webhooks: [
      {
        name: 'virtualmachines.validator.kubevm.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        matchPolicy: 'Equivalent',
        clientConfig,
        rules: RULES,
      },
      {
        // The exec guard (api-server/admission/guards.ts): every pod CONNECT (exec, attach,
        // port-forward) is sent; the webhook lets pods other than launchers through. Not in
        // kube-system and kubevm's own namespace, so a cluster whose api-server is down can still be
        // debugged there.
        name: 'launcher-pods.connect.kubevm.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        matchPolicy: 'Equivalent',
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', target.namespace] }] },
        clientConfig,
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CONNECT'], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], scope: 'Namespaced' }],
      },
    ],
  };
}
