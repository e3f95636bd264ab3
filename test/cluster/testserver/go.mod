module kubevm.local/cluster-testserver

go 1.24
