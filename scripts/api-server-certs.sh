#!/usr/bin/env bash
# Makes the api-server's serving certificate, once: a CA of its own and a certificate for the
# Service kubevm-api-server.kubevirt.svc signed by it, stored in the Secret
# kubevirt/kubevm-api-server-tls (tls.crt, tls.key, ca.crt). An existing Secret is kept, so a
# re-install does not change the CA the APIService trusts. Prints the CA (PEM) on stdout.
# Until the operator manages certificates (with rotation), this is how they are made.
set -euo pipefail
kubectl() { "${KUBEVM_KUBECTL:-kubectl}" "$@"; }
namespace=kubevirt
secret=kubevm-api-server-tls
service=kubevm-api-server

if ca="$(kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.ca\.crt}' 2>/dev/null)" && [[ -n "$ca" ]]; then
  echo "$ca" | base64 -d
  exit 0
fi

work="$(mktemp -d /tmp/kubevm-certs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
ssl() { openssl "$@" 2>/dev/null; }
ssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
ssl req -x509 -new -key "$work/ca.key" -subj "/CN=kubevm-api-server-ca" -days 3650 -out "$work/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ssl ecparam -name prime256v1 -genkey -noout -out "$work/tls.key"
ssl req -new -key "$work/tls.key" -subj "/CN=$service.$namespace.svc" -out "$work/tls.csr"
cat >"$work/ext" <<EXT
subjectAltName=DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local,DNS:$service.$namespace,DNS:$service
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
EXT
ssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 825 \
  -extfile "$work/ext" -out "$work/tls.crt"
kubectl -n "$namespace" create secret generic "$secret" --type kubernetes.io/tls \
  --from-file=tls.crt="$work/tls.crt" --from-file=tls.key="$work/tls.key" --from-file=ca.crt="$work/ca.crt" >/dev/null
cat "$work/ca.crt"
