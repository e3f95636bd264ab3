// Where the kube-apiserver reaches the api-server's admission webhook: the api-server serves it,
// the operator registers it (operator/render/webhooks.ts), deploy/api-server/webhooks.yaml names it.

/** The validating webhook's endpoint on the api-server's HTTPS port (ADR 0009). */
export const VALIDATING_WEBHOOK_PATH = '/admission/validate';

/** The mutating webhook's endpoint: kubevm's defaults written into each VMI created (ADR 0009). */
export const MUTATING_WEBHOOK_PATH = '/admission/mutate';
