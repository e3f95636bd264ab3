# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source this
# Shared settings for the local-cluster scripts. Source it; do not run it.

LC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="$(sed -n 's#^[[:space:]]*\(require[[:space:]]\+\)\?k8s.io/kubernetes \(v[0-9.]*\).*#\2#p' "$LC_DIR/go.mod" | head -1)"
KUBEVM_CACHE="${KUBEVM_CACHE:-$HOME/.cache/kubevm}"
KUBEVM_STATE="${KUBEVM_STATE:-/var/lib/kubevm-local}"

# The build is keyed by everything that decides its output: a new go.sum,
# go.mod, .go file or build.sh (flags) gives a new directory; an unchanged one
# is reused, also by a fresh clone of the same commit.
build_key() {
  cat "$LC_DIR/go.mod" "$LC_DIR/go.sum" "$LC_DIR"/*.go "$LC_DIR/build.sh" | sha256sum | cut -c1-12
}
BIN_DIR="$KUBEVM_CACHE/k8s-$K8S_VERSION-$(build_key)/bin"

# Kubernetes' beta ImageVolume (containerDisk and kernelBoot images mounted, not copied; off by
# default until 1.35) needs the API server's gate as well as the kubelet's; the kubelet's list is
# in config/kubelet.yaml.in.
API_FEATURE_GATES=ImageVolume=true
# The containerd that up.sh started (containerd/build.sh): its ctr, for the scripts that import
# images, comes first on PATH. Its warning on every call that cgroup v1 is deprecated is known
# (docs/adr/0016-containerd-from-its-module.md); the daemon's log keeps it.
if [[ -s "$KUBEVM_STATE/containerd-bin" ]]; then PATH="$(cat "$KUBEVM_STATE/containerd-bin"):$PATH"; fi
export CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1

PAUSE_VERSION=3.10.1
PAUSE_IMAGE="registry.k8s.io/pause:$PAUSE_VERSION"

# Runtime layout under the state dir.
PKI_DIR="$KUBEVM_STATE/pki"
KUBECONFIG_DIR="$KUBEVM_STATE/kubeconfig"
LOG_DIR="$KUBEVM_STATE/logs"
PID_DIR="$KUBEVM_STATE/pids"
RUN_DIR="$KUBEVM_STATE/run"
CONTAINERD_SOCK="$RUN_DIR/containerd/containerd.sock"
# The kubelet's standard root: node agents (kubevm's node handler, like KubeVirt's
# handler) find device-plugins/ and pods/ where every Kubernetes puts them.
KUBELET_ROOT="${KUBEVM_KUBELET_ROOT:-/var/lib/kubelet}"
CNI_CONF_DIR="$KUBEVM_STATE/cni/net.d"
CNI_BRIDGE=kubevm0
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_SVC_IP=10.96.0.10
APISERVER_PORT=6443
NODE_NAME="$(hostname | tr '[:upper:]' '[:lower:]')"
TEST_NAMESPACE=kubevm-rbac
# Every node's pod CIDR lies in this one: kube-proxy's clusterCIDR, and pod traffic inside it is
# never masqueraded (pods see each other's IPs, across nodes too).
CLUSTER_CIDR=10.244.0.0/16

# The opt-in second node (KUBEVM_NODES=2, docs/adr/0015-second-local-node.md): its own
# containerd, kubelet and kube-proxy in their own network namespace (a veth pair to the host)
# and mount namespace (its state dir bound on the kubelet root), under $NODE2_DIR.
NODE2_NAME="$NODE_NAME-2"
NODE2_DIR="$KUBEVM_STATE/node2"
NODE2_NETNS=kubevm-node2
NODE2_VETH=kubevm-node2     # the host's end; the node's end is eth0 in its netns
NODE2_HOST_LINK_IP=10.243.0.1
NODE2_IP=10.243.0.2         # on a /30 with the host's end
NODE2_POD_CIDR=10.244.1.0/24
NODE2_CGROUP=kubevm-node2   # its kubelet's cgroupRoot: its pods never mix with node 1's
NODE2_CONTAINERD_SOCK="$NODE2_DIR/run/containerd/containerd.sock"
# Fixed host paths that must be the node's own, bound from $NODE2_DIR/<path> in its mount
# namespace: the kubelet root (pods/, device-plugins/, what node agents mount as hostPath).
NODE2_PRIVATE_PATHS=("$KUBELET_ROOT")

# node2_exec CMD...: runs CMD in node 2's network and mount namespaces (those of its namespace
# holder process, which the node's components share).
node2_exec() {
  local holder
  holder="$(pid_of node2-ns)" || { log "node 2 is not running"; return 1; }
  nsenter --target "$holder" --mount --net -- "$@"
}

# The containerd sockets of the nodes that run, node 1's first: images go into each.
node_containerd_socks() {
  [[ -S "$CONTAINERD_SOCK" ]] && echo "$CONTAINERD_SOCK"
  [[ -S "$NODE2_CONTAINERD_SOCK" ]] && alive containerd-2 && echo "$NODE2_CONTAINERD_SOCK"
  return 0
}
# processes_in_namespaces IDS: pids of the processes in any of the namespaces IDS names (lines
# as readlink /proc/PID/ns/{mnt,net} prints them, e.g. "mnt:[4026532219]").
processes_in_namespaces() {
  [[ -n "$1" ]] || return 0
  # Processes come and go while find runs (it then exits 1): what it printed is the answer.
  { find /proc/[0-9]*/ns/mnt /proc/[0-9]*/ns/net -maxdepth 0 -printf '%l %h\n' 2>/dev/null || true; } |
    awk -v ids="$1" 'BEGIN { n = split(ids, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
      $1 in want { split($2, p, "/"); print p[3] }' | sort -u
}

# image_digest SOCK REF: the manifest digest REF (normalized, docker.io/...) names in that node's
# containerd; empty when it has no such image.
image_digest() {
  timeout 30 ctr --address "$1" -n k8s.io images ls "name==$2" | awk -v ref="$2" '$1 == ref { print $3 }'
}

# image_on_every_node REF DIGEST: REF names that very image (DIGEST) in every running node's
# containerd. Presence alone is not enough: a node that was down at the last import (node 2 of
# an earlier two-node cluster keeps its containerd) still has the image of before.
image_on_every_node() {
  local sock socks
  socks="$(node_containerd_socks)"
  [[ -n "$socks" && -n "$2" ]] || return 1
  for sock in $socks; do
    [[ "$(image_digest "$sock" "$1")" == "$2" ]] || return 1
  done
}

# image_stamp_current STAMP KEY REF: the stamp file records KEY (what the image was built from)
# and every node has the very image that import left there.
image_stamp_current() {
  local stamped_key="" stamped_digest=""
  [[ -f "$1" ]] || return 1
  read -r stamped_key stamped_digest <"$1"
  [[ "$stamped_key" == "$2" ]] && image_on_every_node "$3" "$stamped_digest"
}

# image_stamp_write STAMP KEY REF: records KEY with the digest REF names after an import (each
# import is the same on every node: the first node's is read).
image_stamp_write() {
  echo "$2 $(image_digest "$(node_containerd_socks | head -n 1)" "$3")" >"$1"
}

# name_images_by_id SOCK [REF...]: names each image (default: every image in the k8s.io namespace)
# by its ID, its config's digest, too, as the CRI's own pulls do. The kubelet asks for an image
# volume by ID, and containerd 2 looks the mount's image up by that name; an image imported with
# ctr has only the names it was imported with.
name_images_by_id() {
  local sock="$1" ref target config
  shift
  local -a refs=("$@")
  local listing
  listing="$(timeout 30 ctr --address "$sock" -n k8s.io images ls | awk 'NR > 1 {print $1, $3}')"
  ((${#refs[@]})) || mapfile -t refs < <(awk '$1 !~ /^sha256:/ {print $1}' <<<"$listing")
  for ref in "${refs[@]}"; do
    target="$(awk -v ref="$ref" '$1 == ref {print $2}' <<<"$listing")"
    [[ -n "$target" ]] || continue
    config="$(timeout 30 ctr --address "$sock" -n k8s.io content get "$target" | jq -r '.config.digest // empty')"
    # An index (no config of its own) is left alone: our images are single manifests.
    [[ "$config" == sha256:* ]] || continue
    awk -v id="$config" '$1 == id {found = 1} END {exit !found}' <<<"$listing" && continue
    timeout 30 ctr --address "$sock" -n k8s.io images tag --skip-reference-check "$ref" "$config" >/dev/null
  done
}

log() { printf '[local-cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# cached_go_build NAME DIR BINARIES COMMAND...: builds a Go tool once into the cache. Unless every one
# of BINARIES (space-separated) is already in DIR, runs COMMAND, which writes them into DIR.staging (nice'd, its output in
# DIR.build.log, its tail shown on failure), under a lock so concurrent runs wait for one build,
# then moves them into DIR: an interrupted build never leaves a binary that looks finished.
# DIR's name carries the key of the build's inputs.
cached_go_build() {
  local name="$1" dir="$2" binaries="$3" binary built=1 start
  shift 3
  mkdir -p "$dir"
  exec 8>"$dir.lock"
  flock -w 3600 8 || die "another build of $dir held its lock for an hour"
  for binary in $binaries; do [[ -x "$dir/$binary" ]] || built=0; done
  if ((!built)); then
    command -v go >/dev/null || die "go is not installed (needed to build $name)"
    log "building $name into $dir (cold: a few minutes on 2 cores; log: $dir.build.log)"
    start=$SECONDS
    rm -rf "$dir.staging" && mkdir -p "$dir.staging"
    if ! CGO_ENABLED=0 nice -n 10 "$@" >"$dir.build.log" 2>&1; then
      tail -30 "$dir.build.log" >&2
      die "the build of $name failed (full log: $dir.build.log)"
    fi
    for binary in $binaries; do mv "$dir.staging/$binary" "$dir/$binary"; done
    rm -rf "$dir.staging"
    log "built $name in $((SECONDS - start))s"
  fi
  exec 8>&-
}

# Pid files hold "PID STARTTIME": a pid from a previous boot or run that now
# names another process is never mistaken for ours.
# A zombie counts as gone: our components are reparented to this machine's
# init, which may take a while to reap them.
proc_start_time() { awk '$3 != "Z" {print $22}' "/proc/$1/stat" 2>/dev/null; }
running() { [[ -n "$(proc_start_time "$1")" ]]; }
write_pid() { echo "$2 $(proc_start_time "$2")" >"$PID_DIR/$1.pid"; }
# pid_of NAME: prints the component's pid if that process is still the one we started.
pid_of() {
  local pid start
  [[ -f "$PID_DIR/$1.pid" ]] || return 1
  read -r pid start <"$PID_DIR/$1.pid" || return 1
  [[ -n "$pid" && -n "$start" && "$(proc_start_time "$pid")" == "$start" ]] || return 1
  echo "$pid"
}
alive() { pid_of "$1" >/dev/null; }

# Serializes up/down: several people (and scripts) share one machine and one
# state dir; a second bring-up waits for the first instead of racing it.
lock_state() {
  # Set by up.sh when it runs down.sh under its own lock.
  [[ -n "${KUBEVM_LOCK_HELD:-}" ]] && return 0
  mkdir -p "$KUBEVM_STATE"
  exec 9>"$KUBEVM_STATE/.lock"
  if ! flock -n 9; then
    log "waiting for another local-cluster up/down to finish (lock $KUBEVM_STATE/.lock)"
    flock -w 600 9 || die "another local-cluster up/down held the lock for 600s"
  fi
}
