#!/usr/bin/env bash
# Installs what kubevm's build and tests need on a fresh Debian 12 machine, idempotently:
# Debian packages (QEMU, image tools; the local cluster's own packages are installed by
# local-cluster/) and the node modules pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

# QEMU from bookworm-backports: Debian 12's QEMU 7.2 loses guest memory writes in a live migration
# under TCG (docs/adr/0018-qemu-from-bookworm-backports.md); the launcher image takes this QEMU.
qemu_min_version="1:10.0"
backports=/etc/apt/sources.list.d/kubevm-bookworm-backports.sources
qemu_version="$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)"
if [ -z "$qemu_version" ] || dpkg --compare-versions "$qemu_version" lt "$qemu_min_version"; then
  echo "install-deps: installing QEMU >= $qemu_min_version from bookworm-backports (installed: ${qemu_version:-none})"
  if [ ! -f "$backports" ]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$backports"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils
fi

# chromium: the kubectl virt suite opens vnc --web's page headless; openssh-client: its ssh/scp.
apt_packages=(qemu-system-x86 qemu-utils xorriso busybox-static passt socat chromium openssh-client)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund
fi
