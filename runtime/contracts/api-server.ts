// Where the kube-apiserver reaches the api-server's admission webhook: the api-server serves it,
// the operator registers it (operator/render/webhooks.ts), deploy/api-server/webhooks.yaml names it.

/** The validating webhook's endpoint on the api-server's HTTPS port (ADR 0009). */
export const VALIDATING_WEBHOOK_PATH = '/admission/validate';

/** The mutating webhook's endpoint: kubevm's defaults written into each VMI created (ADR 0009). */
export const MUTATING_WEBHOOK_PATH = '/admission/mutate';

/**
 * Whether the webhooks demand the kube-apiserver's client certificate (the front proxy's, which it
 * presents to webhooks only when its admission configuration names one: docs/operations.md). The
 * operator's setting, passed to the api-server in this variable.
 */
export const WEBHOOK_CLIENT_AUTH = ['optional', 'required'] as const;
export type WebhookClientAuth = (typeof WEBHOOK_CLIENT_AUTH)[number];
export const WEBHOOK_CLIENT_AUTH_ENV = 'KUBEVM_API_WEBHOOK_CLIENT_AUTH';
