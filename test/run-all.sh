#!/usr/bin/env bash
# The test command (make test; CI runs exactly this through .ci/run).
# Stages, in order, each failing the run when it fails:
#   static    typecheck, generated files up to date, lint (ESLint, type-aware)
#   unit      pure logic (jest project "unit")
#   launcher  the launcher against real QEMU (jest project "launcher")
#   cluster   a real single-node cluster is brought up; the integration suites run against it,
#             then kubevm's images are built and imported, the Helm suite installs, upgrades and
#             uninstalls kubevm with its chart, kubevm is installed through its operator and the
#             e2e suites run; the cluster is torn down on exit whatever happened
# With an argument, only that stage runs (the cluster stage still brings up its cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

only="${1:-all}"
results_dir="$(mktemp -d /tmp/kubevm-test.XXXXXX)"
passed=0
failed=0
status=0

jest() {
  local project="$1"
  local out="$results_dir/$project.json"
  local rc=0
  node --experimental-vm-modules node_modules/jest/bin/jest.js \
    --selectProjects "$project" --runInBand --json --outputFile="$out" || rc=$?
  if [ -f "$out" ]; then
    passed=$((passed + $(node -e 'const r=require(process.argv[1]);console.log(r.numPassedTests)' "$out")))
    failed=$((failed + $(node -e 'const r=require(process.argv[1]);console.log(r.numFailedTests + r.numRuntimeErrorTestSuites)' "$out")))
  fi
  if [ "$rc" -ne 0 ]; then status=1; fi
}

stage() { [ "$only" = all ] || [ "$only" = "$1" ]; }

# A check or set-up step outside jest counts as one test: its failure fails the run.
check() {
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name"; failed=$((failed + 1)); status=1; return 1; fi
}

summary() {
  echo
  echo "kubevm: $passed passed, $failed failed"
}
trap summary EXIT

if stage static; then
  echo "== static: typecheck, generated files, lint"
  check typecheck npx tsc -p tsconfig.json --noEmit || true
  check "generated files up to date" node --import tsx scripts/generate.ts --check || true
  check lint npx eslint . || true
fi

if stage unit; then
  echo "== unit"
  jest unit
fi

if stage launcher; then
  echo "== launcher (real QEMU)"
  jest launcher
fi

if stage cluster; then
  echo "== cluster (real kube-apiserver, kubelet, containerd)"
  cleanup() { check "cluster down, nothing left" make --no-print-directory cluster-down || true; summary; exit "$status"; }
  trap cleanup EXIT
  check "cluster up" make --no-print-directory cluster-up || exit 1
  set -a
  # shellcheck disable=SC1091
  source "${KUBEVM_STATE:-/var/lib/kubevm-local}/env"
  set +a
  # The cluster keeps its etcd across down/up: start the suites from a cluster without kubevm.
  check "kubevm absent before the integration suites" bash scripts/uninstall-kubevm.sh || exit 1
  echo "== integration (the cluster without kubevm installed)"
  jest integration
  check "images built and imported" make --no-print-directory images || exit 1
  echo "== helm (kubevm installed, upgraded and uninstalled with its chart)"
  # The integration suites leave CRDs and the namespace behind (the chart's dry-run creates it).
  check "kubevm absent before the Helm suite" bash scripts/uninstall-kubevm.sh || exit 1
  jest helm
  echo "== e2e (kubevm installed through its operator)"
  check "kubevm absent after the Helm suite" bash scripts/uninstall-kubevm.sh || exit 1
  check "kubevm installed" bash scripts/install-kubevm.sh || exit 1
  jest e2e
fi

exit "$status"
