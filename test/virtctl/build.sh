#!/usr/bin/env bash
# Builds (once) KubeVirt's virtctl from the kubevirt.io/kubevirt module (this directory's go.mod,
# go.sum and main.go) into the cache, and prints its path:
#   $KUBEVM_CACHE/virtctl-<kubevirt version>-<hash of go.mod, go.sum, main.go, build.sh>/virtctl
# A second run with the same inputs does nothing. Cold: a few minutes on 2 cores (nice'd).
# go.sum is kubevirt's own: the checksum database does not serve every module kubevirt needs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../local-cluster/lib.sh"
version="$(sed -n 's/^\(require\)\{0,1\}[[:space:]]*kubevirt.io\/kubevirt \(v[^ ]*\)$/\2/p' "$here/go.mod")"
[[ -n "$version" ]] || die "no kubevirt.io/kubevirt version in $here/go.mod"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" | sha256sum | cut -c1-12)"
out="$KUBEVM_CACHE/virtctl-$version-$key"
cached_go_build "virtctl $version" "$out" virtctl \
  go -C "$here" build -buildvcs=false -trimpath -ldflags "-s -w -X kubevirt.io/client-go/version.gitVersion=$version" -o "$out.staging/virtctl" .
echo "$out/virtctl"
