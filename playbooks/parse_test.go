package playbooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

var errorAtRE = regexp.MustCompile(`^# error-at: (\d+:\d+)\n`)

// TestMalformed rejects every file in testdata/malformed at the position
// its first line names, with a hint, and matches the golden error text.
func TestMalformed(t *testing.T) {
	files, _ := filepath.Glob("testdata/malformed/*.yaml")
	if len(files) < 20 {
		t.Fatalf("only %d malformed playbooks", len(files))
	}
	reg := testRegistry(newWorld())
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := errorAtRE.FindSubmatch(data)
			if m == nil {
				t.Fatal("first line must be '# error-at: LINE:COL'")
			}
			p, err := Parse(f, data)
			if err == nil {
				_, err = Validate(p, reg)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("not an ErrorList: %T %v", err, err)
			}
			want := f + ":" + string(m[1]) + ": "
			found := false
			for _, e := range list {
				found = found || strings.HasPrefix(e.Error(), want)
				if e.Hint() == "" {
					t.Errorf("no hint: %v", e)
				}
			}
			if !found {
				t.Errorf("want an error at %s, got:\n%v", want, err)
			}
			var b strings.Builder
			for _, e := range list {
				b.WriteString(e.Error() + "\n  hint: " + e.Hint() + "\n")
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(b.String()))
		})
	}
}

func TestParseValid(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	reg := testRegistry(newWorld())
	for _, f := range files {
		data, _ := os.ReadFile(f)
		p, err := Parse(f, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c, err := Validate(p, reg)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		golden(t, strings.TrimSuffix(f, ".yaml")+".golden.json", []byte(jsonIndent(map[string]any{"playbook": c.Playbook, "order": c.Order})))
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range seeds {
		data, _ := os.ReadFile(s)
		f.Add(data)
	}
	reg := testRegistry(newWorld())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a positioned ErrorList: %v", err)
			}
			return
		}
		// A parsed playbook must validate or fail cleanly, never panic.
		if _, err := Validate(p, reg); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("validate: %v", err)
		}
	})
}

// TestSchema: the schema names the input types package action declares
// and, per action, its parameters with their declared types. (The
// published docs/playbook.schema.json, from the full registry, is kept by
// a golden test in cmd/eksir.)
func TestSchema(t *testing.T) {
	reg := testRegistry(newWorld())
	b, err := JSONSchema(reg.Specs()...)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			Inputs struct {
				Items struct {
					Properties struct {
						Type struct{ Enum []string }
					}
				}
			}
			Steps struct {
				Items struct {
					Properties struct {
						Action struct{ Enum []string }
					}
					AllOf []struct {
						If struct {
							Properties struct{ Action struct{ Const string } }
						}
						Then struct {
							Properties struct {
								With struct {
									Properties map[string]struct {
										AnyOf []map[string]any
									}
									Required []string
								}
							}
						}
					} `json:"allOf"`
				}
			}
		}
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var inputTypes []string
	for _, it := range action.InputTypes() {
		inputTypes = append(inputTypes, string(it))
	}
	if !slices.Equal(s.Properties.Inputs.Items.Properties.Type.Enum, inputTypes) {
		t.Errorf("input type enum = %v, want %v", s.Properties.Inputs.Items.Properties.Type.Enum, inputTypes)
	}
	if !slices.Equal(s.Properties.Steps.Items.Properties.Action.Enum, reg.Names()) {
		t.Errorf("action enum = %v", s.Properties.Steps.Items.Properties.Action.Enum)
	}
	found := false
	for _, r := range s.Properties.Steps.Items.AllOf {
		if r.If.Properties.Action.Const != "test.label" {
			continue
		}
		found = true
		w := r.Then.Properties.With
		v := w.Properties["value"].AnyOf
		if !slices.Equal(w.Required, []string{"target"}) || len(v) != 2 || v[0]["type"] != "string" || len(v[0]["enum"].([]any)) != 2 {
			t.Errorf("with of test.label: %+v", w)
		}
	}
	if !found {
		t.Errorf("no with schema for test.label: %s", b)
	}
}

// TestTabPosition: a tab in the indentation is reported at its own line and
// column, not at the line where yaml.v3's scanner started the scalar before
// it, including after tabs that YAML allows (inside a block scalar's
// content, after a plain scalar's indentation).
func TestTabPosition(t *testing.T) {
	for _, c := range []struct{ src, at string }{
		{"apiVersion: eksir.io/v1\nkind:\n  a: 1\n\tb: 2\n", "4:1"},
		{"apiVersion: eksir.io/v1\nkind: |\n  x\n  \ty\n \tz\n", "5:2"},
		{"apiVersion: x\n \ty\n\tkind: 1\n", "3:1"},
		{"apiVersion: 1\n\tkind: 2\n", "2:1"},
	} {
		_, err := Parse("t.yaml", []byte(c.src))
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || !strings.HasPrefix(list[0].Error(), "t.yaml:"+c.at+": YAML syntax: found a tab character") {
			t.Errorf("%q: want the tab error at %s, got %v", c.src, c.at, err)
		}
	}
}
