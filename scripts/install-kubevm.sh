#!/usr/bin/env bash
# Installs kubevm from this checkout into the cluster KUBECONFIG points at: the CRDs, then the
# components from deploy/, and waits until they are ready. Until the operator exists, this is how
# kubevm is installed; the operator will render the same objects.
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
kubectl apply -R -f deploy/controller -f deploy/node-handler >/dev/null
kubectl apply -f docs/examples/kubevirt.yaml >/dev/null  # useEmulation: the local cluster has no usable KVM
if ! kubectl -n kubevirt rollout status deployment/kubevm-controller --timeout=180s ||
   ! kubectl -n kubevirt rollout status daemonset/kubevm-node-handler --timeout=180s; then
  kubectl -n kubevirt get pods -o wide || true
  kubectl -n kubevirt describe pods | tail -40 || true
  die "kubevm's components did not become ready"
fi
log "kubevm installed"
