#!/usr/bin/env bash
# The test command (make test; CI runs exactly this through .ci/run).
# Stages, each failing the run when it fails:
#   static    typecheck, generated files up to date, lint (ESLint, type-aware)
#   unit      pure logic (jest project "unit")
#   launcher  the launcher against real QEMU (jest project "launcher"); in a whole run it runs
#             beside the cluster stage (they share nothing but the CPUs), its output printed when
#             it ends
#   cluster   a real two-node cluster is brought up (KUBEVM_NODES=2 unless set: pods and VMs
#             spread over both, migrations have a node to go to; docs/adr/0015-second-local-node.md);
#             the integration suites run against it,
#             then kubevm's images are built and imported, the Helm suite installs, upgrades and
#             uninstalls kubevm with its chart, kubevm is installed through its operator and the
#             e2e suites run; the cluster is torn down on exit whatever happened, and checked to
#             leave nothing of either node (test/cluster/cluster-down-check.sh)
# With an argument, only that stage runs (the cluster stage still brings up its cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

only="${1:-all}"
results_dir="$(mktemp -d /tmp/kubevm-test.XXXXXX)"
passed=0
failed=0
status=0

# Adds a finished jest run's counts (from its JSON results) to the totals.
count() {
  local project="$1" rc="$2" out="$results_dir/$1.json"
  if [ -f "$out" ]; then
    passed=$((passed + $(node -e 'const r=require(process.argv[1]);console.log(r.numPassedTests)' "$out")))
    failed=$((failed + $(node -e 'const r=require(process.argv[1]);console.log(r.numFailedTests + r.numRuntimeErrorTestSuites)' "$out")))
  elif [ "$rc" -ne 0 ]; then
    echo "FAILED: jest $project wrote no results"; failed=$((failed + 1))
  fi
  if [ "$rc" -ne 0 ]; then status=1; fi
}

run_jest() {
  node --experimental-vm-modules node_modules/jest/bin/jest.js \
    --selectProjects "$1" --runInBand --json --outputFile="$results_dir/$1.json"
}

jest() {
  local rc=0
  run_jest "$1" || rc=$?
  count "$1" "$rc"
}

# The launcher project in the background (whole runs): started before the cluster stage,
# collected after it.
launcher_pid=""
start_launcher() {
  echo "== launcher (real QEMU), beside the cluster stage: its output follows the cluster stage's"
  ( rc=0; run_jest launcher >"$results_dir/launcher.log" 2>&1 || rc=$?; echo "$rc" >"$results_dir/launcher.rc" ) &
  launcher_pid=$!
}
collect_launcher() {
  [ -n "$launcher_pid" ] || return 0
  wait "$launcher_pid" || true
  launcher_pid=""
  echo "== launcher (real QEMU): its output"
  cat "$results_dir/launcher.log"
  count launcher "$(cat "$results_dir/launcher.rc" 2>/dev/null || echo 1)"
}

stage() { [ "$only" = all ] || [ "$only" = "$1" ]; }

# A check or set-up step outside jest counts as one test: its failure fails the run.
check() {
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name"; failed=$((failed + 1)); status=1; return 1; fi
}

summary() {
  collect_launcher
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

if [ "$only" = launcher ]; then
  echo "== launcher (real QEMU)"
  jest launcher
elif [ "$only" = all ]; then
  start_launcher
fi

if stage cluster; then
  echo "== cluster (real kube-apiserver, kubelet, containerd)"
  cleanup() { check "cluster down, nothing left of either node" bash test/cluster/cluster-down-check.sh || true; summary; trap - EXIT; exit "$status"; }
  trap cleanup EXIT
  check "cluster up" env KUBEVM_NODES="${KUBEVM_NODES:-2}" make --no-print-directory cluster-up || exit 1
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

collect_launcher
exit "$status"
