#!/usr/bin/env bash
# Builds (once) containerd from its Go module into the cache, as build.sh does for Kubernetes, and
# prints the directory that holds containerd, containerd-shim-runc-v2 and ctr:
#   $KUBEVM_CACHE/containerd-<version>-<hash of the build inputs>/
# A second run with the same inputs does nothing. Cold: about a minute on 2 cores once the modules
# are downloaded (43 s measured).
# Debian 12's containerd is 1.6, which has neither CRI container events (the kubelet's evented
# PLEG) nor image volumes (Kubernetes' ImageVolume): docs/adr/0016-containerd-from-its-module.md.
# runc stays Debian's.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib.sh"

CONTAINERD_VERSION=v2.4.2
# Bump when the build command below changes: it is part of the cache key.
BUILD_REVISION=1

module=github.com/containerd/containerd/v2
out="$KUBEVM_CACHE/containerd-$CONTAINERD_VERSION-$(echo "$CONTAINERD_VERSION $BUILD_REVISION $(go env GOVERSION)" | sha256sum | cut -c1-12)"
# `go install module@version` builds with containerd's own go.mod and go.sum (checked against the
# checksum database). No cgo: the snapshotters that need it (btrfs, devmapper, zfs) are left out;
# the cluster uses overlayfs.
cached_go_build "containerd $CONTAINERD_VERSION" "$out" "containerd containerd-shim-runc-v2 ctr" \
  env GOBIN="$out.staging" go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
  -ldflags "-s -w -X $module/version.Version=$CONTAINERD_VERSION" \
  "$module/cmd/containerd@$CONTAINERD_VERSION" "$module/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
  "$module/cmd/ctr@$CONTAINERD_VERSION"
echo "$out"
