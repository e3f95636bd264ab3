#!/usr/bin/env bash
# Removes kubevm from the cluster KUBECONFIG points at: every VirtualMachine and VMI (their
# launcher pods go with them), the components in namespace kubevirt, the cluster-scoped RBAC and
# the CRDs. Idempotent; bounded waits.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh
kubectl() { "${KUBEVM_KUBECTL:-kubectl}" "$@"; }

if kubectl get crd virtualmachines.kubevirt.io >/dev/null 2>&1; then
  log "deleting VirtualMachines and VirtualMachineInstances"
  kubectl delete vm,vmi --all --all-namespaces --wait=true --timeout=120s >/dev/null || true
  # VMs, VMIs (and a KubeVirt CR the operator managed) carry finalizers only a running component removes. Without one
  # (kubevm half installed, or a cluster whose etcd outlived the previous install) they would keep
  # the CRDs from ever going: the uninstall removes them itself, since everything goes anyway.
  for kind in vm vmi kubevirt; do
    kubectl get "$kind" --all-namespaces -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' 2>/dev/null |
      while read -r ns name; do
        [ -n "$name" ] || continue
        log "removing the finalizers of $kind $ns/$name (no controller removed them)"
        kubectl patch "$kind" -n "$ns" "$name" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null || true
      done
  done
fi
log "deleting kubevm's components"
kubectl delete -R -f deploy/api-server -f deploy/controller -f deploy/node-handler --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl delete -f deploy/namespace.yaml --ignore-not-found --wait=true --timeout=120s >/dev/null
log "deleting the CRDs"
kubectl delete -f crds/ --ignore-not-found --wait=true --timeout=120s >/dev/null
log "kubevm uninstalled"
