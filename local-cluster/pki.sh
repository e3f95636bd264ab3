#!/usr/bin/env bash
# Generates (once) the cluster PKI and kubeconfigs under $KUBEVM_STATE with openssl.
# Certificates whose inputs change (the node IP) are regenerated; the rest are kept.
#   pki.sh NODE_IP [2]   2: also node 2's kubelet certificates and kubeconfigs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_IP="${1:?usage: pki.sh NODE_IP [2]}"
NODES="${2:-1}"
DAYS=3650
mkdir -p "$PKI_DIR" "$KUBECONFIG_DIR"
chmod 700 "$PKI_DIR" "$KUBECONFIG_DIR"
cd "$PKI_DIR"

new_key() { [[ -f "$1.key" ]] || openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

new_ca() { # name CN
  [[ -f "$1.crt" ]] && return 0
  new_key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days "$DAYS" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
}

# new_cert NAME CA SUBJECT USAGE [SANS]: USAGE is serverAuth, clientAuth or both.
new_cert() {
  local name="$1" ca="$2" subj="$3" usage="$4" sans="${5:-}"
  # Regenerate when the SANs changed (e.g. a new node IP), keep otherwise.
  if [[ -f "$name.crt" && "$(cat "$name.sans" 2>/dev/null)" == "$sans" ]]; then return 0; fi
  new_key "$name"
  local ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -days "$DAYS" -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$ext" "$name.csr"
  printf '%s' "$sans" >"$name.sans"
}

b64() { base64 -w0 <"$1"; }

# kubeconfig NAME CERT [NAMESPACE [SERVER]]: a kubeconfig for a client certificate, server on
# the loopback unless SERVER is given.
kubeconfig() {
  local name="$1" cert="$2" server="${4:-https://127.0.0.1:$APISERVER_PORT}"
  cat >"$KUBECONFIG_DIR/$name.kubeconfig.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubevm-local
  cluster:
    server: $server
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $name
  user:
    client-certificate-data: $(b64 "$cert.crt")
    client-key-data: $(b64 "$cert.key")
contexts:
- name: $name@kubevm-local
  context:
    cluster: kubevm-local
    user: $name
    namespace: ${3:-default}
current-context: $name@kubevm-local
KC
  chmod 600 "$KUBECONFIG_DIR/$name.kubeconfig.tmp"
  mv "$KUBECONFIG_DIR/$name.kubeconfig.tmp" "$KUBECONFIG_DIR/$name.kubeconfig"
}

new_ca ca kubevm-local-ca
new_ca front-proxy-ca kubevm-local-front-proxy-ca

new_cert apiserver ca "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The apiserver's client cert towards kubelets (logs, exec, port-forward).
new_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
# The aggregator's client cert towards APIService backends.
new_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
# The kubelet's serving cert, signed by the cluster CA so the apiserver can verify it.
new_cert kubelet-serving ca "/CN=$NODE_NAME" serverAuth "IP:127.0.0.1,IP:$NODE_IP,DNS:$NODE_NAME,DNS:localhost"

# Service-account token signing key pair.
[[ -f sa.key ]] || openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
[[ -f sa.pub ]] || openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

# Client identities: component ones, then the users RBAC tests use.
new_cert admin ca "/O=system:masters/CN=kubevm-admin" clientAuth
new_cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
new_cert scheduler ca "/CN=system:kube-scheduler" clientAuth
new_cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
new_cert kubelet ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
new_cert ns-admin ca "/CN=kubevm-ns-admin" clientAuth
new_cert ns-editor ca "/CN=kubevm-ns-editor" clientAuth
new_cert viewer ca "/CN=kubevm-viewer" clientAuth

kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kube-proxy kube-proxy
kubeconfig kubelet kubelet
kubeconfig ns-admin ns-admin "$TEST_NAMESPACE"
kubeconfig ns-editor ns-editor "$TEST_NAMESPACE"
kubeconfig viewer viewer "$TEST_NAMESPACE"

# Node 2 lives in its own network namespace: its loopback is not the apiserver's, so its
# kubeconfigs name the node IP (in the apiserver's certificate).
if [[ "$NODES" == 2 ]]; then
  new_cert kubelet-serving-2 ca "/CN=$NODE2_NAME" serverAuth "IP:127.0.0.1,IP:$NODE2_IP,DNS:$NODE2_NAME,DNS:localhost"
  new_cert kubelet-2 ca "/O=system:nodes/CN=system:node:$NODE2_NAME" clientAuth
  kubeconfig kubelet-2 kubelet-2 default "https://$NODE_IP:$APISERVER_PORT"
  kubeconfig kube-proxy-2 kube-proxy default "https://$NODE_IP:$APISERVER_PORT"
fi
chmod 600 ./*.key
