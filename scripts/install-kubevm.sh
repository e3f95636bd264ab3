#!/usr/bin/env bash
# Installs kubevm from this checkout into the cluster KUBECONFIG points at, as a user would: the
# operator (deploy/kubevm-operator.yaml, the images `make images` imported) and a KubeVirt CR
# (docs/examples/kubevirt.yaml: useEmulation, since the local cluster has no usable KVM). The
# operator renders everything else (CRDs, RBAC, components, every certificate, APIServices, the
# admission webhook); this waits until the CR says Available and the aggregated API answers.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh
# Without KUBEVM_KUBECTL, the kubectl on PATH (`command`: not this function, which would recurse).
kubectl() { if [[ -n "${KUBEVM_KUBECTL:-}" ]]; then "$KUBEVM_KUBECTL" "$@"; else command kubectl "$@"; fi; }

diagnose() {
  kubectl -n kubevirt get kubevirt,deployments,daemonsets,pods -o wide || true
  kubectl -n kubevirt get kubevirt kubevirt -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' || true
  kubectl -n kubevirt logs deployment/kubevm-operator --tail=30 || true
}

log "installing the operator (deploy/kubevm-operator.yaml)"
# The local cluster's kube-apiserver presents its front-proxy certificate to kubevm's webhooks
# (local-cluster/up.sh): the api-server then refuses reviews from anyone else.
sed "/name: KUBEVM_WEBHOOK_CLIENT_AUTH/{n;s/value: optional/value: ${KUBEVM_WEBHOOK_CLIENT_AUTH:-optional}/}" deploy/kubevm-operator.yaml |
  kubectl apply --server-side --force-conflicts -f - >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/kubevirts.kubevirt.io >/dev/null

log "creating the KubeVirt CR (docs/examples/kubevirt.yaml)"
kubectl apply --server-side --force-conflicts -f docs/examples/kubevirt.yaml >/dev/null
# Available: every component rolled out, the APIServices and the webhook registered with the operator's CA.
if ! kubectl -n kubevirt wait kubevirt/kubevirt --for=condition=Available --timeout=300s >/dev/null; then
  diagnose
  die "the KubeVirt CR did not become Available"
fi
if ! kubectl wait --for=condition=Available --timeout=60s apiservice/v1.subresources.kubevirt.io apiservice/v1alpha3.subresources.kubevirt.io >/dev/null; then
  diagnose
  die "the kube-apiserver does not reach the api-server (subresources.kubevirt.io)"
fi
log "kubevm installed ($(kubectl -n kubevirt get kubevirt kubevirt -o jsonpath='{.status.phase}, version {.status.observedKubeVirtVersion}'))"
