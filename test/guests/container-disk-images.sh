#!/usr/bin/env bash
# Packages the test guests (test/guests/build.sh) as the two images a VM on the local cluster
# uses, and imports them into the cluster's containerd:
#   kubevm/test-guest-containerdisk:<version>  /disk/disk.qcow2, KubeVirt's containerDisk layout
#   kubevm/test-guest-kernel:<version>         /boot/vmlinuz and /boot/initramfs.cpio.gz for
#                                              spec.domain.firmware.kernelBoot.container
# Files are owned by the launcher's uid 107 and read-only, as KubeVirt's containerDisks are.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
source "$repo/local-cluster/lib.sh"
version="$(node -p "require('$repo/package.json').version")"

guest="$(bash "$repo/test/guests/build.sh" | tail -n 1)"
work="$(mktemp -d /tmp/kubevm-guest-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

import_unless_present() {
  local ref="$1" rootfs="$2" stamp="$KUBEVM_CACHE/images/$1.stamp" key
  key="$(basename "$guest")"
  mkdir -p "$(dirname "$stamp")"
  if image_stamp_current "$stamp" "$key" "docker.io/$ref"; then
    log "$ref is up to date"
    return 0
  fi
  bash "$repo/local-cluster/build-image.sh" "$ref" "$rootfs" >/dev/null
  image_stamp_write "$stamp" "$key" "docker.io/$ref"
}

mkdir -p "$work/disk/disk" "$work/kernel/boot"
install -m 0444 -o 107 -g 107 "$guest/disk.qcow2" "$work/disk/disk/disk.qcow2"
install -m 0444 -o 107 -g 107 "$guest/vmlinuz" "$work/kernel/boot/vmlinuz"
install -m 0444 -o 107 -g 107 "$guest/initramfs.cpio.gz" "$work/kernel/boot/initramfs.cpio.gz"
import_unless_present "kubevm/test-guest-containerdisk:$version" "$work/disk"
import_unless_present "kubevm/test-guest-kernel:$version" "$work/kernel"
