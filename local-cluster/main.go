// Command kube is one multi-call binary holding the upstream Kubernetes
// components and etcd. Linking one binary instead of seven saves most of the
// link time and disk on a 2-core machine (the same idea as the old hyperkube).
//
// The component is chosen by the name it is called by (argv[0], e.g. a
// symlink named kubectl) or by the first argument (kube kubelet --flags...).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	_ "time/tzdata" // CronJob time zones, as in the upstream controller-manager main

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl auth plugins, as upstream
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// cobraMains are the components whose upstream main is "build a cobra
// command, cli.Run it"; the constructors are called lazily so that only the
// chosen component registers its flags.
var cobraMains = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler": func() *cobra.Command {
		return scheduler.NewSchedulerCommand()
	},
	"kubelet":    func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy": proxy.NewProxyCommand,
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if !isComponent(name) && len(os.Args) > 1 {
		name = os.Args[1]
		args = os.Args[1:]
	}
	// cobra and etcd read os.Args themselves: make it look like the
	// component was called directly.
	os.Args = args

	switch name {
	case "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		os.Exit(0)
	case "etcd":
		etcdmain.Main(os.Args)
		os.Exit(0)
	case "cri-remove-all-pods":
		os.Exit(criRemoveAllPods(os.Args[1:]))
	}
	if newCommand, ok := cobraMains[name]; ok {
		os.Exit(cli.Run(newCommand()))
	}
	fmt.Fprintf(os.Stderr, "usage: %s COMPONENT [flags]\n  or call it through a symlink named COMPONENT\ncomponents: %v\n",
		filepath.Base(os.Args[0]), components())
	os.Exit(2)
}

func components() []string {
	names := []string{"kubectl", "etcd", "cri-remove-all-pods"}
	for n := range cobraMains {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func isComponent(name string) bool {
	for _, n := range components() {
		if n == name {
			return true
		}
	}
	return false
}
