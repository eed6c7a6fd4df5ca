//go:build tools

// Package tools pins two of the lab's binaries (kube-apiserver, etcd) so that
// `make lab-tools` builds them at exactly these versions. The main module never
// imports this one. kwok has a module of its own in ./kwok (see there why).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
