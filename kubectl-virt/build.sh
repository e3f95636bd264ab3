#!/usr/bin/env bash
# Bundles the plugin into ONE executable file (node shebang, everything inlined by esbuild) and
# installs it as kubectl-virt on the PATH, where `kubectl plugin list` finds it.
#   kubectl-virt/build.sh [BINDIR]   (default /usr/local/bin; BINDIR=- only builds)
#   kubectl-virt/build.sh --krew     also the krew archive and manifest (dist/plugin/kubectl-virt.tar.gz,
#                                    dist/plugin/virt.yaml from kubectl-virt/krew/virt.yaml)
# The bundle is written to dist/plugin/kubectl-virt first; its path is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
krew=false
if [[ "${1:-}" == "--krew" ]]; then krew=true; shift; fi
bindir=${1:-${KUBECTL_VIRT_BINDIR:-/usr/local/bin}}
[[ -x node_modules/.bin/esbuild ]] || npm ci --no-audit --no-fund >/dev/null
version=$(node -p 'require("./package.json").version')
mkdir -p dist/plugin
node kubectl-virt/bundle.js dist/plugin/kubectl-virt
# esbuild keeps main.ts's shebang as the first line. Inside the repository the nearest
# package.json says "module"; dist/plugin/ (not dist/, where tsc writes ESM) gets its own so
# the bundle runs from here too.
chmod 0755 dist/plugin/kubectl-virt
echo '{ "type": "commonjs" }' >dist/plugin/package.json
if $krew; then
  tar -C dist/plugin -czf dist/plugin/kubectl-virt.tar.gz kubectl-virt
  sha=$(sha256sum dist/plugin/kubectl-virt.tar.gz | cut -d' ' -f1)
  uri=${KUBECTL_VIRT_ARCHIVE_URI:-file://$PWD/dist/plugin/kubectl-virt.tar.gz}
  sed -e "s|\${VERSION}|$version|g" -e "s|\${SHA256}|$sha|g" -e "s|\${URI}|$uri|g" kubectl-virt/krew/virt.yaml >dist/plugin/virt.yaml
fi
if [[ "$bindir" != "-" ]]; then
  install -m 0755 dist/plugin/kubectl-virt "$bindir/kubectl-virt"
  echo "$bindir/kubectl-virt"
else
  echo "$PWD/dist/plugin/kubectl-virt"
fi
