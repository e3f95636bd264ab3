#!/usr/bin/env bash
# Makes the certificates of the streams between the api-server and the node handlers (console,
# VNC, port-forward; ADR 0014), once: a CA of their own, the node handlers' serving certificate
# (DNS name kubevm-node-handler.kubevirt.svc, which the api-server checks whatever pod IP it
# dials) and the api-server's client certificate (CN kubevm-api-server, the only client the node
# handlers serve). Stored in the Secrets kubevirt/kubevm-node-handler-streams-tls and
# kubevirt/kubevm-api-server-streams-tls (tls.crt, tls.key, ca.crt); existing Secrets are kept.
# The CA's key is not kept anywhere: renewing means deleting both Secrets and running this again.
# Until the operator manages these certificates (with rotation), this is how they are made.
#
#   stream-certs.sh              create the Secrets in the cluster (KUBEVM_KUBECTL or kubectl)
#   stream-certs.sh --dir DIR    only write the files: DIR/{ca.crt,ca.key}, DIR/node-handler/,
#                                DIR/api-server/ (for tests; DIR keeps the CA key)
set -euo pipefail
kubectl() { "${KUBEVM_KUBECTL:-kubectl}" "$@"; }
namespace=kubevirt
handler_secret=kubevm-node-handler-streams-tls
api_secret=kubevm-api-server-streams-tls
server_name=kubevm-node-handler.kubevirt.svc
client_name=kubevm-api-server

out=""
if [[ "${1:-}" == "--dir" ]]; then
  out="${2:?--dir needs a directory}"
  mkdir -p "$out"
elif kubectl -n "$namespace" get secret "$handler_secret" "$api_secret" >/dev/null 2>&1; then
  exit 0
fi

work="$(mktemp -d /tmp/kubevm-stream-certs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
ssl() { openssl "$@" 2>/dev/null; }
ssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
ssl req -x509 -new -key "$work/ca.key" -subj "/CN=kubevm-streams-ca" -days 3650 -out "$work/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

# issue NAME CN EXTENSIONS: a key and a certificate signed by the CA, in $work/NAME/.
issue() {
  mkdir -p "$work/$1"
  ssl ecparam -name prime256v1 -genkey -noout -out "$work/$1/tls.key"
  ssl req -new -key "$work/$1/tls.key" -subj "/CN=$2" -out "$work/$1/tls.csr"
  printf '%s\n' "$3" "keyUsage=critical,digitalSignature,keyEncipherment" >"$work/$1/ext"
  ssl x509 -req -in "$work/$1/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 825 \
    -extfile "$work/$1/ext" -out "$work/$1/tls.crt"
  cp "$work/ca.crt" "$work/$1/ca.crt"
  rm -f "$work/$1/tls.csr" "$work/$1/ext"
}
issue node-handler "$server_name" "subjectAltName=DNS:$server_name
extendedKeyUsage=serverAuth"
issue api-server "$client_name" "extendedKeyUsage=clientAuth"

if [[ -n "$out" ]]; then
  cp -r "$work/ca.crt" "$work/ca.key" "$work/node-handler" "$work/api-server" "$out/"
  exit 0
fi
for pair in "$handler_secret:node-handler" "$api_secret:api-server"; do
  secret="${pair%%:*}" dir="$work/${pair#*:}"
  kubectl -n "$namespace" delete secret "$secret" --ignore-not-found >/dev/null
  kubectl -n "$namespace" create secret generic "$secret" --type kubernetes.io/tls \
    --from-file=tls.crt="$dir/tls.crt" --from-file=tls.key="$dir/tls.key" --from-file=ca.crt="$dir/ca.crt" >/dev/null
done
