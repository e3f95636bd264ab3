#!/usr/bin/env bash
# Software bills of materials, CycloneDX JSON, into ${KUBEVM_SBOM_DIR:-dist/sbom} (make sbom):
#   kubevm-node.cdx.json       the node modules kubevm's images ship (npm sbom, production only)
#   kubevm-node-dev.cdx.json   the same with the build and test tools (dev dependencies)
#   local-cluster-go.cdx.json  the Go modules compiled into the local cluster's Kubernetes binary
#                              (read from the binary itself with `go version -m`; from
#                              local-cluster/go.mod's `go list -m all` when it is not built yet)
# npm's audit needs the registry's advisory endpoint; where it cannot be reached, run
# `npm audit --omit dev` (or feed kubevm-node.cdx.json to a scanner such as osv-scanner or grype)
# on a machine that can.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${KUBEVM_SBOM_DIR:-$repo/dist/sbom}"
mkdir -p "$out"

npm sbom --sbom-format cyclonedx --omit dev > "$out/kubevm-node.cdx.json"
npm sbom --sbom-format cyclonedx > "$out/kubevm-node-dev.cdx.json"

cache="${KUBEVM_CACHE:-$HOME/.cache/kubevm}"
binary="$(ls -d "$cache"/k8s-*/bin/kube 2>/dev/null | tail -1 || true)"
if [ -n "$binary" ]; then
  go version -m "$binary" > "$out/local-cluster-go.txt"
  source="$binary"
else
  (cd local-cluster && go list -m -f '{{if not .Main}}dep	{{.Path}}	{{.Version}}	{{.Sum}}{{end}}' all) > "$out/local-cluster-go.txt"
  source="local-cluster/go.mod"
fi
node --import tsx scripts/sbom-go.ts "$out/local-cluster-go.txt" "$source" > "$out/local-cluster-go.cdx.json"
rm -f "$out/local-cluster-go.txt"
echo "SBOMs in $out:"
ls -1 "$out"
