#!/usr/bin/env bash
# Removes kubevm from the cluster KUBECONFIG points at: every VirtualMachine and VMI (their
# launcher pods go with them), then the KubeVirt CR (the operator removes everything it created),
# then the operator itself. Also clears what a half-finished install or an earlier layout left
# (objects labelled as the operator's, deploy/'s component manifests, the CRDs). Idempotent;
# bounded waits.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh
# Without KUBEVM_KUBECTL, the kubectl on PATH (`command`: not this function, which would recurse).
kubectl() { if [[ -n "${KUBEVM_KUBECTL:-}" ]]; then "$KUBEVM_KUBECTL" "$@"; else command kubectl "$@"; fi; }
managed=app.kubernetes.io/managed-by=kubevm-operator

if kubectl get crd virtualmachines.kubevirt.io >/dev/null 2>&1; then
  log "deleting VirtualMachines and VirtualMachineInstances"
  kubectl delete vm,vmi --all --all-namespaces --wait=true --timeout=120s >/dev/null || true
fi
if kubectl get crd kubevirts.kubevirt.io >/dev/null 2>&1 && [[ -n "$(kubectl get kubevirt --all-namespaces -o name 2>/dev/null)" ]]; then
  log "deleting the KubeVirt CR (the operator removes what it created)"
  kubectl delete kubevirt --all --all-namespaces --wait=true --timeout=120s >/dev/null ||
    log "the operator did not finish removing kubevm; removing what is left directly"
fi
# Without a running operator or controller (half installed, or a cluster whose etcd outlived the
# previous install) nothing would ever clear these: the admission webhook (it fails closed, so it
# would refuse the patches below), then the finalizers that would keep the CRDs from going.
kubectl delete validatingwebhookconfiguration -l "$managed" --ignore-not-found >/dev/null
kubectl delete mutatingwebhookconfiguration -l "$managed" --ignore-not-found >/dev/null
kubectl delete validatingwebhookconfiguration kubevm-validator --ignore-not-found >/dev/null
kubectl delete mutatingwebhookconfiguration kubevm-mutator --ignore-not-found >/dev/null
for kind in vm vmi kubevirt; do
  kubectl get "$kind" --all-namespaces -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' 2>/dev/null |
    while read -r ns name; do
      [ -n "$name" ] || continue
      log "removing the finalizers of $kind $ns/$name (no running component removed them)"
      kubectl patch "$kind" -n "$ns" "$name" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null || true
    done || true  # no such kind: its CRD is gone already
done
log "deleting kubevm's components and the operator"
kubectl delete apiservice,clusterrolebinding,clusterrole,priorityclass -l "$managed" --ignore-not-found >/dev/null
kubectl -n kube-system delete rolebinding -l "$managed" --ignore-not-found >/dev/null
kubectl delete -R -f deploy/api-server -f deploy/controller -f deploy/node-handler --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl delete -f deploy/kubevm-operator.yaml --ignore-not-found --wait=true --timeout=120s >/dev/null
log "deleting the CRDs"
kubectl delete -f crds/ --ignore-not-found --wait=false >/dev/null
# The API server's CRD finalizer can fail a pass and then sit until its 5-minute resync; a touch
# brings it back (as the operator does, operator/crd-deletion.ts).
crd_names=$(kubectl get -f crds/ --ignore-not-found -o name 2>/dev/null || true)
deadline=$((SECONDS + 120))
while [[ -n "$crd_names" ]]; do
  (( SECONDS < deadline )) || die "CRDs still being deleted after 120 s: $crd_names"
  for crd in $crd_names; do
    reason=$(kubectl get "$crd" --ignore-not-found -o jsonpath='{.status.conditions[?(@.type=="Terminating")].reason}' 2>/dev/null || true)
    if [[ "$reason" == InstanceDeletionFailed || "$reason" == InstanceDeletionCheck ]]; then
      log "$crd: the API server's finalizer failed a pass ($reason); touching it so that it tries again"
      kubectl annotate "$crd" --overwrite "kubevm.io/crd-finalizer-retry=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >/dev/null 2>&1 || true
    fi
  done
  sleep 1
  crd_names=$(kubectl get -f crds/ --ignore-not-found -o name 2>/dev/null || true)
done
log "kubevm uninstalled"
