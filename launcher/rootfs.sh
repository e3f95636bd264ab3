#!/usr/bin/env bash
# Assembles the launcher image's root file system in <dir> from this (Debian 12) machine:
#   /usr/local/bin/node                 the node binary
#   /opt/kubevm/launcher/*.js           the compiled launcher, with the node_modules it imports
#   /usr/bin/{qemu-system-x86_64,qemu-img,xorriso,passt}  and every shared library they load (ldd)
#   /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so    QEMU's TCG module (emulation fallback)
#   /usr/share/qemu, /usr/share/seabios QEMU's firmware and option ROMs (SeaBIOS, VGA BIOS, linuxboot)
#   /etc/passwd, /etc/group             uid/gid 107 "qemu"
#   the pod's mount points              /var/run/kubevm-private, /var/run/kubevirt-ephemeral-disks, ...
# The result is meant for a FROM-scratch image (the lead's image build tars it). Usage:
#   launcher/rootfs.sh <dir>            assemble
#   launcher/rootfs.sh --check <dir>    boot the test guest with QEMU from <dir> (chroot, as uid 107)
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
  local root="$1" guests
  guests="$(bash "$repo/test/guests/build.sh")"
  cp "$guests/vmlinuz" "$guests/initramfs.cpio.gz" "$root/tmp/"
  chmod 0644 "$root/tmp/vmlinuz" "$root/tmp/initramfs.cpio.gz"
  local log; log="$(mktemp)"
  # A private mount namespace: /dev and /proc bound into the root, gone when the command ends.
  timeout 40 unshare --mount --fork bash -c '
    set -e
    root="$1"
    mount --bind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    chroot --userspec=107:107 "$root" /usr/bin/qemu-system-x86_64 -version | head -1
    chroot --userspec=107:107 "$root" /usr/bin/qemu-img --version | head -1
    chroot --userspec=107:107 "$root" /usr/local/bin/node -e "import(\"/opt/kubevm/launcher/launcher/qemu-args.js\").then((m) => console.log(\"launcher modules load:\", typeof m.qemuArgs))"
    exec chroot --userspec=107:107 "$root" /usr/bin/qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 128 -nodefaults -no-user-config \
      -display none -serial stdio -device VGA -kernel /tmp/vmlinuz -initrd /tmp/initramfs.cpio.gz -append "console=ttyS0 quiet kubevm.counter=0" \
      -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
  ' _ "$root" >"$log" 2>&1 &
  local pid=$! ok=1
  for _ in $(seq 1 60); do
    if grep -q KUBEVM-READY "$log"; then ok=0; break; fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cat "$log"
  rm -f "$log"
  if [ "$ok" = 0 ]; then echo "rootfs check: the guest booted with QEMU from $root as uid 107"; else echo "rootfs check: FAILED" >&2; exit 1; fi
}

if [ "${1:-}" = "--check" ]; then check "$(readlink -f "$2")"; exit 0; fi
[ $# -eq 1 ] || { echo "usage: $0 <dir> | --check <dir>" >&2; exit 2; }
root="$(mkdir -p "$1" && readlink -f "$1")"

# Binaries and their libraries.
copy_with_libs "$root" "$(command -v node)" "$(command -v qemu-system-x86_64)" "$(command -v qemu-img)" \
  "$(command -v xorriso)" "$(command -v passt)" /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
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
# Other architectures' firmware is not needed by qemu-system-x86_64.
(cd "$root/usr/share/qemu" && rm -rf openbios-* s390-* skiboot.lid slof.bin hppa-firmware.img opensbi-* palcode-clipper \
  npcm7xx_bootrom.bin ./*.dtb QEMU,* vof.bin)

# The launcher, compiled, with the modules it imports at run time.
dest="$root/opt/kubevm/launcher"
mkdir -p "$dest"
(cd "$repo" && npx --no-install tsc launcher/main.ts --outDir "$dest" --module nodenext --moduleResolution nodenext \
  --target es2022 --skipLibCheck --rootDir . --types node --sourceMap false)
printf '{"type":"module","private":true}\n' >"$dest/package.json"
node -e '
  // The runtime dependency closure of the packages the launcher imports.
  const fs = require("fs"), path = require("path");
  const [repo, dest, ...roots] = process.argv.slice(1);
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const pj = JSON.parse(fs.readFileSync(path.join(repo, "node_modules", name, "package.json"), "utf8"));
    for (const dep of Object.keys(pj.dependencies ?? {})) visit(dep);
  };
  roots.forEach(visit);
  for (const name of seen) fs.cpSync(path.join(repo, "node_modules", name), path.join(dest, "node_modules", name), { recursive: true, dereference: true });
  console.log("node_modules:", [...seen].sort().join(" "));
' "$repo" "$dest" pino

# Users, and the directories the pod mounts (emptyDirs and volumes; the root stays read-only).
mkdir -p "$root/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nqemu:x:107:107:qemu:/var/run/kubevm-private:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nqemu:x:107:\n' >"$root/etc/group"
for d in tmp proc dev sys var/run/kubevm-private var/run/kubevirt-ephemeral-disks var/run/kubevm/vmi \
  var/run/kubevirt/container-disks var/run/kubevirt-private/vmi-disks var/run/kubevirt-private/secret \
  var/run/kubevirt/kernel-boot; do
  mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
du -sh "$root" | awk '{print "rootfs: " $1 " in " $2}'
