package report_test

import (
	"bytes"
	"path/filepath"
	"testing"

	golden "github.com/eksir/eksir/internal/golden"
	"github.com/eksir/eksir/report"
)

// fixtureReport builds the report of the committed lab-run case.
func fixtureReport(t *testing.T) *report.Report {
	t.Helper()
	r, err := report.FromCase(t.Context(), filepath.Join(fixtureCaseRoot, fixtureIncident), report.Options{Keys: fixtureKeys(), Now: generatedAt, Tool: "eksir test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGolden renders the committed fixture as JSON, Markdown and HTML and
// compares with the goldens (-update refreshes them).
func TestGolden(t *testing.T) {
	js, md := render(t, fixtureReport(t))
	golden.Check(t, filepath.Join("testdata", "report.golden.json"), []byte(js))
	golden.Check(t, filepath.Join("testdata", "report.golden.md"), []byte(md))
	var html bytes.Buffer
	if err := report.RenderHTML(&html, fixtureReport(t)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "report.golden.html"), html.Bytes())
}
