// Command virtctl is KubeVirt's own virtctl, built unchanged from the kubevirt.io/kubevirt module
// (v1.8.2) for kubevm's tests: a real client of the subresource API. This wrapper exists only to
// carry kubevirt's replace lines (go.mod); the main is upstream's cmd/virtctl.
package main

import (
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"kubevirt.io/kubevirt/pkg/virtctl"
)

func main() {
	os.Exit(virtctl.Execute())
}
