#!/usr/bin/env bash
# Builds (once) kwok from its Go module into the cache, as charts/build-helm.sh does for Helm, and
# prints the binary's path: $KUBEVM_CACHE/kwok-<version>-<hash of the build inputs>/kwok, with
# stages.yaml beside it. A second run with the same inputs does nothing. Cold: ~3 min on 2 cores.
# kwok simulates nodes and their kubelets' pod status against the local cluster's real API server
# (bench/control-plane-scale.ts): no container runs, so the controller can be measured at
# thousands of VMs on one machine.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib.sh"

KWOK_VERSION=v0.8.0
# Bump when the build command below changes: it is part of the cache key.
BUILD_REVISION=1

out="$KUBEVM_CACHE/kwok-$KWOK_VERSION-$(echo "$KWOK_VERSION $BUILD_REVISION $(go env GOVERSION)" | sha256sum | cut -c1-12)"
# `go install module@version` builds with kwok's own go.mod and go.sum (checked against the
# checksum database).
cached_go_build "kwok $KWOK_VERSION" "$out" kwok \
  env GOBIN="$out.staging" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
# kwok acts only through Stages: its own released "fast" node and pod stages (no delays) and the
# node heartbeat, from the module as downloaded, in one file beside the binary (--config).
if [[ ! -s "$out/stages.yaml" ]]; then
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo '---'
    cat "$stages/$f"
  done >"$out/stages.yaml.tmp"
  mv "$out/stages.yaml.tmp" "$out/stages.yaml"
fi
echo "$out/kwok"
