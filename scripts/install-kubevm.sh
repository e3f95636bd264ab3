#!/usr/bin/env bash
# Installs kubevm from this checkout into the cluster KUBECONFIG points at: the CRDs, then the
# components from deploy/ (the api-server's certificate made by scripts/api-server-certs.sh, the
# api-server <-> node handler stream certificates by scripts/stream-certs.sh), and
# waits until they are ready. Until the operator exists, this is how kubevm is installed; the
# operator will render the same objects.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh
kubectl() { "${KUBEVM_KUBECTL:-kubectl}" "$@"; }

log "installing the CRDs"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

log "installing the kubevm components"
kubectl apply -f deploy/namespace.yaml >/dev/null
# Console, VNC and port-forward: the node handlers' and the api-server's certificates (ADR 0014).
bash scripts/stream-certs.sh
kubectl apply -R -f deploy/controller -f deploy/node-handler >/dev/null

log "installing the api-server (subresources.kubevirt.io, admission webhooks)"
ca_bundle="$(bash scripts/api-server-certs.sh | base64 -w0)"
kubectl apply -f deploy/api-server/rbac.yaml -f deploy/api-server/service.yaml -f deploy/api-server/deployment.yaml >/dev/null
# The APIServices and the webhooks trust the CA of the api-server's serving certificate.
sed "s|^  service:|  caBundle: $ca_bundle\n  service:|" deploy/api-server/apiservice.yaml | kubectl apply -f - >/dev/null
# The webhooks fail closed (ADR 0009): register them once a replica answers.
if ! kubectl -n kubevirt rollout status deployment/kubevm-api-server --timeout=180s; then
  kubectl -n kubevirt get pods -o wide || true
  die "the api-server did not become ready"
fi
sed "s|caBundle: \"\"|caBundle: $ca_bundle|" deploy/api-server/webhooks.yaml | kubectl apply -f - >/dev/null

kubectl apply -f docs/examples/kubevirt.yaml >/dev/null  # useEmulation: the local cluster has no usable KVM
if ! kubectl -n kubevirt rollout status deployment/kubevm-controller --timeout=180s ||
   ! kubectl -n kubevirt rollout status daemonset/kubevm-node-handler --timeout=180s ||
   ! kubectl wait --for=condition=Available --timeout=60s apiservice/v1.subresources.kubevirt.io apiservice/v1alpha3.subresources.kubevirt.io; then
  kubectl -n kubevirt get pods -o wide || true
  kubectl -n kubevirt describe pods | tail -40 || true
  die "kubevm's components did not become ready"
fi
log "kubevm installed"
