#!/usr/bin/env bash
# Installs (idempotently) the Debian packages the local cluster needs.
#   install-deps.sh cp     control plane only: build tools, openssl, curl, jq
#   install-deps.sh full   adds runc, CNI plugins, iptables, conntrack, ... (containerd itself is built
#                          from its Go module: containerd/build.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="${1:-full}"
pkgs=(ca-certificates curl jq openssl gcc libc6-dev iproute2 procps util-linux)
if [[ "$mode" == full ]]; then
  # socat and ethtool: kubelet port-forward and CNI bridge helpers; conntrack: kube-proxy.
  pkgs+=(runc containernetworking-plugins iptables conntrack socat ethtool kmod)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v go >/dev/null || log "WARNING: no go toolchain on PATH; building Kubernetes needs Go >= 1.24"
[[ ${#missing[@]} -eq 0 ]] && exit 0

[[ "$(id -u)" == 0 ]] || die "missing packages ${missing[*]}: run as root or install them"
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt does not know a package yet.
for p in "${missing[@]}"; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then apt-get update -qq; break; fi
done
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
