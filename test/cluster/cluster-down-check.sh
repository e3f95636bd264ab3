#!/usr/bin/env bash
# `make cluster-down`, checked from outside: what the cluster had running before (its components,
# pod processes and shims, every process in node 2's namespaces, its kubevm* interfaces and
# network namespaces, mounts under its state dir and kubelet root, pod cgroups) must all be gone
# after, on one node or two. Exits non-zero, naming what is left, otherwise.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
source "$repo/local-cluster/lib.sh"

# PID STARTTIME of every process the cluster runs now.
before=()
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && before+=("$(cat "$f")"); done
for pid in $(find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
  before+=("$pid $(proc_start_time "$pid")")
done
ns_ids="$(cat "$NODE2_DIR/run/namespaces" 2>/dev/null || true)"
in_node2_ns() { processes_in_namespaces "$ns_ids"; }
for pid in $(in_node2_ns); do before+=("$pid $(proc_start_time "$pid")"); done
log "cluster-down-check: ${#before[@]} processes, interfaces: $(ip -o link show | awk -F': ' '$2 ~ /^kubevm/ {sub("@.*", "", $2); printf "%s ", $2}')netns: $(ip netns list | awk '/^kubevm/ {printf "%s ", $1}')"

rc=0
make -C "$repo" --no-print-directory cluster-down || rc=$?

problems=()
for entry in "${before[@]}"; do
  read -r pid start <<<"$entry"
  [[ -n "$start" && "$(proc_start_time "$pid")" == "$start" ]] && problems+=("process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)) still runs")
done
left="$(in_node2_ns | tr '\n' ' ')"
[[ -n "${left// /}" ]] && problems+=("processes still in node 2's namespaces: $left")
links="$(ip -o link show | awk -F': ' '$2 ~ /^kubevm/ {print $2}')"
[[ -n "$links" ]] && problems+=("interfaces left: $links")
netns="$(ip netns list | awk '/^kubevm/ {print $1}')"
[[ -n "$netns" ]] && problems+=("network namespaces left: $netns")
mounts="$(awk -v root="$KUBEVM_STATE" -v kl="$KUBELET_ROOT" 'index($5, root "/") == 1 || $5 == kl || index($5, kl "/") == 1 {print $5}' /proc/self/mountinfo | head -5)"
[[ -n "$mounts" ]] && problems+=("mounts left: $mounts")
cgroups="$(find /sys/fs/cgroup -maxdepth 2 -type d \( -name 'kubepods*' -o -name "$NODE2_CGROUP" \) | head -5)"
[[ -n "$cgroups" ]] && problems+=("cgroups left: $cgroups")
for p in "${problems[@]}"; do log "cluster-down-check: LEFT: $p"; done
((rc == 0)) || log "cluster-down-check: make cluster-down exited $rc"
((rc == 0 && ${#problems[@]} == 0)) || exit 1
log "cluster-down-check: nothing of the cluster is left"
