//go:build !lean

package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/actions.md from the registry")

const actionsDoc = "../../docs/actions.md"

// TestActionsDoc keeps docs/actions.md equal to what the registry's Specs
// render; go test ./cmd/eksir -run TestActionsDoc -update rewrites it.
func TestActionsDoc(t *testing.T) {
	specs := newRegistry().Specs()
	got := action.Markdown(specs)
	for _, s := range specs {
		if !bytes.Contains(got, []byte("### `"+s.Name+"`")) {
			t.Errorf("docs lack a section for %s", s.Name)
		}
		if strings.TrimSpace(s.Notes) == "" {
			t.Errorf("%s has no Notes: say what it changes or writes", s.Name)
		}
	}
	if *updateDocs {
		if err := os.WriteFile(actionsDoc, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(actionsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the Specs; run go test ./cmd/eksir -run TestActionsDoc -update and review the diff", actionsDoc)
	}
}
