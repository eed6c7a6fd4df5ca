// Command eksir is the incident-response and forensics toolkit for Amazon EKS.
//
// This package is wiring only: flags, clients, output and exit codes. The work
// is done by the packages it calls (evidence, lab, playbooks, isolate, collect).
package main

import (
	"fmt"
	"os"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/lab"
)

// Set by `make build` through -ldflags.
var (
	version = "dev"
	commit  = "none"
)

func main() {
	// A lab's suspect process is a copy of this binary (lab.StartPodProcess).
	lab.RunPodProcessIfAsked()
	os.Exit(evidencecli.Main(newApp(), sentinels))
}

// toolName is what evidence records as the acquiring tool.
func toolName() string { return fmt.Sprintf("eksir %s", version) }
