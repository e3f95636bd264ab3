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

source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../local-cluster/lib.sh"
key="$(echo "$HELM_VERSION $HELM_K8S_MAJOR.$HELM_K8S_MINOR $BUILD_REVISION $(go env GOVERSION 2>/dev/null)" | sha256sum | cut -c1-12)"
BIN_DIR="$KUBEVM_CACHE/helm-$HELM_VERSION-$key/bin"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
# `go install module@version` builds with Helm's own go.mod and go.sum (checked against the
# checksum database), so no go.mod of ours pins its hundred dependencies.
cached_go_build "Helm $HELM_VERSION" "$BIN_DIR" helm \
  env GOBIN="$BIN_DIR.staging" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "$BIN_DIR/helm"
