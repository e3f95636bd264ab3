#!/usr/bin/env bash
# Builds the launcher suite's test guests from Debian packages only, cached and keyed by the
# package versions so a second run is a no-op. Nothing is installed on the host: the packages are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the cache.
#
# Output (printed as the last line: the guest directory):
#   vmlinuz           Debian's cloud kernel (linux-image-cloud-amd64's versioned dependency)
#   initramfs.cpio.gz busybox-static + the few modules the guests need + /init (guest-init.sh)
#                     + Debian's dropbear and OpenSSH's sftp-server (kubevm.ssh; scp speaks SFTP
#                     since OpenSSH 9) and qemu-guest-agent (kubevm.agent=qemu-ga), with the
#                     libraries they link
#   disk.qcow2        an ext4 filesystem holding /guest.sh, the program the guest runs when it
#                     boots "from its disk" (the containerDisk guest)
#   containerdisk/    the OCI image layout of a containerDisk image holding /disk/disk.qcow2
#   versions          the package versions this build was made from
# Behaviour switches of the guest are kernel command line words, see guest-init.sh. The disk with
# Debian's real cloud-init is built separately by build-cloudinit.sh (larger, slower to build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${KUBEVM_CACHE:-$HOME/.cache/kubevm}/guests"
mkdir -p "$cache"

kernel_meta=linux-image-cloud-amd64
kernel_pkg="$(apt-cache depends "$kernel_meta" | awk '/Depends: linux-image-/{print $2; exit}')"
[ -n "$kernel_pkg" ] || { echo "build.sh: cannot resolve $kernel_meta's kernel package (apt-get update?)" >&2; exit 1; }
kernel_ver="$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/{print $2}')"
busybox_ver="$(apt-cache policy busybox-static | awk '/Candidate:/{print $2}')"
# Debian's dropbear (kubevm.ssh), OpenSSH's sftp-server (libc only; dropbear runs it for the sftp
# subsystem that scp uses), qemu-guest-agent (kubevm.agent=qemu-ga) and the shared libraries they
# link, from their packages.
bin_pkgs="dropbear-bin openssh-sftp-server libtomcrypt1 libtommath1 libgmp10 zlib1g libcrypt1 libc6
  qemu-guest-agent libglib2.0-0 libpcre2-8-0 libnuma1 libudev1 liburing2"
bin_vers="$(for p in $bin_pkgs; do apt-cache policy "$p" | awk '/Candidate:/{print $2}'; done | tr '\n' '_')"
# The key also covers this script and the guest's init so editing them rebuilds.
script_sum="$(cat "$0" "$here/guest-init.sh" "$here/oci-image.sh" | sha256sum | cut -c1-12)"
key="${kernel_pkg}_${kernel_ver}_busybox_${busybox_ver}_$(echo "$bin_vers" | sha256sum | cut -c1-8)_${script_sum}"
key="${key//[:~+]/-}"
out="$cache/$key"
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi

work="$(mktemp -d "$cache/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086
download() { (cd "$work" && apt-get download -q "$kernel_pkg" busybox-static $bin_pkgs 2>&1 | grep -v 'unsandboxed' >&2; exit "${PIPESTATUS[0]}"); }
# Stale package lists name versions the mirror no longer has: refresh once and retry.
download || { apt-get update -qq >&2 && download; }
dpkg-deb -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
for p in $bin_pkgs; do dpkg-deb -x "$work/${p}"_*.deb "$work/bin"; done
kver="${kernel_pkg#linux-image-}"
mods="$work/kernel/lib/modules/$kver"

# initramfs root
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,cidata,etc,lib/modules/"$kver"}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
for applet in sh mount umount mkdir cat echo sleep poweroff modprobe findfs sync head grep sed \
  cut tr ls dd date hostname ip ifconfig udhcpc insmod depmod stat seq sha256sum awk httpd route uname basename chroot \
  base64 chmod; do
  ln -sf busybox "$root/bin/$applet"
done
# Only these modules, and what they depend on (busybox depmod resolves that below).
wanted="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
  virtio_net net_failover failover virtio_console virtio-rng rng-core isofs cdrom button evdev
  virtio_scsi scsi_mod sd_mod sr_mod scsi_common crc32c_generic libcrc32c"
for m in $wanted; do
  f="$(find "$mods/kernel" -name "$m.ko" | head -1)"
  [ -n "$f" ] || continue # built in, or absent from this kernel: fine either way
  dest="$root/lib/modules/$kver/${f#"$mods/"}"
  mkdir -p "$(dirname "$dest")"
  cp "$f" "$dest"
done
cp "$mods/modules.builtin" "$mods/modules.order" "$root/lib/modules/$kver/" 2>/dev/null || true
"$work/busybox/bin/busybox" depmod -b "$root" "$kver"
install -m 0755 "$here/guest-init.sh" "$root/init"
# dropbear, sftp-server, qemu-ga and exactly the libraries they need (about 4 MB compressed); the
# dynamic loader where the binaries look for it, the libraries in glibc's default search path.
install -D -m 0755 "$work/bin/usr/sbin/dropbear" "$root/sbin/dropbear"
# Where Debian's dropbear looks for it.
install -D -m 0755 "$work/bin/usr/lib/openssh/sftp-server" "$root/usr/lib/sftp-server"
install -D -m 0755 "$work/bin/usr/sbin/qemu-ga" "$root/sbin/qemu-ga"
mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu"
for so in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libcrypt.so.1 libz.so.1 libgmp.so.10 libtomcrypt.so.1 libtommath.so.1 \
  libglib-2.0.so.0 libgmodule-2.0.so.0 libpcre2-8.so.0 libnuma.so.1 libudev.so.1 liburing.so.2; do
  f="$(find "$work/bin" -name "$so" -path '*x86_64-linux-gnu*' | head -1)"
  [ -n "$f" ] || { echo "build.sh: $so not found in $bin_pkgs" >&2; exit 1; }
  cp -L "$f" "$root/lib/x86_64-linux-gnu/$so"
done
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
# udhcpc hands the lease to a script; this one applies address, route and DNS.
cat >"$root/bin/udhcpc-script" <<'DHCP'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
DHCP
chmod 0755 "$root/bin/udhcpc-script"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
(cd "$root" && find . | "$work/busybox/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$work/initramfs.cpio.gz"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"

# The disk guest: an ext4 filesystem image populated without mounting (mke2fs -d), then qcow2.
disk="$work/disk"
mkdir -p "$disk"
cat >"$disk/guest.sh" <<'GUEST'
#!/bin/sh
# Runs inside the guest from its own disk: proves the disk is the one the VMI named and that the
# guest can write to it (through the launcher's overlay, never into the containerDisk base).
echo "KUBEVM-DISK-GUEST running from $1"
date > "$1/written-by-guest"
dd if=/dev/urandom of="$1/blob" bs=64k count=16 2>/dev/null
sync
echo "KUBEVM-DISK-WRITTEN $(sha256sum "$1/blob" | cut -c1-16)"
GUEST
chmod 0755 "$disk/guest.sh"
echo "kubevm test disk" >"$disk/README"
truncate -s 64M "$work/disk.raw"
mke2fs -q -t ext4 -L kubevm-disk -d "$disk" "$work/disk.raw"
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"

bash "$here/oci-image.sh" "$work/containerdisk" "$work/disk.qcow2" >&2

printf 'kernel %s %s\nbusybox-static %s\npackages %s %s\n' "$kernel_pkg" "$kernel_ver" "$busybox_ver" "$bin_pkgs" "$bin_vers" >"$work/versions"
mkdir -p "$out"
mv "$work/vmlinuz" "$work/initramfs.cpio.gz" "$work/disk.qcow2" "$work/containerdisk" "$work/versions" "$out/"
touch "$out/.done"
echo "$out"
