package main

import (
	"context"
	"fmt"
	"os"
	"time"

	remote "k8s.io/cri-client/pkg"
)

// criRemoveAllPods stops and removes every pod sandbox of a CRI runtime
// (usage: kube cri-remove-all-pods unix:///path/containerd.sock).
//
// cluster-down uses it before stopping containerd: going through CRI makes
// containerd run the CNI DEL for each pod (IP released, veth and portmap
// rules removed, netns unmounted), which killing processes would not do.
// Debian has no crictl, hence this.
func criRemoveAllPods(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: kube cri-remove-all-pods unix:///path/to/containerd.sock")
		return 2
	}
	runtime, err := remote.NewRemoteRuntimeService(args[0], 30*time.Second, nil, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "connect %s: %v\n", args[0], err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pods, err := runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "list pod sandboxes: %v\n", err)
		return 1
	}
	failed := 0
	for _, pod := range pods {
		name := pod.Metadata.Namespace + "/" + pod.Metadata.Name
		if err := runtime.StopPodSandbox(ctx, pod.Id); err != nil {
			fmt.Fprintf(os.Stderr, "stop %s: %v\n", name, err)
			failed++
			continue
		}
		if err := runtime.RemovePodSandbox(ctx, pod.Id); err != nil {
			fmt.Fprintf(os.Stderr, "remove %s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Printf("removed pod sandbox %s\n", name)
	}
	if failed > 0 {
		return 1
	}
	return 0
}
