#!/usr/bin/env bash
# make bench: every bench, then bench/results/README.md (the latest figures and pictures).
#   bench/run.sh [startup|migration|scale|memory|report]...   (default: all of them)
# startup, migration and scale need the local cluster: it is brought up here (kubevm built and
# installed; two nodes for migration, ADR 0015) and brought down again unless it was already up. memory needs only QEMU. On a shared machine run it
# under the cluster lock: /work/tools/with-cluster make bench
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(startup migration scale memory report)
wants() { local s; for s in "${steps[@]}"; do [[ "$s" == "$1" ]] && return 0; done; return 1; }

started_cluster=0
cleanup() { if [[ $started_cluster == 1 ]]; then make --no-print-directory cluster-down || true; fi; }
trap cleanup EXIT
if wants migration; then export KUBEVM_NODES=2; fi
if wants startup || wants migration || wants scale; then
  if ! bash local-cluster/status.sh >/dev/null 2>&1 || [[ "$(cat "$KUBEVM_STATE/mode" 2>/dev/null)" != full ]]; then started_cluster=1; fi
  make --no-print-directory cluster-up
  set -a; source "$KUBEVM_STATE/env"; set +a
fi
if wants startup; then
  make --no-print-directory images
  bash scripts/install-kubevm.sh
  node --import tsx bench/vm-startup.ts "${KUBEVM_BENCH_VMS:-10}"
  # kubectl virt version's answer time needs the same installed api-server.
  node --import tsx bench/kubectl-virt-version.ts
fi
if wants migration; then
  if ! wants startup; then
    make --no-print-directory images
    bash scripts/install-kubevm.sh
  fi
  node --import tsx bench/migration.ts "${KUBEVM_BENCH_MIGRATIONS:-3}"
fi
if wants scale; then
  # The bench runs its own controller process against the cluster: no installed one may compete.
  bash scripts/uninstall-kubevm.sh
  npx tsc -p tsconfig.build.json
  kwok="$(bash local-cluster/kwok/build.sh)"
  KUBEVM_KWOK="$kwok" node --import tsx bench/control-plane-scale.ts ${KUBEVM_BENCH_SCALE:-1000 2000 4000 8000}
fi
if wants memory; then
  # The launcher as its image runs it: one bundled file (launcher/bundle.sh; dist/ is ignored).
  bash launcher/bundle.sh dist/launcher-image/main.js
  KUBEVM_LAUNCHER_JS="$repo/dist/launcher-image/main.js" node --import tsx bench/launcher-memory.ts --matrix
fi
if wants report; then
  node --import tsx bench/report.ts
fi
