# Local Kubernetes, one node or two (see local-cluster/README.md). Included by the root Makefile.
#   make cluster-build   build (once, cached) the Kubernetes + etcd binary and the pause binary
#   make cluster-up      full node: etcd, apiserver, controller-manager, scheduler, containerd,
#                        kubelet, kube-proxy, CNI bridge; prints KUBECONFIG=..., writes $KUBEVM_STATE/env;
#                        KUBEVM_NODES=2 adds a second node (own network and mount namespaces)
#   make cluster-up-cp   control plane only: etcd, apiserver, controller-manager (fast)
#   make cluster-down    stop everything it started and verify nothing is left
#   make cluster-purge   cluster-down, then remove $KUBEVM_STATE (PKI and images included)
#   make cluster-status  which components run, and the env file
LOCAL_CLUSTER_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: cluster-build cluster-up cluster-up-cp cluster-down cluster-purge cluster-status

cluster-build:
	@bash $(LOCAL_CLUSTER_DIR)install-deps.sh cp
	@bash $(LOCAL_CLUSTER_DIR)build.sh

cluster-up:
	@bash $(LOCAL_CLUSTER_DIR)up.sh full

cluster-up-cp:
	@bash $(LOCAL_CLUSTER_DIR)up.sh cp

cluster-down:
	@bash $(LOCAL_CLUSTER_DIR)down.sh

cluster-purge:
	@bash $(LOCAL_CLUSTER_DIR)down.sh --purge

cluster-status:
	@bash $(LOCAL_CLUSTER_DIR)status.sh
