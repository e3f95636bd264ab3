#!/usr/bin/env bash
# Builds a disk image holding Debian's real cloud-init (and Python, its dependencies, busybox for a
# shell) from Debian packages: `apt-cache depends --recurse` gives the closure, `apt-get download`
# fetches it, `dpkg-deb -x` unpacks it (no maintainer scripts run, nothing installed on the host),
# `mke2fs -d` makes an ext4 file system labelled kubevm-root from the tree. The busybox guest's
# /init (guest-init.sh, kubevm.rootfs=cloudinit) mounts it and runs cloud-init's four stages
# chrooted into it, so a VMI's cloudInitNoCloud volume is consumed by cloud-init itself.
# Cached under ${KUBEVM_CACHE:-$HOME/.cache/kubevm}/guests, keyed by the package versions.
# Prints the output directory (containing cloudinit-root.qcow2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${KUBEVM_CACHE:-$HOME/.cache/kubevm}/guests"
mkdir -p "$cache"

pkgs="$( (apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances cloud-init 2>/dev/null; echo busybox-static) \
  | grep -E '^[a-z0-9]' | sort -u)"
# One apt-cache call for all (one per package costs ~0.5 s each).
# shellcheck disable=SC2086
versions="$(apt-cache policy $pkgs | awk '/^[^ ].*:$/{sub(":$", "", $1); p=$1} /Candidate:/{print p "=" $2}')"
key="cloudinit_$( (echo "$versions"; cat "$0") | sha256sum | cut -c1-16)"
out="$cache/$key"
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi

work="$(mktemp -d "$cache/.build-ci.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root"
# shellcheck disable=SC2086
(cd "$work/debs" && apt-get download -q $pkgs 2>&1 | grep -vE 'unsandboxed|^Get:' >&2) || true
n=0
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; n=$((n + 1)); done
echo "build-cloudinit: unpacked $n packages" >&2
root="$work/root"
rm -rf "$root"/usr/share/{doc,man,info,locale,i18n,lintian} "$root"/usr/share/perl* 2>/dev/null || true
# A shell and the few commands cloud-init calls that the closure lacks, from busybox.
for applet in sh hostname cat mkdir rm ls sync mount umount env; do
  [ -e "$root/bin/$applet" ] || [ -e "$root/usr/bin/$applet" ] || ln -s /bin/busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
mkdir -p "$root"/{proc,sys,dev,run,tmp,root,var/lib/cloud,var/log,etc/cloud/cloud.cfg.d}
# NoCloud only (no network metadata probing, no systemd to ask), and only the modules the test uses.
cat >"$root/etc/cloud/cloud.cfg.d/99-kubevm-test.cfg" <<'CFG'
datasource_list: [NoCloud, None]
cloud_init_modules: [write_files, set_hostname, update_hostname]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user, final-message]
CFG
truncate -s 1G "$work/root.raw"
mke2fs -q -t ext4 -L kubevm-root -d "$root" "$work/root.raw"
qemu-img convert -q -f raw -O qcow2 "$work/root.raw" "$work/cloudinit-root.qcow2"
mkdir -p "$out"
mv "$work/cloudinit-root.qcow2" "$out/"
echo "$versions" >"$out/versions"
touch "$out/.done"
echo "$out"
