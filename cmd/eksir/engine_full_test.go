//go:build !lean

package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/lab"
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

// TestEveryCommandHasAction: a command declared with engine(path) whose path
// has no entry in engineActions would do nothing in the full build.
func TestEveryCommandHasAction(t *testing.T) {
	all := leaves("", newApp().Commands, map[string]*cli.Command{})
	for path, c := range all {
		if c.Action == nil {
			t.Errorf("command %q has no action", path)
		}
	}
	for path := range engineActions {
		if all[path] == nil {
			t.Errorf("engineActions has %q, which no command declares", path)
		}
	}
}

// TestLabScenariosMatch keeps the front's spelled-out scenario list (used in
// lab seed's help) equal to the lab's.
func TestLabScenariosMatch(t *testing.T) {
	if got := lab.ScenarioNames(); !slices.Equal(labScenarios, got) {
		t.Errorf("labScenarios = %q, lab.ScenarioNames() = %q", labScenarios, got)
	}
}

// TestBadInputSentinels: the full build maps the playbook engine's invalid
// input to exit 2 (the lean front does not link it).
func TestBadInputSentinels(t *testing.T) {
	for _, err := range engineBadInput {
		if code := exitCode(err); code != exitBadInput {
			t.Errorf("exitCode(%v) = %d, want %d", err, code, exitBadInput)
		}
	}
	if len(engineBadInput) == 0 {
		t.Error("the full build lists no engine sentinels")
	}
}
