#!/usr/bin/env bash
# Copies files into a root filesystem directory at the same absolute paths,
# with the shared libraries (and dynamic loader) their ELF binaries need.
#
# usage: rootfs-add.sh ROOTFS_DIR PATH...
#   PATH  an absolute file or directory on this machine. Symlinks are copied as
#         symlinks and their targets added too; every ELF file found (binaries,
#         .so modules inside directories) gets its `ldd` libraries added.
# e.g.    rootfs-add.sh /tmp/rootfs /usr/bin/qemu-system-x86_64 /usr/share/qemu /usr/lib/x86_64-linux-gnu/qemu
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
root="$(cd "$1" && pwd)"
shift
declare -A seen=()

add_path() {
  local p="$1"
  [[ "$p" == /* ]] || { echo "rootfs-add: $p is not an absolute path" >&2; exit 1; }
  [[ -n "${seen[$p]:-}" ]] && return 0
  seen[$p]=1
  [[ -e "$p" || -L "$p" ]] || { echo "rootfs-add: $p does not exist" >&2; exit 1; }
  # Parents first, keeping symlinked parents (/lib -> usr/lib on usrmerge Debian) as symlinks.
  local parent
  parent="$(dirname "$p")"
  [[ "$parent" == / ]] || add_parent "$parent"
  if [[ -L "$p" ]]; then
    [[ -e "$root$p" || -L "$root$p" ]] || cp -P "$p" "$root$p"
    local target
    target="$(readlink -f "$p" || true)"
    # A dangling link is copied as is; a live one brings its target along.
    [[ -n "$target" && -e "$target" ]] && add_path "$target"
    return 0
  elif [[ -d "$p" ]]; then
    mkdir -p "$root$p"
    local child
    while IFS= read -r -d '' child; do add_path "$child"; done < <(find "$p" -mindepth 1 -maxdepth 1 -print0)
  else
    cp -p "$p" "$root$p"
    add_deps "$p"
  fi
}

add_parent() {
  local d="$1"
  [[ -e "$root$d" || -L "$root$d" ]] && return 0
  local up
  up="$(dirname "$d")"
  [[ "$up" == / ]] || add_parent "$up"
  if [[ -L "$d" ]]; then
    # Keep the link, and create (only) the directory it points to.
    cp -P "$d" "$root$d"
    add_parent "$(readlink -f "$d")"
  else
    mkdir -p "$root$d"
  fi
}

add_deps() {
  # Only dynamically linked ELF files have libraries to add.
  [[ "$(head -c4 "$1" | od -An -c | tr -d ' ')" == '177ELF' ]] || return 0
  local lib
  while read -r lib; do
    [[ -n "$lib" ]] && add_path "$lib"
  done < <(ldd "$1" 2>/dev/null | sed -n 's#.*=> \(/[^ ]*\) (.*#\1#p; s#^[[:space:]]*\(/[^ ]*\) (.*#\1#p')
}

for p in "$@"; do add_path "$p"; done
