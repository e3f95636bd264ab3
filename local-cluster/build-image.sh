#!/usr/bin/env bash
# Builds an OCI image from a root filesystem directory and imports it into the
# local cluster's containerd (namespace k8s.io), so pods can use it with
# imagePullPolicy: IfNotPresent. No registry, no Docker engine.
#
# usage: build-image.sh [options] IMAGE_REF ROOTFS_DIR
#   IMAGE_REF            e.g. kubevm/launcher:0.1.0 (normalized like the kubelet does:
#                        docker.io/kubevm/launcher:0.1.0); a tag is required, not "latest"
#   ROOTFS_DIR           becomes the image's single layer, as is (owners, modes, symlinks kept)
# options:
#   --entrypoint JSON    e.g. '["/usr/bin/node","/app/main.js"]'
#   --cmd JSON           e.g. '["--verbose"]'
#   --env KEY=VALUE      repeatable
#   --user USER          e.g. 65532 or 65532:65532
#   --workdir DIR
#   --label KEY=VALUE    repeatable
#   --output FILE        also keep the OCI archive (tar) at FILE
#   --no-import          only write --output; do not talk to containerd
#   --address SOCKET     containerd socket, repeatable (default: every running node's containerd
#                        of the local cluster, under $KUBEVM_STATE)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

entrypoint=null cmd=null user="" workdir="" output="" do_import=1
envs=() labels=() addresses=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entrypoint) entrypoint="$2"; shift 2 ;;
    --cmd) cmd="$2"; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --label) labels+=("$2"); shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --no-import) do_import=0; shift ;;
    --address) addresses+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || usage
ref="$1" rootfs="$2"
[[ -d "$rootfs" ]] || die "root filesystem $rootfs is not a directory"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
for j in "$entrypoint" "$cmd"; do
  jq -e 'type == "array" or type == "null"' <<<"$j" >/dev/null 2>&1 || die "--entrypoint/--cmd take a JSON array, got: $j"
done

# Normalize the reference the way the kubelet and containerd do.
name="${ref%:*}" tag="${ref##*:}"
[[ "$name" != "$ref" && "$tag" != */* ]] || die "image ref $ref needs a tag (kubevm/NAME:TAG)"
[[ "$tag" != latest ]] || die "use a non-latest tag: pods use imagePullPolicy IfNotPresent"
first="${name%%/*}"
if [[ "$name" != */* ]]; then name="docker.io/library/$name"
elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then name="docker.io/$name"; fi
full="$name:$tag"

work="$(mktemp -d "${TMPDIR:-/tmp}/kubevm-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

# The layer: an uncompressed tar (its digest is also its diff_id); local
# import gains nothing from compression.
tar --create --file="$work/layer.tar" --directory="$rootfs" --numeric-owner --sort=name --xattrs .
layer_digest="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
layer_size="$(stat -c %s "$work/layer.tar")"
mv "$work/layer.tar" "$work/blobs/sha256/$layer_digest"

created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
env_json="$(printf '%s\n' "${envs[@]+"${envs[@]}"}" | jq -R . | jq -sc 'map(select(length > 0))')"
# Give images a PATH unless one is set, as docker build does.
if ! jq -e 'any(startswith("PATH="))' <<<"$env_json" >/dev/null; then
  env_json="$(jq -c '. + ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]' <<<"$env_json")"
fi
labels_json="$(printf '%s\n' "${labels[@]+"${labels[@]}"}" | jq -R . | jq -sc 'map(select(length > 0) | split("=") | {key: .[0], value: (.[1:] | join("="))}) | from_entries')"

config="$(jq -nc --arg created "$created" --arg user "$user" --arg workdir "$workdir" \
  --argjson entrypoint "$entrypoint" --argjson cmd "$cmd" --argjson env "$env_json" \
  --argjson labels "$labels_json" --arg diff "sha256:$layer_digest" '{
    architecture: "amd64", os: "linux", created: $created,
    config: ({Env: $env, Labels: $labels}
      + (if $entrypoint then {Entrypoint: $entrypoint} else {} end)
      + (if $cmd then {Cmd: $cmd} else {} end)
      + (if $user != "" then {User: $user} else {} end)
      + (if $workdir != "" then {WorkingDir: $workdir} else {} end)),
    rootfs: {type: "layers", diff_ids: [$diff]},
    history: [{created: $created, created_by: "kubevm local-cluster/build-image.sh"}]
  }')"
config_digest="$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
printf '%s' "$config" >"$work/blobs/sha256/$config_digest"

manifest="$(jq -nc --arg cd "sha256:$config_digest" --argjson cs "${#config}" \
  --arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
  }')"
manifest_digest="$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
printf '%s' "$manifest" >"$work/blobs/sha256/$manifest_digest"

echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
jq -nc --arg md "sha256:$manifest_digest" --argjson ms "${#manifest}" --arg full "$full" --arg tag "$tag" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
    platform: {architecture: "amd64", os: "linux"},
    annotations: {"io.containerd.image.name": $full, "org.opencontainers.image.ref.name": $tag}}]
}' >"$work/index.json"

if [[ -n "$output" ]]; then
  tar --create --file="$output" --directory="$work" oci-layout index.json blobs
  log "wrote OCI archive $output ($full)"
fi
if [[ "$do_import" == 1 ]]; then
  # Every node runs its own containerd: a pod finds its image only in its node's.
  ((${#addresses[@]})) || mapfile -t addresses < <(node_containerd_socks)
  ((${#addresses[@]})) || die "no containerd socket of the local cluster found: run 'make cluster-up' first (or pass --address / --no-import)"
  for address in "${addresses[@]}"; do
    [[ -S "$address" ]] || die "containerd socket $address not found: run 'make cluster-up' first (or pass --address / --no-import)"
    tar --create --directory="$work" oci-layout index.json blobs |
      timeout 600 ctr --address "$address" --namespace k8s.io images import --platform linux/amd64 - >/dev/null
    timeout 30 ctr --address "$address" --namespace k8s.io images ls -q "name==$full" | grep -qx "$full" ||
      die "import of $full did not show up in containerd ($address)"
    name_images_by_id "$address" "$full"
    log "imported $full into $address (sha256:${manifest_digest:0:12}, layer $((layer_size / 1024 / 1024)) MiB)"
  done
fi
echo "$full"
