package report

import (
	"io"
	"testing"
)

// countingWriter counts what a renderer writes without keeping it, so the
// benchmark measures rendering, not buffer growth.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkReport1000Pods renders the report of the synthetic 1,000-pod,
// 100-node case (6,500 items, 4,300 steps, 15,102 custody records) in
// each format. The target is under 2 s per render and under 5 MB
// of HTML; the size is also asserted by TestRenderHTMLThousandPods.
func BenchmarkReport1000Pods(b *testing.B) {
	r := syntheticReport(1000, 100)
	for _, f := range []struct {
		name   string
		render func(io.Writer, *Report) error
	}{{"html", RenderHTML}, {"json", RenderJSON}, {"md", RenderMarkdown}} {
		b.Run(f.name, func(b *testing.B) {
			var w countingWriter
			b.ReportAllocs()
			for b.Loop() {
				w.n = 0
				if err := f.render(&w, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n), f.name+"-bytes")
		})
	}
}
