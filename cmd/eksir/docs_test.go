package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/golden"
	"github.com/eksir/eksir/playbooks"
)

const (
	actionsDoc     = "../../docs/actions.md"
	playbookSchema = "../../docs/playbook.schema.json"
)

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
	golden.Check(t, actionsDoc, got)
}

// TestPlaybookSchema keeps docs/playbook.schema.json equal to the schema
// of the playbook types with every registered action's parameters.
func TestPlaybookSchema(t *testing.T) {
	b, err := playbooks.JSONSchema(newRegistry().Specs()...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, playbookSchema, b)
}

// TestBuiltinsMatchSchema checks every built-in playbook against the
// published schema with an independent JSON Schema validator, so the
// schema a playbook author's editor uses accepts what eksir accepts.
func TestBuiltinsMatchSchema(t *testing.T) {
	raw, err := playbooks.JSONSchema(newRegistry().Specs()...)
	if err != nil {
		t.Fatal(err)
	}
	sch := golden.Schema(t, "playbook.schema.json", raw)
	for _, name := range playbooks.Builtins() {
		src, _ := playbooks.Builtin(name)
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("built-in %s fails the schema: %v", name, err)
		}
	}
	// And the schema is not vacuous: a wrong parameter type and an
	// unknown action are refused.
	for _, bad := range []string{
		`{"apiVersion":"eksir.io/v1","kind":"Playbook","metadata":{"name":"x"},"steps":[{"id":"a","action":"isolate.label","with":{"reason":7}}]}`,
		`{"apiVersion":"eksir.io/v1","kind":"Playbook","metadata":{"name":"x"},"steps":[{"id":"a","action":"no.such"}]}`,
		`{"apiVersion":"eksir.io/v1","kind":"Playbook","metadata":{"name":"x"},"inputs":[{"name":"p","type":"float"}],"steps":[]}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err := sch.Validate(v); err == nil {
			t.Errorf("schema accepted %s", bad)
		}
	}
}
