// Command eksir is the incident-response and forensics toolkit for Amazon EKS.
//
// This package is wiring only: flags, clients, output and exit codes. The work
// is done by the packages it calls (evidence, lab, playbooks, isolate, collect).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Set by `make build` through -ldflags.
var (
	version = "dev"
	commit  = "none"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp()
	err := app.RunContext(ctx, interleaveFlags(app, os.Args))
	stop()
	os.Exit(reportError(os.Stderr, err))
}

// toolName is what evidence records as the acquiring tool.
func toolName() string { return fmt.Sprintf("eksir %s", version) }
