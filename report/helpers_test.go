package report_test

import (
	"bytes"
	"testing"

	"github.com/eksir/eksir/report"
)

// render renders r as JSON and Markdown.
func render(t *testing.T, r *report.Report) (js, md string) {
	t.Helper()
	var j, m bytes.Buffer
	if err := report.RenderJSON(&j, r); err != nil {
		t.Fatal(err)
	}
	if err := report.RenderMarkdown(&m, r); err != nil {
		t.Fatal(err)
	}
	return j.String(), m.String()
}
