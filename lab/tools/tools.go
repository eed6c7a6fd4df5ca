//go:build tools

// Package tools pins the lab's binaries (kube-apiserver, etcd, kwok) so that
// `make lab-tools` builds them at exactly these versions. The main module never
// imports this one.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
