package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/eksir/eksir/report"
)

// FuzzFromCase feeds arbitrary bytes as a case's custody log (the
// engine's journal a report is built from, which a hostile or damaged case
// can hold) to FromCase and every renderer: no panic, lists never nil, and
// a log that does not verify is never reported verified.
func FuzzFromCase(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(fixtureCaseRoot, fixtureIncident, "metadata", "custody.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(bytes.ReplaceAll(seed, []byte(`"step.result"`), []byte(`"step.intent"`)))
	f.Add([]byte(`{"seq":1,"action":"playbook.run","details":{"targets":[{}],"inputs":null}}` + "\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		dir := filepath.Join(t.TempDir(), "INC-FUZZ")
		if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "metadata", "custody.jsonl"), log, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, keys := range []bool{false, true} {
			o := report.Options{Now: generatedAt, Tool: "eksir fuzz"}
			if keys {
				o.Keys = fixtureKeys()
			}
			r, err := report.FromCase(t.Context(), dir, o)
			if err != nil {
				continue // refused with an error: fine, as long as nothing panicked
			}
			if r.Evidence == nil || r.Timeline == nil || r.Custody == nil || r.Containment == nil {
				t.Fatal("a nil list in the model")
			}
			for _, c := range r.Custody {
				if !c.OK && r.Integrity.Status != report.IntegrityTampered {
					t.Fatalf("record %d failed its check (%s) but the report says %s", c.Seq, c.Problem, r.Integrity.Status)
				}
			}
			var b bytes.Buffer
			for _, render := range []func(*bytes.Buffer, *report.Report) error{
				func(w *bytes.Buffer, r *report.Report) error { return report.RenderJSON(w, r) },
				func(w *bytes.Buffer, r *report.Report) error { return report.RenderMarkdown(w, r) },
				func(w *bytes.Buffer, r *report.Report) error { return report.RenderHTML(w, r) },
			} {
				b.Reset()
				if err := render(&b, r); err != nil {
					t.Fatalf("render: %v", err)
				}
			}
		}
	})
}
