package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// BenchmarkLabUp measures `lab up` to ready with cached binaries (Down is
// excluded from the timing).
func BenchmarkLabUp(b *testing.B) {
	if msg := labtest.Unavailable(); msg != "" {
		labtest.SkipOrFail(b, msg)
	}
	dir := b.TempDir()
	var total time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		if _, err := lab.Up(b.Context(), lab.Options{Dir: dir}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		n++
		b.StopTimer()
		if _, err := lab.Down(context.WithoutCancel(b.Context()), dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(n), "s-to-ready")
}

// BenchmarkLabSeed100x10 measures seeding 100 nodes with 10 pods each
// (AWS and Kubernetes sides) into the shared lab, a fresh account and
// prefix per iteration.
func BenchmarkLabSeed100x10(b *testing.B) {
	var total time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		env := labtest.Start(b)
		b.StartTimer()
		start := time.Now()
		if _, err := lab.Seed(b.Context(), env.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 100, PodsPerNode: 10,
			Prefix: env.Prefix, Account: env.Account}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		n++
	}
	b.ReportMetric(total.Seconds()/float64(n), "s-per-seed")
}
