package main

import (
	"testing"

	"github.com/eksir/eksir/report"
)

// TestStepKindMatchesRegistry: the journal names a step's action, not its
// kind, so the drill score (report.StepKind) tells collection from
// containment by the action's name. Every action eksir ships must agree.
func TestStepKindMatchesRegistry(t *testing.T) {
	for _, s := range newRegistry().Specs() {
		if got := report.StepKind(s.Name); got != string(s.Kind) {
			t.Errorf("report.StepKind(%q) = %s, but the action is of kind %s: name it collect.* for a collection, isolate.* or revoke.* for a containment", s.Name, got, s.Kind)
		}
	}
}
