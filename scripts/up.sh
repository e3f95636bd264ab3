#!/usr/bin/env bash
# `make up`: the local default. A real Kubernetes built on this machine (one node;
# KUBEVM_NODES=2 adds a second), kubevm's images built and imported, kubevm installed, and an
# example VirtualMachine running.
# Every wait is bounded; a failure prints what failed and exits non-zero.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh

make --no-print-directory cluster-up
set -a; source "$KUBEVM_STATE/env"; set +a
kubectl() { "$KUBEVM_KUBECTL" "$@"; }

make --no-print-directory images
bash scripts/install-kubevm.sh

vm=docs/examples/local/vm-testguest.yaml
log "creating the example VirtualMachine ($vm)"
kubectl apply -f "$vm"
name="$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$vm")"
if ! kubectl wait vm "$name" --for=condition=Ready --timeout=300s; then
  kubectl get vm,vmi,pods -o wide || true
  kubectl describe vmi "$name" | tail -30 || true
  die "the example VM did not become Ready"
fi
kubectl get vm,vmi -o wide
cat <<MSG

kubevm is up. Try:
  export KUBECONFIG=$KUBECONFIG
  $KUBEVM_KUBECTL get vm,vmi
  $KUBEVM_KUBECTL logs -l kubevirt.io/vm=$name -c compute          # the launcher and the guest console
  make down                                                          # stop it all
MSG
