#!/usr/bin/env bash
# Builds (once) the multi-call kube binary and the pause binary into the cache:
#   $KUBEVM_CACHE/k8s-<version>-<hash of go.mod,go.sum,*.go,build.sh>/bin/
# A second run with the same inputs does nothing. Prints the bin dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)

build_kube() {
  [[ -x "$BIN_DIR/kube" ]] && return 0
  command -v go >/dev/null || die "go is not installed (needed to build Kubernetes $K8S_VERSION)"
  log "building Kubernetes $K8S_VERSION + etcd into $BIN_DIR (cold: ~8 min on 2 cores; log: $BIN_DIR.build.log)"
  mkdir -p "$BIN_DIR"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  # Same version stamps as upstream hack/lib/version.sh, so `kubectl version`
  # and /version report the real release.
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    # gitCommit stays unset: the module zip carries no commit id.
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  local start=$SECONDS
  # providerless: no in-tree cloud providers, as in upstream's smaller builds.
  if ! (cd "$LC_DIR" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -tags providerless \
        -ldflags "$ldflags" -o "$BIN_DIR/kube.tmp" .) >"$BIN_DIR.build.log" 2>&1; then
    tail -30 "$BIN_DIR.build.log" >&2
    die "go build failed (full log: $BIN_DIR.build.log)"
  fi
  mv "$BIN_DIR/kube.tmp" "$BIN_DIR/kube"
  log "built kube in $((SECONDS - start))s"
}

build_pause() {
  [[ -x "$BIN_DIR/pause" ]] && return 0
  local src
  src="$(cd "$LC_DIR" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "pause.c not found at $src"
  command -v gcc >/dev/null || die "gcc is not installed (needed for the pause binary)"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-kubevm" -o "$BIN_DIR/pause.tmp" "$src"
  strip "$BIN_DIR/pause.tmp"
  mv "$BIN_DIR/pause.tmp" "$BIN_DIR/pause"
}

# Concurrent builds of the same key wait for each other instead of racing.
mkdir -p "$BIN_DIR"
exec 8>"$BIN_DIR.lock"
flock -w 3600 8 || die "another build of $BIN_DIR held its lock for an hour"
build_kube
build_pause
for c in "${COMPONENTS[@]}"; do ln -sfn kube "$BIN_DIR/$c"; done
echo "$BIN_DIR"
