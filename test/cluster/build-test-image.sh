#!/usr/bin/env bash
# Builds the cluster tests' image kubevm/cluster-test:0.1.0 (one static Go binary,
# testserver/) with local-cluster/build-image.sh and imports it into the local
# cluster's containerd. Prints the image reference.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ref="kubevm/cluster-test:0.1.0"
rootfs="$(mktemp -d "${TMPDIR:-/tmp}/kubevm-cluster-test.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
# Static (no cgo): the image holds nothing but this binary.
(cd "$here/testserver" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$rootfs/testserver" .)
mkdir -p "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"
"$here/../../local-cluster/build-image.sh" --entrypoint '["/testserver"]' --cmd '["hello"]' \
  --user 65532:65532 --label org.opencontainers.image.source=kubevm/test/cluster "$ref" "$rootfs" >/dev/null
echo "$ref"
