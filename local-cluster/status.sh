#!/usr/bin/env bash
# Prints each local-cluster component's state (running / not running, with pid)
# and the env file; exits 0 when every started component is still running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="$(cat "$KUBEVM_STATE/mode" 2>/dev/null || echo none)"
echo "mode: $mode   state: $KUBEVM_STATE   binaries: $BIN_DIR"
rc=0
names=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
[[ -f "$PID_DIR/node2-ns.pid" ]] && names+=(node2-ns containerd-2 kubelet-2 kube-proxy-2)
for name in "${names[@]}"; do
  if pid="$(pid_of "$name")"; then
    printf '  %-24s running (pid %s)\n' "$name" "$pid"
  elif [[ -f "$PID_DIR/$name.pid" ]]; then
    printf '  %-24s DEAD (see %s)\n' "$name" "$LOG_DIR/$name.log"
    rc=1
  else
    printf '  %-24s not started\n' "$name"
  fi
done
[[ -f "$KUBEVM_STATE/env" ]] && { echo "env ($KUBEVM_STATE/env):"; sed 's/^/  /' "$KUBEVM_STATE/env"; }
exit "$rc"
