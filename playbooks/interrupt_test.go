package playbooks

import (
	"context"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

// TestInterruptTwice: with Options.Stop, the first interrupt lets the
// running step finish and starts no other; the second cancels the running
// step, which is journaled failed, and resume completes the run.
func TestInterruptTwice(t *testing.T) {
	for _, twice := range []bool{false, true} {
		name := map[bool]string{false: "once", true: "twice"}[twice]
		t.Run(name, func(t *testing.T) {
			w := newWorld()
			w.block = make(chan struct{})
			reg := testRegistry(w)
			cs, _ := testCase(t)
			j := CaseJournal(cs)
			stop, first := context.WithCancel(t.Context())
			hard, second := context.WithCancel(t.Context())
			defer second()
			obs := observerFunc(func(e Event) {
				if e.State == "running" && e.Step == "volatile" {
					first()
					if twice {
						second()
					} else {
						close(w.block)
					}
				}
			})
			sum, err := Run(hard, loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Yes: true, Parallel: 1, Observer: obs, Stop: stop})
			if err != context.Canceled || !sum.Interrupted {
				t.Fatalf("err = %v, interrupted = %v", err, sum.Interrupted)
			}
			got := statuses(sum)
			want := StatusSucceeded
			if twice {
				want = StatusFailed
			}
			if got["volatile"] != want || got["objects"] != StatusNotRun || got["label"] != StatusNotRun || got["revoke"] != StatusNotRun {
				t.Fatalf("after the interrupt: %v", got)
			}
			if twice && !strings.Contains(sum.Steps[0].Error, "second interrupt") {
				t.Errorf("cancelled step's error: %q", sum.Steps[0].Error)
			}
			// The journal says the same, and resume completes the run.
			st, err := Status(j, reg)
			if err != nil {
				t.Fatal(err)
			}
			if s := statuses(st); s["volatile"] != want || s["label"] != StatusNotRun {
				t.Fatalf("journal after the interrupt: %v", s)
			}
			w.block = nil
			sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
			if err != nil || sum.Partial() {
				t.Fatalf("resume: %v %v", err, statuses(sum))
			}
			// Once: resume keeps the finished capture. Twice: the cancelled
			// attempt never reached its side effect. Either way, one.
			if n := w.count("test.volatile/shop/web-1"); n != 1 {
				t.Errorf("volatile captured %d times, want 1", n)
			}
			if w.labels["shop/web-1"] != "quarantine" {
				t.Errorf("resume did not contain: %v", w.labels)
			}
		})
	}
}
