package main

import (
	"fmt"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
)

// leaves returns every command without subcommands, by command path.
func leaves(prefix string, cmds []*cli.Command, into map[string]*cli.Command) map[string]*cli.Command {
	for _, c := range cmds {
		path := prefix + c.Name
		if len(c.Subcommands) == 0 {
			into[path] = c
			continue
		}
		leaves(path+" ", c.Subcommands, into)
	}
	return into
}

// TestEveryCommandHasAction: a declared command without an action would
// do nothing.
func TestEveryCommandHasAction(t *testing.T) {
	all := leaves("", newApp().Commands, map[string]*cli.Command{})
	for path, c := range all {
		if c.Action == nil {
			t.Errorf("command %q has no action", path)
		}
	}
	if len(all) < 20 {
		t.Errorf("only %d commands declared", len(all))
	}
}

// TestBadInputSentinels: the packages' invalid-input errors exit 2.
func TestBadInputSentinels(t *testing.T) {
	for _, err := range []error{evidence.ErrInvalidInput, playbooks.ErrInvalid} {
		if code := evidencecli.ExitCode(fmt.Errorf("wrapped: %w", err), sentinels); code != evidencecli.ExitBadInput {
			t.Errorf("ExitCode(%v) = %d, want %d", err, code, evidencecli.ExitBadInput)
		}
	}
}
