#!/usr/bin/env bash
# Assembles the launcher image's root file system in <dir> from this (Debian 12) machine, its QEMU
# from bookworm-backports (scripts/install-deps.sh, docs/adr/0018-qemu-from-bookworm-backports.md):
#   /usr/local/bin/node                 the node binary
#   /opt/kubevm/dist/launcher/main.js   the launcher's entry point, its one bundled file beside it and
#                                       V8's code cache of that file (launcher/bundle.sh)
#   /usr/bin/{qemu-system-x86_64,qemu-img,xorriso,passt}  and every shared library they load (ldd)
#   /usr/share/qemu, /usr/share/seabios QEMU's firmware and option ROMs (SeaBIOS, VGA BIOS, linuxboot)
#   /usr/lib/ipxe/qemu/efi-*.rom        NIC option ROMs for network boot (bootOrder on an interface)
#   /etc/passwd, /etc/group             uid/gid 107 "qemu"
#   the pod's mount points              /var/run/kubevm-private, /var/run/kubevirt-ephemeral-disks, ...
# The result is meant for a FROM-scratch image (the lead's image build tars it). Usage:
#   launcher/rootfs.sh <dir>            assemble
#   launcher/rootfs.sh --check <dir>    run the launcher from <dir> (read-only root, uid 107) and boot a guest
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

copy_with_libs() { # <root> <binary>...: the binaries and their shared libraries, same paths
  local root="$1"; shift
  local f lib
  for f in "$@"; do
    f="$(readlink -f "$f")"
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    for lib in $(ldd "$f" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'); do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

check() {
  # Runs the launcher itself from <root> as the pod would: uid 107, the root file system mounted
  # read-only, only the pod's volumes writable; it takes its VMI on its input socket as from the
  # node handler, boots the containerDisk guest with a cloud-init ISO built by the image's own
  # xorriso, and shuts it down over the command socket.
  local root="$1" guests work
  guests="$(bash "$repo/test/guests/build.sh")"
  work="$(mktemp -d /tmp/kubevm-rootfs-check.XXXXXX)"
  mkdir -p "$work"/{private,ephemeral,kernel,containerdisks/root}
  cp "$guests/vmlinuz" "$guests/initramfs.cpio.gz" "$work/kernel/"
  local manifest layer
  manifest="$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$guests/containerdisk/index.json")"
  layer="$(grep -o '"layers":\[{[^]]*' "$guests/containerdisk/blobs/sha256/$manifest" | sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p')"
  tar -xzf "$guests/containerdisk/blobs/sha256/$layer" -C "$work/containerdisks/root"
  # One line, as the node handler delivers it (runtime/contracts/launcher-input.ts).
  tr -d '\n' >"$work/delivery.json" <<'VMI'
{"vmi":{"metadata":{"name":"rootfs-check","namespace":"default","uid":"rootfs-check-uid"},"spec":{"terminationGracePeriodSeconds":30,
 "domain":{"memory":{"guest":"128Mi"},"devices":{"autoattachGraphicsDevice":true,
  "disks":[{"name":"root","disk":{"bus":"virtio"}},{"name":"cloudinit","disk":{"bus":"virtio"}}]},
  "firmware":{"kernelBoot":{"kernelArgs":"console=ttyS0 quiet kubevm.counter=0","container":{"image":"k","kernelPath":"/vmlinuz","initrdPath":"/initramfs.cpio.gz"}}}},
 "volumes":[{"name":"root","containerDisk":{"image":"kubevm/test-containerdisk"}},
  {"name":"cloudinit","cloudInitNoCloud":{"userData":"#!/bin/sh\necho ROOTFS-CHECK-USERDATA\n"}}]}}}
VMI
  echo >>"$work/delivery.json"
  chown -R 107:107 "$work"
  unshare --mount --fork bash -c '
    set -e
    root="$1"; work="$2"
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount --bind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --bind "$work/private" "$root/var/run/kubevm-private"
    mount --bind "$work/ephemeral" "$root/var/run/kubevirt-ephemeral-disks"
    mount --bind -o ro "$work/kernel" "$root/var/run/kubevirt/kernel-boot"
    mount --bind -o ro "$work/containerdisks" "$root/var/run/kubevirt/container-disks"
    exec env -i PATH=/usr/bin:/usr/local/bin KUBEVM_ACCEL=tcg KUBEVM_ALLOW_EMULATION=true KUBEVM_AUTOSTART=true \
      KUBEVM_VMI_UID=rootfs-check-uid KUBEVM_LINGER_SECONDS=1 "$(command -v chroot)" --userspec=107:107 "$root" /usr/local/bin/node /opt/kubevm/dist/launcher/main.js
  ' _ "$root" "$work" >"$work/launcher.log" 2>&1 &
  local pid=$! ok=1 answer=""
  for _ in $(seq 1 60); do
    if [ -S "$work/private/input.sock" ]; then
      answer="$(timeout 10 socat -t 10 - UNIX-CONNECT:"$work/private/input.sock" <"$work/delivery.json" || true)"
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "rootfs check: the launcher answered the delivery: $answer"
  for _ in $(seq 1 120); do
    if grep -q KUBEVM-READY "$work/private/serial.log" 2>/dev/null; then ok=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  cat "$work/private/serial.log" 2>/dev/null || true
  if [ "$ok" = 0 ]; then
    printf '{"id":1,"command":"shutdown"}\n' | timeout 30 socat -t 30 - UNIX-CONNECT:"$work/private/launcher.sock" | cut -c1-200 || true
  fi
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then ok=1; kill -- "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  [ "$answer" = '{"ok":true}' ] || ok=1
  grep -q ROOTFS-CHECK-USERDATA "$work/private/serial.log" 2>/dev/null || ok=1
  grep -q '"to":"Succeeded"' "$work/launcher.log" || ok=1
  [ "$ok" = 0 ] || tail -20 "$work/launcher.log"
  rm -rf "$work"
  if [ "$ok" = 0 ]; then
    echo "rootfs check: the launcher from $root (read-only root, uid 107) took its VMI on its input socket, booted the containerDisk guest, ran its cloud-init user-data and shut it down"
  else
    echo "rootfs check: FAILED" >&2; exit 1
  fi
}

if [ "${1:-}" = "--check" ]; then check "$(readlink -f "$2")"; exit 0; fi
[ $# -eq 1 ] || { echo "usage: $0 <dir> | --check <dir>" >&2; exit 2; }
root="$(mkdir -p "$1" && readlink -f "$1")"

# Binaries and their libraries.
# (QEMU 10 has TCG built in: no accelerator module to copy.)
copy_with_libs "$root" "$(command -v node)" "$(command -v qemu-system-x86_64)" "$(command -v qemu-img)" \
  "$(command -v xorriso)" "$(command -v passt)"
mkdir -p "$root/usr/local/bin" "$root/usr/bin"
node_real="$(readlink -f "$(command -v node)")"
[ "$node_real" = /usr/local/bin/node ] || ln -sf "$node_real" "$root/usr/local/bin/node"
for b in qemu-system-x86_64 qemu-img xorriso passt; do
  real="$(readlink -f "$(command -v "$b")")"
  [ "$real" = "/usr/bin/$b" ] || ln -sf "$real" "$root/usr/bin/$b"
done
# QEMU firmware: SeaBIOS, VGA BIOS, linuxboot ROMs (symlinks resolved).
mkdir -p "$root/usr/share"
cp -rL /usr/share/qemu "$root/usr/share/"
cp -rL /usr/share/seabios "$root/usr/share/"
# NIC option ROMs (iPXE), loaded only for an interface with a bootOrder (network boot).
if [ -d /usr/lib/ipxe/qemu ]; then
  mkdir -p "$root/usr/lib/ipxe/qemu"
  cp -L /usr/lib/ipxe/qemu/efi-*.rom "$root/usr/lib/ipxe/qemu/"
fi
# Other architectures' firmware is not needed by qemu-system-x86_64.
(cd "$root/usr/share/qemu" && rm -rf openbios-* s390-* skiboot.lid slof.bin hppa-firmware.img opensbi-* palcode-clipper \
  npcm7xx_bootrom.bin ./*.dtb QEMU,* vof.bin)

# The launcher, bundled into one file with its code cache (launcher/bundle.sh, by the node copied
# above) where the pod's command runs it: `node dist/launcher/main.js` in /opt/kubevm
# (operator/render/workloads.ts, LAUNCHER_COMMAND).
bash "$repo/launcher/bundle.sh" "$root/opt/kubevm/dist/launcher/main.js"
# Users, and the directories the pod mounts (emptyDirs and volumes; the root stays read-only).
mkdir -p "$root/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nqemu:x:107:107:qemu:/var/run/kubevm-private:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nqemu:x:107:\n' >"$root/etc/group"
for d in tmp proc dev sys var/run/kubevm-private var/run/kubevirt-ephemeral-disks \
  var/run/kubevirt/container-disks var/run/kubevirt-private/vmi-disks var/run/kubevirt-private/secret \
  var/run/kubevirt/kernel-boot; do
  mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
du -sh "$root" | awk '{print "rootfs: " $1 " in " $2}'
