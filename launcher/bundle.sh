#!/usr/bin/env bash
# Bundles the launcher into one CommonJS file, with the code of every package it imports (pino,
# zod) inlined and only node's built-in modules left to load, beside V8's code cache of it:
#   launcher/bundle.sh <dir>/main.js
#     <dir>/launcher.cjs             the launcher (launcher/main.ts and all it imports)
#     <dir>/launcher.cjs.codecache   V8's compiled code for it, made by this machine's node
#     <dir>/main.js                  the entry point (launcher/boot.ts): runs the one with the other
# The launcher pod starts a node process per VM, and node spends most of that start loading and
# compiling code: one file instead of some 150 halves it, CommonJS instead of an ES module and the
# code cache take a third of what is left (bench/vm-startup.md). The image copies this machine's
# node (rootfs.sh), whose V8 accepts the cache: the script checks it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
dir="$(dirname "$out")"
mkdir -p "$dir"
bundle() { # <entry.ts> <out>
  (cd "$repo" && npx --no-install esbuild "$1" --bundle --platform=node --format=cjs --target=node20 \
    --log-level=warning --legal-comments=eof --outfile="$2")
}
bundle launcher/main.ts "$dir/launcher.cjs"
bundle launcher/boot.ts "$out"
printf '{"type":"commonjs","private":true}\n' >"$dir/package.json"

# The cache: the launcher run as far as waiting for its VMI on input.sock, with nothing from this
# shell's environment (NODE_OPTIONS would change V8's flags, and the cache with them). What V8
# writes differs from run to run, so it is kept per bundle and V8 version and used again: an
# unchanged launcher gives the image an unchanged file.
node="$(command -v node)"
cache="$dir/launcher.cjs.codecache"
store="${KUBEVM_CACHE:-$HOME/.cache/kubevm}/launcher-code-cache"
key="$(sha256sum "$dir/launcher.cjs" | cut -c1-16)-v8-$("$node" -p process.versions.v8)"
check() { env -i PATH=/usr/bin:/bin "$node" "$out" --check-code-cache >/dev/null; }
rm -f "$cache"
if [ -f "$store/$key" ] && cp "$store/$key" "$cache" && check; then exit 0; fi
run="$(mktemp -d /tmp/kubevm-launcher-cache.XXXXXX)"
env -i PATH=/usr/bin:/bin KUBEVM_VMI_UID=code-cache KUBEVM_RUN_DIR="$run" "$node" "$out" --write-code-cache >"$run.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -S "$run/input.sock" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -USR2 "$pid" 2>/dev/null || true
wait "$pid" || { cat "$run.log" >&2; rm -rf "$run" "$run.log"; echo "bundle.sh: the launcher did not write its code cache" >&2; exit 1; }
rm -rf "$run" "$run.log"
check
mkdir -p "$store"
cp "$cache" "$store/$key"
# The store keeps the last few.
ls -t "$store" | tail -n +6 | while read -r old; do rm -f "$store/$old"; done
