#!/usr/bin/env bash
# Runs a command on node 2 of the local cluster (KUBEVM_NODES=2): in its network and mount
# namespaces, where its kubelet, containerd and kube-proxy run. E.g.
#   local-cluster/node2-exec.sh ip addr                  its interfaces (eth0 10.243.0.2, kubevm0)
#   local-cluster/node2-exec.sh ls /var/lib/kubelet/pods its kubelet's pods
#   local-cluster/node2-exec.sh iptables-save -t nat     its kube-proxy's rules
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($#)) || die "usage: node2-exec.sh COMMAND [ARG...]"
node2_exec "$@"
