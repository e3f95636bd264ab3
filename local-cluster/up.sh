#!/usr/bin/env bash
# Brings up the local cluster; idempotent (running components are kept).
#   up.sh cp     control plane: etcd, kube-apiserver, kube-controller-manager
#   up.sh full   adds kube-scheduler, containerd, kubelet, kube-proxy and the CNI bridge
# KUBEVM_NODES=2 (full only) adds a second node: containerd, kubelet and kube-proxy in their own
# network and mount namespaces (docs/adr/0015-second-local-node.md). A second node once up stays
# up until cluster-down.
# Every wait is bounded; on failure the failing component's last log lines are
# printed and the script exits non-zero (components already up are left running:
# `make cluster-down` stops them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="${1:-full}"
[[ "$mode" == cp || "$mode" == full ]] || die "usage: up.sh cp|full"
[[ "$(id -u)" == 0 ]] || die "the local cluster needs root (kubelet, containerd, iptables)"
nodes="${KUBEVM_NODES:-1}"
[[ "$nodes" == 1 || "$nodes" == 2 ]] || die "KUBEVM_NODES=$nodes: the local cluster has 1 (default) or 2 nodes"
[[ "$mode" == full ]] || nodes=1
T0=$SECONDS

"$LC_DIR/install-deps.sh" "$mode"
t=$SECONDS
"$LC_DIR/build.sh" >/dev/null
CONTAINERD_DIR=""
if [[ "$mode" == full ]]; then
  CONTAINERD_DIR="$("$LC_DIR/containerd/build.sh")" || die "containerd could not be built"
fi
log "binaries ready in $BIN_DIR ($((SECONDS - t))s)"
lock_state

# Node 2 already up (an earlier KUBEVM_NODES=2 bring-up) stays up.
alive kubelet-2 && nodes=2
# Leftovers of a run that was never brought down (a killed session, a machine
# restart): clean them first so old pods and stale shims do not come back.
any_alive=0
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && alive "$(basename "$f" .pid)" && any_alive=1; done
if ((!any_alive)) && [[ -d "$KUBEVM_STATE/etcd" || -d "$RUN_DIR" || -d "$KUBELET_ROOT" || -d "$NODE2_DIR/run" || -e "/run/netns/$NODE2_NETNS" ]]; then
  log "state of an earlier run found with nothing running: cleaning it up first"
  KUBEVM_LOCK_HELD=1 "$LC_DIR/down.sh"
fi

K="$BIN_DIR/kube"
mkdir -p "$LOG_DIR" "$PID_DIR" "$RUN_DIR"

# The node IP: the first global IPv4 address not on our own interfaces (kubevm*). Pods reach
# the apiserver there (via the kubernetes Service); traffic to it stays on this host.
NODE_IP="${KUBEVM_NODE_IP:-$(ip -4 -o addr show scope global | awk '$2 !~ /^kubevm/ {sub("/.*", "", $4); print $4; exit}')}"
[[ -n "$NODE_IP" ]] || die "no global IPv4 address found for the node (set KUBEVM_NODE_IP)"
"$LC_DIR/pki.sh" "$NODE_IP" "$nodes"
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
             PKI_DIR KUBECONFIG_DIR NODE_NAME CLUSTER_CIDR CGROUP_ROOT KUBELET_SERVING_CERT \
             KUBE_PROXY_KUBECONFIG NETNS_UNDER_STATE; do
    content="${content//@$var@/${!var}}"
  done
  [[ -f "$2" && "$(cat "$2")" == "$content" ]] && return 0
  printf '%s\n' "$content" >"$2.tmp"
  mv "$2.tmp" "$2"
}

# Node 1's values of the per-node template variables (node2_fill has node 2's).
CGROUP_ROOT=/ KUBELET_SERVING_CERT=kubelet-serving KUBE_PROXY_KUBECONFIG=kube-proxy NETNS_UNDER_STATE=false

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

# The kube-apiserver presents the front proxy's client certificate to the webhooks of Services in
# the namespace kubevirt (kubevm's): with it, the api-server can refuse admission reviews that do
# not come from the kube-apiserver (KUBEVM_WEBHOOK_CLIENT_AUTH=required; docs/operations.md).
mkdir -p "$KUBEVM_STATE/admission"
cat >"$KUBEVM_STATE/admission/webhook.kubeconfig" <<YAML
apiVersion: v1
kind: Config
users:
  - name: '*.kubevirt.svc'
    user:
      client-certificate: $PKI_DIR/front-proxy-client.crt
      client-key: $PKI_DIR/front-proxy-client.key
YAML
cat >"$KUBEVM_STATE/admission/config.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ValidatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: $KUBEVM_STATE/admission/webhook.kubeconfig
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: $KUBEVM_STATE/admission/webhook.kubeconfig
YAML

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
  --admission-control-config-file "$KUBEVM_STATE/admission/config.yaml" \
  --requestheader-client-ca-file "$PKI_DIR/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" \
  --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --allow-privileged=true \
  --feature-gates "$API_FEATURE_GATES" \
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

# --- nodes -------------------------------------------------------------------

# pod_masquerade [NSENTER...] POD_CIDR: pod traffic leaving the cluster network is masqueraded
# (one rule per node, instead of the bridge plugin's chain per pod that also masqueraded traffic
# to other nodes' pods): pods see each other's own IPs, across nodes too.
POD_MASQ_COMMENT="kubevm: pod traffic leaving the cluster network"
pod_masquerade() {
  local cidr="${*: -1}" rule
  rule=(POSTROUTING -s "$cidr" ! -d "$CLUSTER_CIDR" -m comment --comment "$POD_MASQ_COMMENT" -j MASQUERADE)
  "${@:1:$#-1}" iptables -t nat -C "${rule[@]}" 2>/dev/null || "${@:1:$#-1}" iptables -t nat -A "${rule[@]}"
}

# node2_fill TEMPLATE OUT: fill with node 2's values.
node2_fill() (
  KUBEVM_STATE="$NODE2_DIR" RUN_DIR="$NODE2_DIR/run" CONTAINERD_SOCK="$NODE2_CONTAINERD_SOCK"
  CNI_CONF_DIR="$NODE2_DIR/cni/net.d" POD_CIDR="$NODE2_POD_CIDR" NODE_NAME="$NODE2_NAME"
  CGROUP_ROOT="/$NODE2_CGROUP" KUBELET_SERVING_CERT=kubelet-serving-2 KUBE_PROXY_KUBECONFIG=kube-proxy-2
  NETNS_UNDER_STATE=true
  fill "$@"
)

# Node 2's network namespace (a veth pair to the host, routes between the pod CIDRs through the
# host), its kubelet's cgroup root, and the process that holds its mount namespace, in which its
# private paths are bound from $NODE2_DIR/root. Its components join both namespaces (node2_exec).
node2_namespaces() {
  local in_net=(nsenter "--net=/run/netns/$NODE2_NETNS") d p
  [[ -e "/run/netns/$NODE2_NETNS" ]] || ip netns add "$NODE2_NETNS"
  ip link show "$NODE2_VETH" >/dev/null 2>&1 || ip link add "$NODE2_VETH" type veth peer name eth0 netns "$NODE2_NETNS"
  ip addr replace "$NODE2_HOST_LINK_IP/30" dev "$NODE2_VETH"
  ip link set "$NODE2_VETH" up
  "${in_net[@]}" ip addr replace "$NODE2_IP/30" dev eth0
  "${in_net[@]}" ip link set lo up
  "${in_net[@]}" ip link set eth0 up
  "${in_net[@]}" ip route replace default via "$NODE2_HOST_LINK_IP"
  ip route replace "$NODE2_POD_CIDR" via "$NODE2_IP" dev "$NODE2_VETH"
  "${in_net[@]}" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  pod_masquerade "${in_net[@]}" "$NODE2_POD_CIDR"

  # cgroup v1 gives a new cpuset no CPUs or memory nodes: copy its parent's.
  for d in /sys/fs/cgroup/*/; do
    mkdir -p "$d$NODE2_CGROUP"
    if [[ -f "${d}cpuset.cpus" && -z "$(cat "$d$NODE2_CGROUP/cpuset.cpus")" ]]; then
      cat "${d}cpuset.cpus" >"$d$NODE2_CGROUP/cpuset.cpus"
      cat "${d}cpuset.mems" >"$d$NODE2_CGROUP/cpuset.mems"
    fi
  done

  local binds=""
  for p in "${NODE2_PRIVATE_PATHS[@]}"; do
    mkdir -p "$p" "$NODE2_DIR/root$p"
    # Shared at once: mountPropagation (the node handler's HostToContainer) needs a shared or
    # slave source, and the kubelet's own bind-on-itself would leave two entries for the path,
    # the first of them private, which is the one containerd checks.
    binds+="mount --bind '$NODE2_DIR/root$p' '$p' && mount --make-rshared '$p' && "
  done
  # Slave propagation: the host's later mounts may reach the node, the node's never the host.
  start node2-ns "${in_net[@]}" unshare --mount --propagation slave -- bash -c "${binds}exec sleep infinity"
  node2_bound() {
    local holder q
    holder="$(pid_of node2-ns)" || return 1
    for q in "${NODE2_PRIVATE_PATHS[@]}"; do awk -v m="$q" '$5 == m {f=1} END {exit !f}' "/proc/$holder/mountinfo" || return 1; done
    [[ "$(readlink "/proc/$holder/ns/mnt")" != "$(readlink /proc/$$/ns/mnt)" &&
       "$(readlink "/proc/$holder/ns/net")" != "$(readlink /proc/$$/ns/net)" ]] || return 1
    # down.sh finds every process left in the node's namespaces by these ids.
    readlink "/proc/$holder/ns/mnt" "/proc/$holder/ns/net" >"$NODE2_DIR/run/namespaces"
  }
  wait_ready node2-ns 10 node2_bound
}

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
  pod_masquerade "$POD_CIDR"

  mkdir -p "$CNI_CONF_DIR" "$KUBEVM_STATE/containerd" "$RUN_DIR/containerd" "$KUBELET_ROOT" "$KUBEVM_STATE/pod-logs"
  fill "$LC_DIR/config/containerd.toml.in" "$KUBEVM_STATE/containerd/config.toml"
  fill "$LC_DIR/config/10-kubevm.conflist.in" "$CNI_CONF_DIR/10-kubevm.conflist"
  # containerd from its module (containerd/build.sh); it finds its shim on PATH. The scripts find
  # its ctr through $KUBEVM_STATE/containerd-bin (lib.sh).
  echo "$CONTAINERD_DIR" >"$KUBEVM_STATE/containerd-bin"
  export PATH="$CONTAINERD_DIR:$PATH"
  start containerd containerd --config "$KUBEVM_STATE/containerd/config.toml"
  if ((nodes == 2)); then
    mkdir -p "$NODE2_DIR/cni/net.d" "$NODE2_DIR/containerd" "$NODE2_DIR/run/containerd" "$NODE2_DIR/pod-logs"
    node2_namespaces
    node2_fill "$LC_DIR/config/containerd.toml.in" "$NODE2_DIR/containerd/config.toml"
    node2_fill "$LC_DIR/config/10-kubevm.conflist.in" "$NODE2_DIR/cni/net.d/10-kubevm.conflist"
    node2_fill "$LC_DIR/config/kubelet.yaml.in" "$NODE2_DIR/kubelet.yaml"
    node2_fill "$LC_DIR/config/kube-proxy.yaml.in" "$NODE2_DIR/kube-proxy.yaml"
    # setsid runs commands, not shell functions: node2_exec spelled out.
    N2=(nsenter --target "$(pid_of node2-ns)" --mount --net --)
    start containerd-2 "${N2[@]}" containerd --config "$NODE2_DIR/containerd/config.toml"
  fi
  wait_ready containerd 60 timeout 5 ctr --address "$CONTAINERD_SOCK" version
  ((nodes == 1)) || wait_ready containerd-2 60 timeout 5 ctr --address "$NODE2_CONTAINERD_SOCK" version

  # The pause image, from the pause.c in the Kubernetes module: nothing to pull.
  for sock in $(node_containerd_socks); do
    timeout 30 ctr --address "$sock" -n k8s.io images ls -q "name==$PAUSE_IMAGE" | grep -qx "$PAUSE_IMAGE" && continue
    pause_root="$(mktemp -d)"
    install -D -m 0755 "$BIN_DIR/pause" "$pause_root/pause"
    "$LC_DIR/build-image.sh" --address "$sock" --entrypoint '["/pause"]' --user 65535:65535 "$PAUSE_IMAGE" "$pause_root" >/dev/null
    rm -rf "$pause_root"
  done
  log "pause image: $PAUSE_IMAGE"
  # The image stores outlive the cluster (down.sh): images imported before were named by their
  # tags only.
  for sock in $(node_containerd_socks); do name_images_by_id "$sock"; done

  fill "$LC_DIR/config/kubelet.yaml.in" "$KUBEVM_STATE/kubelet.yaml"
  start kubelet "$K" kubelet --config "$KUBEVM_STATE/kubelet.yaml" \
    --kubeconfig "$KUBECONFIG_DIR/kubelet.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$PKI_DIR/kubelet-certs" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  # Node 2's kubelet: the same root path, which its mount namespace binds to its own directory.
  ((nodes == 1)) || start kubelet-2 "${N2[@]}" "$K" kubelet --config "$NODE2_DIR/kubelet.yaml" \
    --kubeconfig "$KUBECONFIG_DIR/kubelet-2.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$NODE2_DIR/kubelet-certs" \
    --hostname-override "$NODE2_NAME" --node-ip "$NODE2_IP"
  wait_ready kubelet 90 curl -sf --max-time 2 http://127.0.0.1:10248/healthz
  ((nodes == 1)) || wait_ready kubelet-2 90 node2_exec curl -sf --max-time 2 http://127.0.0.1:10248/healthz
  node_ready() {
    [[ "$(kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
  }
  node_names=("$NODE_NAME")
  ((nodes == 1)) || node_names+=("$NODE2_NAME")
  t0=$SECONDS
  for n in "${!node_names[@]}"; do
    kubelet_name=kubelet
    ((n == 0)) || kubelet_name=kubelet-2
    until node_ready "${node_names[$n]}" 2>/dev/null; do
      alive "$kubelet_name" || fail "$kubelet_name" "exited before the node became Ready"
      ((SECONDS - t0 < 120)) || { kubectl describe node "${node_names[$n]}" 2>&1 | tail -n 30 >&2 || true; fail "$kubelet_name" "node ${node_names[$n]} not Ready after 120s"; }
      sleep 1
    done
    log "node ${node_names[$n]}: Ready"
  done

  fill "$LC_DIR/config/kube-proxy.yaml.in" "$KUBEVM_STATE/kube-proxy.yaml"
  start kube-proxy "$K" kube-proxy --config "$KUBEVM_STATE/kube-proxy.yaml"
  ((nodes == 1)) || start kube-proxy-2 "${N2[@]}" "$K" kube-proxy --config "$NODE2_DIR/kube-proxy.yaml"
  wait_ready kube-proxy 60 curl -sf --max-time 2 http://127.0.0.1:10256/livez
  ((nodes == 1)) || wait_ready kube-proxy-2 60 node2_exec curl -sf --max-time 2 http://127.0.0.1:10256/livez

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
KUBEVM_CTR=${CONTAINERD_DIR:+$CONTAINERD_DIR/ctr}
KUBEVM_TEST_NAMESPACE=$TEST_NAMESPACE
KUBEVM_NODE_NAME=$NODE_NAME
KUBEVM_NODE_IP=$NODE_IP
KUBEVM_LOG_DIR=$LOG_DIR
KUBEVM_KUBELET_ROOT=$KUBELET_ROOT
KUBEVM_NODES=$nodes
KUBEVM_WEBHOOK_CLIENT_AUTH=required
ENV
if ((nodes == 2)); then
  cat >>"$KUBEVM_STATE/env" <<ENV
KUBEVM_NODE2_NAME=$NODE2_NAME
KUBEVM_NODE2_IP=$NODE2_IP
KUBEVM_NODE2_NETNS=$NODE2_NETNS
KUBEVM_NODE2_CONTAINERD_SOCK=$NODE2_CONTAINERD_SOCK
KUBEVM_NODE2_KUBELET_ROOT=$NODE2_DIR/root$KUBELET_ROOT
ENV
fi
echo "$mode" >"$KUBEVM_STATE/mode"
log "cluster ($mode, $nodes node(s)) up in $((SECONDS - T0))s; logs: $LOG_DIR; env: $KUBEVM_STATE/env"
log "kubectl: $BIN_DIR/kubectl; restricted users: $KUBECONFIG_DIR/{ns-admin,ns-editor,viewer}.kubeconfig"
echo "KUBECONFIG=$ADMIN_KUBECONFIG"
