// Command eksir is the incident-response and forensics toolkit for Amazon EKS.
//
// This package is wiring only: flags, clients, output and exit codes. The work
// is done by the packages it calls (evidence, lab, playbooks, isolate, collect).
//
// It builds two ways. The default build is the complete CLI. With -tags lean
// it is the evidence front (bin/eksir): the evidence commands run in it, and
// every other command, declared identically in engine_cmds.go, execs the
// full build installed as eksir-engine (engine_lean.go). The front links
// only package evidence and urfave/cli, so sealing stays small in memory.
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
