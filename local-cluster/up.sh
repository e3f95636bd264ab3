#!/usr/bin/env bash
# Brings up the local single-node cluster; idempotent (running components are kept).
#   up.sh cp     control plane: etcd, kube-apiserver, kube-controller-manager
#   up.sh full   adds kube-scheduler, containerd, kubelet, kube-proxy and the CNI bridge
# Every wait is bounded; on failure the failing component's last log lines are
# printed and the script exits non-zero (components already up are left running:
# `make cluster-down` stops them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="${1:-full}"
[[ "$mode" == cp || "$mode" == full ]] || die "usage: up.sh cp|full"
[[ "$(id -u)" == 0 ]] || die "the local cluster needs root (kubelet, containerd, iptables)"
T0=$SECONDS

"$LC_DIR/install-deps.sh" "$mode"
t=$SECONDS
"$LC_DIR/build.sh" >/dev/null
log "binaries ready in $BIN_DIR ($((SECONDS - t))s)"
lock_state

# Leftovers of a run that was never brought down (a killed session, a machine
# restart): clean them first so old pods and stale shims do not come back.
any_alive=0
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && alive "$(basename "$f" .pid)" && any_alive=1; done
if ((!any_alive)) && [[ -d "$KUBEVM_STATE/etcd" || -d "$RUN_DIR" || -d "$KUBELET_ROOT" ]]; then
  log "state of an earlier run found with nothing running: cleaning it up first"
  KUBEVM_LOCK_HELD=1 "$LC_DIR/down.sh"
fi

K="$BIN_DIR/kube"
mkdir -p "$LOG_DIR" "$PID_DIR" "$RUN_DIR"

# The node IP: the first global IPv4 address not on our own bridge. Pods reach
# the apiserver there (via the kubernetes Service); traffic to it stays on this host.
NODE_IP="${KUBEVM_NODE_IP:-$(ip -4 -o addr show scope global | awk -v br="$CNI_BRIDGE" '$2 != br {sub("/.*", "", $4); print $4; exit}')}"
[[ -n "$NODE_IP" ]] || die "no global IPv4 address found for the node (set KUBEVM_NODE_IP)"
"$LC_DIR/pki.sh" "$NODE_IP"
ADMIN_KUBECONFIG="$KUBECONFIG_DIR/admin.kubeconfig"
# Bounded: no call may hang the bring-up.
kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s "$@"; }

# --- process helpers -------------------------------------------------------

# start NAME CMD...: runs CMD in its own session (so cluster-down can kill its
# whole process group), logs to $LOG_DIR/NAME.log, unless already running.
start() {
  local name="$1"; shift
  if alive "$name"; then log "$name: already running (pid $(pid_of "$name"))"; return 0; fi
  {
    echo "=== $(date -u +%FT%TZ) starting: $*"
  } >>"$LOG_DIR/$name.log"
  # 9>&-: the component must not inherit (and hold) the state lock.
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
  write_pid "$name" $!
  STARTED[$name]=$SECONDS
}
declare -A STARTED=()

fail() { # fail NAME MESSAGE
  log "$1: $2"
  log "last lines of $LOG_DIR/$1.log:"
  tail -n 40 "$LOG_DIR/$1.log" >&2 || true
  exit 1
}

# wait_ready NAME TIMEOUT_S CHECK...: polls CHECK until it succeeds, the
# process dies, or the timeout passes.
wait_ready() {
  local name="$1" timeout="$2"; shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if [[ -f "$PID_DIR/$name.pid" ]] && ! alive "$name"; then fail "$name" "exited during start-up"; fi
    ((SECONDS - t0 < timeout)) || fail "$name" "not ready after ${timeout}s"
    sleep 0.5
  done
  log "$name: ready ($((SECONDS - ${STARTED[$name]:-$t0}))s)"
}

fill() { # fill TEMPLATE OUT: substitutes @VAR@ with the shell variable VAR
  # Writes only on change: kube-proxy exits when its config file is touched.
  local content var
  content="$(cat "$1")"
  for var in KUBEVM_STATE RUN_DIR CONTAINERD_SOCK PAUSE_IMAGE CNI_CONF_DIR CNI_BRIDGE POD_CIDR \
             PKI_DIR KUBECONFIG_DIR NODE_NAME; do
    content="${content//@$var@/${!var}}"
  done
  [[ -f "$2" && "$(cat "$2")" == "$content" ]] && return 0
  printf '%s\n' "$content" >"$2.tmp"
  mv "$2.tmp" "$2"
}

apiserver_readyz() { curl -sf --max-time 3 --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz"; }

# --- control plane ---------------------------------------------------------

# etcd on its own ports, so another etcd on the default 2379 never clashes.
# --unsafe-no-fsync: a disposable test store; fsync would dominate write latency.
ETCD_URL=http://127.0.0.1:12379
start etcd "$K" etcd --name kubevm --data-dir "$KUBEVM_STATE/etcd" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
  --initial-cluster kubevm=http://127.0.0.1:12380 --listen-metrics-urls http://127.0.0.1:12381 \
  --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
wait_ready etcd 60 curl -sf --max-time 2 "$ETCD_URL/health"

start kube-apiserver "$K" kube-apiserver \
  --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" \
  --etcd-servers "$ETCD_URL" \
  --client-ca-file "$PKI_DIR/ca.crt" \
  --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
  --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
  --kubelet-preferred-address-types InternalIP,Hostname \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --requestheader-client-ca-file "$PKI_DIR/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" \
  --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --allow-privileged=true \
  --profiling=false
wait_ready kube-apiserver 120 apiserver_readyz

start kube-controller-manager "$K" kube-controller-manager \
  --kubeconfig "$KUBECONFIG_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$KUBECONFIG_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$KUBECONFIG_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 \
  --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
  --root-ca-file "$PKI_DIR/ca.crt" --service-account-private-key-file "$PKI_DIR/sa.key" \
  --use-service-account-credentials=true \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
  --leader-elect=false --profiling=false
wait_ready kube-controller-manager 60 curl -sfk --max-time 2 https://127.0.0.1:10257/healthz

# The restricted users RBAC tests use: bound to the built-in ClusterRoles in one namespace.
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: { name: $TEST_NAMESPACE }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: kubevm-ns-admin, namespace: $TEST_NAMESPACE }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: kubevm-ns-admin }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: kubevm-ns-editor, namespace: $TEST_NAMESPACE }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: kubevm-ns-editor }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: kubevm-viewer, namespace: $TEST_NAMESPACE }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: kubevm-viewer }]
YAML
log "rbac: users kubevm-ns-admin, kubevm-ns-editor, kubevm-viewer bound in namespace $TEST_NAMESPACE"

# --- node --------------------------------------------------------------------

if [[ "$mode" == full ]]; then
  start kube-scheduler "$K" kube-scheduler \
    --kubeconfig "$KUBECONFIG_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$KUBECONFIG_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$KUBECONFIG_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false
  wait_ready kube-scheduler 60 curl -sfk --max-time 2 https://127.0.0.1:10259/healthz

  # Pod networking needs forwarding, and bridged traffic through iptables for Services.
  # Saved once, restored by cluster-down: other work on this machine keeps its settings.
  if [[ ! -f "$KUBEVM_STATE/sysctl.saved" ]]; then
    for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
      value="$(sysctl -n "$key" 2>/dev/null)" && echo "$key=$value"
    done >"$KUBEVM_STATE/sysctl.saved"
  fi
  sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "br_netfilter is not available: Service traffic between pods on the bridge would bypass kube-proxy"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1

  mkdir -p "$CNI_CONF_DIR" "$KUBEVM_STATE/containerd" "$RUN_DIR/containerd" "$KUBELET_ROOT" "$KUBEVM_STATE/pod-logs"
  fill "$LC_DIR/config/containerd.toml.in" "$KUBEVM_STATE/containerd/config.toml"
  fill "$LC_DIR/config/10-kubevm.conflist.in" "$CNI_CONF_DIR/10-kubevm.conflist"
  start containerd containerd --config "$KUBEVM_STATE/containerd/config.toml"
  wait_ready containerd 60 timeout 5 ctr --address "$CONTAINERD_SOCK" version

  # The pause image, from the pause.c in the Kubernetes module: nothing to pull.
  if ! timeout 30 ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q "name==$PAUSE_IMAGE" | grep -qx "$PAUSE_IMAGE"; then
    pause_root="$(mktemp -d)"
    install -D -m 0755 "$BIN_DIR/pause" "$pause_root/pause"
    "$LC_DIR/build-image.sh" --entrypoint '["/pause"]' --user 65535:65535 "$PAUSE_IMAGE" "$pause_root" >/dev/null
    rm -rf "$pause_root"
  fi
  log "pause image: $PAUSE_IMAGE"

  fill "$LC_DIR/config/kubelet.yaml.in" "$KUBEVM_STATE/kubelet.yaml"
  start kubelet "$K" kubelet --config "$KUBEVM_STATE/kubelet.yaml" \
    --kubeconfig "$KUBECONFIG_DIR/kubelet.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$PKI_DIR/kubelet-certs" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  wait_ready kubelet 90 curl -sf --max-time 2 http://127.0.0.1:10248/healthz
  node_ready() {
    [[ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
  }
  t0=$SECONDS
  until node_ready 2>/dev/null; do
    alive kubelet || fail kubelet "exited before the node became Ready"
    ((SECONDS - t0 < 120)) || { kubectl describe node "$NODE_NAME" 2>&1 | tail -n 30 >&2 || true; fail kubelet "node $NODE_NAME not Ready after 120s"; }
    sleep 1
  done
  log "node $NODE_NAME: Ready"

  fill "$LC_DIR/config/kube-proxy.yaml.in" "$KUBEVM_STATE/kube-proxy.yaml"
  start kube-proxy "$K" kube-proxy --config "$KUBEVM_STATE/kube-proxy.yaml"
  wait_ready kube-proxy 60 curl -sf --max-time 2 http://127.0.0.1:10256/livez

  # Pods need the default ServiceAccount, which the controller-manager creates.
  t0=$SECONDS
  until kubectl -n default get serviceaccount default >/dev/null 2>&1; do
    ((SECONDS - t0 < 60)) || fail kube-controller-manager "no default ServiceAccount after 60s"
    sleep 0.5
  done
fi

cat >"$KUBEVM_STATE/env" <<ENV
KUBECONFIG=$ADMIN_KUBECONFIG
KUBEVM_KUBECONFIG_DIR=$KUBECONFIG_DIR
KUBEVM_KUBECTL=$BIN_DIR/kubectl
KUBEVM_BIN_DIR=$BIN_DIR
KUBEVM_CLUSTER_MODE=$mode
KUBEVM_CONTAINERD_SOCK=$CONTAINERD_SOCK
KUBEVM_TEST_NAMESPACE=$TEST_NAMESPACE
KUBEVM_NODE_NAME=$NODE_NAME
KUBEVM_NODE_IP=$NODE_IP
KUBEVM_LOG_DIR=$LOG_DIR
KUBEVM_KUBELET_ROOT=$KUBELET_ROOT
ENV
echo "$mode" >"$KUBEVM_STATE/mode"
log "cluster ($mode) up in $((SECONDS - T0))s; logs: $LOG_DIR; env: $KUBEVM_STATE/env"
log "kubectl: $BIN_DIR/kubectl; restricted users: $KUBECONFIG_DIR/{ns-admin,ns-editor,viewer}.kubeconfig"
echo "KUBECONFIG=$ADMIN_KUBECONFIG"
