#!/usr/bin/env bash
# Stops everything the local cluster started and verifies nothing is left:
# components (by process group), pods (through CRI, so CNI cleans up), container
# shims and pod processes (QEMU included), kubelet mounts, the CNI bridge and
# its iptables rules, kube-proxy's rules and kubelet's cgroups; of node 2 (KUBEVM_NODES=2) also
# its network namespace and veth pair, every process left in its namespaces (so its mount
# namespace, with every mount in it, is gone) and its cgroup root.
# Keeps the PKI and the containerds' image stores; wipes etcd data and pod state.
#   down.sh          stop and clean
#   down.sh --purge  also remove the whole state dir $KUBEVM_STATE
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ "$(id -u)" == 0 ]] || die "needs root"
purge=0
[[ "${1:-}" == --purge ]] && purge=1
[[ -d "$KUBEVM_STATE" ]] || { log "nothing to stop ($KUBEVM_STATE does not exist)"; exit 0; }
lock_state
mkdir -p "$LOG_DIR"


# stop NAME...: SIGTERM each component's process group, SIGKILL what is left after 5s.
# This is a disposable test cluster: a graceful shutdown buys nothing here.
stop() {
  local name p t0
  local -A pids=()
  for name in "$@"; do
    if p="$(pid_of "$name")"; then
      pids[$name]=$p
      kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    fi
    rm -f "$PID_DIR/$name.pid"
  done
  t0=$SECONDS
  for name in "$@"; do
    p="${pids[$name]:-}"
    [[ -n "$p" ]] || continue
    while running "$p" && ((SECONDS - t0 < 5)); do sleep 0.2; done
    if running "$p"; then
      log "$name: still running 5s after SIGTERM, killing"
      kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    fi
    # A group can outlive its leader: kill what is left of it.
    kill -KILL -- "-$p" 2>/dev/null || true
    log "$name: stopped"
  done
}

# Processes our containerds started that left their process groups: shims (they
# name our sockets on their command line) and, below them, the pod processes.
our_shims() {
  local d
  for d in /proc/[0-9]*; do
    { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null |
      grep -q -e "-address $CONTAINERD_SOCK" -e "-address $NODE2_CONTAINERD_SOCK" && echo "${d#/proc/}"
  done
  return 0
}
# Every process still in node 2's mount or network namespace (ids recorded by up.sh): while one
# is, the namespace and what is in it (mounts, interfaces) lives on.
node2_ns_ids=""
# Never this host's own namespaces, whatever the file says.
[[ -f "$NODE2_DIR/run/namespaces" ]] &&
  node2_ns_ids="$(grep -vxF -e "$(readlink /proc/$$/ns/mnt)" -e "$(readlink /proc/$$/ns/net)" "$NODE2_DIR/run/namespaces" || true)"
node2_processes() { processes_in_namespaces "$node2_ns_ids"; }
# Every process in the kubelet's pod cgroups (all cgroup v1 hierarchies and v2).
pod_processes() {
  find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# 1. Nothing may restart pods while we remove them.
stop kube-proxy kubelet kube-proxy-2 kubelet-2 kube-scheduler kube-controller-manager

# 2. Remove pods through CRI: containerd runs CNI DEL (IPs, veths, portmap rules, netns).
for node in containerd:"$CONTAINERD_SOCK" containerd-2:"$NODE2_CONTAINERD_SOCK"; do
  if alive "${node%%:*}" && [[ -S "${node#*:}" ]]; then
    if ! timeout 120 "$BIN_DIR/kube" cri-remove-all-pods "unix://${node#*:}" >/dev/null; then
      log "${node%%:*}: some pods could not be removed through CRI; killing what is left"
    fi
  fi
done
stop containerd containerd-2
stop node2-ns

# 3. Whatever survived: pod processes (QEMU included), then the shims.
for _ in 1 2 3; do
  left="$( (pod_processes; our_shims; node2_processes) | sort -u)"
  [[ -z "$left" ]] && break
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null || true
  sleep 0.5
done

# Nothing is left in node 2's namespaces now: its mount namespace is gone with every mount in
# it; its network namespace goes with its veth pair, bridge and iptables rules.
if [[ -e "/run/netns/$NODE2_NETNS" ]]; then
  ip netns del "$NODE2_NETNS" 2>/dev/null || true
fi
ip link del "$NODE2_VETH" 2>/dev/null || true

stop kube-apiserver
stop etcd

# 4. kube-proxy's iptables rules (it knows its own chains).
if [[ -x "$BIN_DIR/kube" && -f "$KUBEVM_STATE/kube-proxy.yaml" ]]; then
  timeout 60 "$BIN_DIR/kube" kube-proxy --cleanup --config "$KUBEVM_STATE/kube-proxy.yaml" >>"$LOG_DIR/kube-proxy.log" 2>&1 || true
fi
# What kube-proxy's cleanup leaves: the kubelet's own chains (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT). Only this cluster runs Kubernetes here.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    { "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [^ ]+ .*-j KUBE-' | grep -v '^-A KUBE-' || true; } |
      while read -r rule; do eval "$ipt -t $table ${rule/-A /-D }" 2>/dev/null || true; done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
done
# Left-over CNI rules of our network (named "kubevm" in their comments).
if command -v iptables >/dev/null; then
  { iptables -t nat -S POSTROUTING 2>/dev/null | grep -F -e 'name: \"kubevm\"' -e '"kubevm: ' || true; } | while read -r rule; do
    eval "iptables -t nat ${rule/-A /-D }" 2>/dev/null || true
  done
  for chain in $(iptables -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}'); do
    iptables -t nat -S "$chain" 2>/dev/null | grep -qF 'name: \"kubevm\"' || continue
    iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null || true
  done
fi

# 5. Mounts under the state dir (kubelet volumes, container rootfs, shm), deepest first,
#    and pod network namespaces our containerd left behind.
awk -v root="$KUBEVM_STATE" -v kl="$KUBELET_ROOT" \
  '$5 == root || index($5, root "/") == 1 || $5 == kl || index($5, kl "/") == 1 {print $5}' /proc/self/mountinfo |
  awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
for ns in /run/netns/cni-*; do
  [[ -e "$ns" ]] || continue
  umount "$ns" 2>/dev/null || true
  rm -f "$ns"
done
ip link del "$CNI_BRIDGE" 2>/dev/null || true

# 6. The kubelet's cgroups, deepest first.
find /sys/fs/cgroup -depth -type d -path '*/kubepods*' -exec rmdir {} + 2>/dev/null || true
rmdir /sys/fs/cgroup/*/"$NODE2_CGROUP" 2>/dev/null || true

# The sysctls cluster-up changed, back to what they were.
if [[ -f "$KUBEVM_STATE/sysctl.saved" ]]; then
  while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done <"$KUBEVM_STATE/sysctl.saved"
  rm -f "$KUBEVM_STATE/sysctl.saved"
fi

# 7. Per-run state; the PKI and containerd's images stay for the next bring-up.
rm -rf --one-file-system "$KUBEVM_STATE/etcd" "$KUBELET_ROOT" "$KUBEVM_STATE/pod-logs" \
  "$KUBEVM_STATE/cni/ipam" "$RUN_DIR" "$KUBEVM_STATE/env" "$KUBEVM_STATE/mode" \
  "$NODE2_DIR/root" "$NODE2_DIR/pod-logs" "$NODE2_DIR/cni/ipam" "$NODE2_DIR/run"
if [[ -d "$LOG_DIR" ]]; then rm -rf "$LOG_DIR.prev"; mv "$LOG_DIR" "$LOG_DIR.prev"; fi

# 8. Verify.
problems=()
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && problems+=("pid file left: $f"); done
left="$( (pod_processes; our_shims; node2_processes) | sort -u | tr '\n' ' ')"
[[ -n "${left// /}" ]] && problems+=("processes left: $left")
mounts="$(awk -v root="$KUBEVM_STATE" -v kl="$KUBELET_ROOT" 'index($5, root "/") == 1 || index($5, kl "/") == 1 {print $5}' /proc/self/mountinfo | head -5)"
[[ -n "$mounts" ]] && problems+=("mounts left: $mounts")
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && problems+=("bridge $CNI_BRIDGE still exists")
ip link show "$NODE2_VETH" >/dev/null 2>&1 && problems+=("node 2's veth $NODE2_VETH still exists")
[[ -e "/run/netns/$NODE2_NETNS" ]] && problems+=("node 2's network namespace $NODE2_NETNS still exists")
compgen -G "/sys/fs/cgroup/*/$NODE2_CGROUP" >/dev/null && problems+=("node 2's cgroups left: $(echo /sys/fs/cgroup/*/"$NODE2_CGROUP")")
iptables -t nat -S POSTROUTING 2>/dev/null | grep -qF '"kubevm: ' && problems+=("kubevm's masquerade rule left")
iptables-save 2>/dev/null | grep -qE '^:(KUBE-|CNI-)' && problems+=("iptables chains left: $(iptables-save | grep -oE '^:(KUBE-|CNI-)[^ ]*' | tr '\n' ' ')")
if ((${#problems[@]})); then
  for p in "${problems[@]}"; do log "NOT CLEAN: $p"; done
  exit 1
fi
if ((purge)); then rm -rf --one-file-system "$KUBEVM_STATE"; log "removed $KUBEVM_STATE"; fi
log "cluster down: no process, mount or interface left (previous logs: $LOG_DIR.prev)"
