#!/usr/bin/env bash
# Builds (once) Helm from its Go module into the cache, as local-cluster/build.sh does for
# Kubernetes: $KUBEVM_CACHE/helm-<version>-<hash of the build inputs>/bin/helm. Prints the binary's path.
# A second run with the same inputs does nothing. CPU-heavy when cold (~5 min on 2 cores).
set -euo pipefail

HELM_VERSION=v3.22.0
# Helm's Makefile derives these from its client-go (v0.37 → Kubernetes 1.37); `helm lint` and
# `.Capabilities.KubeVersion` use them.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37
# Bump when the build command below changes: it is part of the cache key.
BUILD_REVISION=1

KUBEVM_CACHE="${KUBEVM_CACHE:-$HOME/.cache/kubevm}"
key="$(echo "$HELM_VERSION $HELM_K8S_MAJOR.$HELM_K8S_MINOR $BUILD_REVISION $(go env GOVERSION 2>/dev/null)" | sha256sum | cut -c1-12)"
BIN_DIR="$KUBEVM_CACHE/helm-$HELM_VERSION-$key/bin"

log() { printf '[build-helm %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$BIN_DIR"
exec 8>"$BIN_DIR.lock"
flock -w 3600 8 || die "another build of $BIN_DIR held its lock for an hour"
if [[ ! -x "$BIN_DIR/helm" ]]; then
  command -v go >/dev/null || die "go is not installed (needed to build Helm $HELM_VERSION)"
  log "building Helm $HELM_VERSION into $BIN_DIR (cold: a few minutes; log: $BIN_DIR.build.log)"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  start=$SECONDS
  # `go install module@version` builds with Helm's own go.mod and go.sum (checked against the
  # checksum database), so no go.mod of ours pins its hundred dependencies.
  if ! CGO_ENABLED=0 GOBIN="$BIN_DIR" nice -n 10 go install -trimpath -ldflags "$ldflags" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$BIN_DIR.build.log" 2>&1; then
    tail -30 "$BIN_DIR.build.log" >&2
    die "go install failed (full log: $BIN_DIR.build.log)"
  fi
  log "built helm in $((SECONDS - start))s"
fi
echo "$BIN_DIR/helm"
