#!/usr/bin/env bash
# Builds kubevm's container images from this checkout and imports them into the local cluster's
# containerd (no registry, no Docker engine; see local-cluster/build-image.sh):
#   kubevm/controller:<version>    node + compiled JS + production node modules
#   kubevm/node-handler:<version>  the same root filesystem, another command
#   kubevm/api-server:<version>    the same root filesystem, another command
#   kubevm/operator:<version>      the same root filesystem, another command
#   kubevm/launcher:<version>      node, the launcher bundled in one file, QEMU and its tools (launcher/rootfs.sh)
# An image whose inputs did not change since its last import is not rebuilt.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source local-cluster/lib.sh

version="$(node -p 'require("./package.json").version')"
cache="$KUBEVM_CACHE/images"
mkdir -p "$cache"

log "compiling TypeScript"
rm -rf dist
npx tsc -p tsconfig.build.json

# Production node modules, once per lock file.
lock_hash="$(cat package.json package-lock.json | sha256sum | cut -c1-12)"
modules="$cache/node-modules-$lock_hash"
if [[ ! -d "$modules/node_modules" ]]; then
  log "installing production node modules into $modules"
  rm -rf "$modules.tmp" && mkdir -p "$modules.tmp"
  cp package.json package-lock.json "$modules.tmp/"
  (cd "$modules.tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  mv "$modules.tmp" "$modules"
fi

work="$(mktemp -d /tmp/kubevm-rootfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The components' root file system: what node needs to run our JS, nothing else (no shell).
base="$work/base"
mkdir -p "$base/opt/kubevm" "$base/etc" "$base/tmp"
chmod 1777 "$base/tmp"
bash local-cluster/rootfs-add.sh "$base" /usr/bin/node
cp -a dist "$base/opt/kubevm/dist"
cp -a "$modules/node_modules" "$base/opt/kubevm/node_modules"
cp package.json "$base/opt/kubevm/"
cat >"$base/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
qemu:x:107:107:qemu:/var/lib/qemu:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$base/etc/group" <<'GROUP'
root:x:0:
kvm:x:36:qemu
qemu:x:107:
nonroot:x:65532:
GROUP

# Builds and imports an image unless its content hash matches the one last imported and every
# node has that very image (the stamp: the content hash and the imported manifest digest).
image() {
  local name="$1" rootfs="$2"; shift 2
  local ref="kubevm/$name:$version"
  local hash stamp="$cache/$name.stamp"
  hash="$( (cd "$rootfs" && find . -printf '%p %l %m %U %G\n' | sort &&
            find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$*") | sha256sum | cut -c1-16)"
  if image_stamp_current "$stamp" "$hash" "docker.io/$ref"; then
    log "$ref is up to date"
    return 0
  fi
  bash local-cluster/build-image.sh "$@" "$ref" "$rootfs" >/dev/null
  image_stamp_write "$stamp" "$hash" "docker.io/$ref"
}

image controller "$base" --workdir /opt/kubevm --user 65532:65532 --entrypoint '["/usr/bin/node"]'
image node-handler "$base" --workdir /opt/kubevm --user 65532:65532 --entrypoint '["/usr/bin/node"]'
image api-server "$base" --workdir /opt/kubevm --user 65532:65532 --entrypoint '["/usr/bin/node"]'
image operator "$base" --workdir /opt/kubevm --user 65532:65532 --entrypoint '["/usr/bin/node"]'

launcher="$work/launcher"
cp -a "$base" "$launcher"
# The launcher runs from one bundled file (launcher/bundle.sh): none of the other components'
# JS, no node_modules.
rm -rf "$launcher/opt/kubevm/dist" "$launcher/opt/kubevm/node_modules"
bash launcher/rootfs.sh "$launcher"
# The static busybox the controller's init-copy containers run to copy containerDisk and
# kernelBoot files out of images that have no tools of their own (KUBEVM_COPIER).
bash local-cluster/rootfs-add.sh "$launcher" /bin/busybox
image launcher "$launcher" --workdir /opt/kubevm --user 107:107 --entrypoint '["/usr/bin/node"]'

# The test guests as containerDisk images (test/guests/).
if [[ -x test/guests/container-disk-images.sh ]]; then
  bash test/guests/container-disk-images.sh
fi
