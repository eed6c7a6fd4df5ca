package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"

	golden "github.com/eksir/eksir/internal/golden"
	"github.com/eksir/eksir/report"
)

// schemaPath is the published schema of the report's JSON form.
var schemaPath = filepath.Join("..", "docs", "report.schema.json")

// generateSchema reflects the schema from the model's Go types, their
// JSON tags (a member without omitempty is required; lists are arrays,
// never null) and their doc comments (descriptions).
func generateSchema(t *testing.T) []byte {
	t.Helper()
	r := &invopop.Reflector{ExpandedStruct: true}
	if err := r.AddGoComments("github.com/eksir/eksir/report", "."); err != nil {
		t.Fatal(err)
	}
	s := r.Reflect(&report.Report{})
	s.ID = "https://eksir.dev/report/v1/report.schema.json"
	s.Title = "eksir incident report (" + report.APIVersion + ")"
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestReportSchema checks that docs/report.schema.json is the schema of
// the current model (-update regenerates it).
func TestReportSchema(t *testing.T) {
	golden.Check(t, schemaPath, generateSchema(t))
}

// TestGoldensMatchSchema validates every golden JSON report against the
// committed schema with an independent validator.
func TestGoldensMatchSchema(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	sch := golden.Schema(t, "report.schema.json", raw)
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden JSON reports: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s does not match the schema: %v", f, err)
		}
	}
	// The schema must be able to fail: a null list is refused.
	bad := map[string]any{}
	b, _ := os.ReadFile(files[0])
	_ = json.Unmarshal(b, &bad)
	bad["evidence"] = nil
	if err := sch.Validate(bad); err == nil {
		t.Error("the schema accepts a null list")
	}
}
