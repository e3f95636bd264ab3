#!/usr/bin/env bash
# Bundles the launcher into ONE ES module, with the code of every package it imports (pino, zod)
# inlined and only node's built-in modules left to load:
#   launcher/bundle.sh <out.js>
# The launcher pod starts a node process per VM, and node spends most of that start loading
# modules: one file instead of some 150 halves its CPU time before main() runs (about 200 ms
# of CPU compiled file by file, 130 ms bundled; bench/vm-startup.md). A package.json beside the
# output makes node read it as an ES module wherever it is copied.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
mkdir -p "$(dirname "$out")"
# The banner gives the bundle a require(): a CommonJS package inlined (pino) calls it for node's
# built-ins, which an ES module has no require for.
(cd "$repo" && npx --no-install esbuild launcher/main.ts --bundle --platform=node --format=esm --target=node20 \
  --log-level=warning --legal-comments=eof --outfile="$out" \
  --banner:js="import { createRequire as kubevmCreateRequire } from 'node:module'; const require = kubevmCreateRequire(import.meta.url);")
printf '{"type":"module","private":true}\n' >"$(dirname "$out")/package.json"
