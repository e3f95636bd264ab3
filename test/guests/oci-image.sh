#!/usr/bin/env bash
# Writes an OCI image layout (https://github.com/opencontainers/image-spec) for a containerDisk:
# one layer holding /disk/<name>, KubeVirt's containerDisk convention. Usage:
#   oci-image.sh <out-dir> <disk-file> [ref-name]
# The result can be imported with `ctr images import` (as an oci-archive after tar -C out -cf).
set -euo pipefail
out="$1"; disk="$2"; ref="${3:-kubevm/test-containerdisk:latest}"
name="$(basename "$disk")"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/layer/disk" "$out/blobs/sha256"
cp "$disk" "$tmp/layer/disk/$name"
# 107 is the launcher's qemu user; fixed mtime keeps the digest stable for the same disk.
chmod 0444 "$tmp/layer/disk/$name"
tar --sort=name --owner=107 --group=107 --numeric-owner --mtime=@0 -C "$tmp/layer" -cf "$tmp/layer.tar" disk
diff_id="$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
gzip -n -1 -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
layer_digest="$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1)"
layer_size="$(stat -c %s "$tmp/layer.tar.gz")"
mv "$tmp/layer.tar.gz" "$out/blobs/sha256/$layer_digest"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"kubevm test/guests/oci-image.sh"}]}' \
  "$diff_id" >"$tmp/config.json"
config_digest="$(sha256sum "$tmp/config.json" | cut -d' ' -f1)"
config_size="$(stat -c %s "$tmp/config.json")"
mv "$tmp/config.json" "$out/blobs/sha256/$config_digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$tmp/manifest.json"
manifest_digest="$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1)"
manifest_size="$(stat -c %s "$tmp/manifest.json")"
mv "$tmp/manifest.json" "$out/blobs/sha256/$manifest_digest"
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_digest" "$manifest_size" "$ref" >"$out/index.json"
echo "oci-image: $ref sha256:$manifest_digest ($name)"
