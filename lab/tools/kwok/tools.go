//go:build tools

// Package tools pins kwok for `make lab-tools`. kwok v0.8.0 needs the
// k8s.io/* v0.36 libraries while kube-apiserver v1.34.4 needs them replaced
// at v0.34.4, so one build list cannot hold both: kwok has this module of
// its own (the same build list as `go install sigs.k8s.io/kwok/cmd/kwok@v0.8.0`).
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
