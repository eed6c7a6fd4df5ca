package ui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/playbooks"
)

func TestApprover(t *testing.T) {
	plan := action.Plan{Changes: []action.Change{{Verb: "create", Object: "NetworkPolicy shop/q", Detail: "deny all"}}}
	for in, want := range map[string]bool{"yes\n": true, " yes \n": true, "y\n": false, "no\n": false, "": false} {
		var out bytes.Buffer
		ok, err := NewApprover(strings.NewReader(in), &out).Approve(t.Context(), "isolate", "isolate.network", plan)
		if err != nil || ok != want {
			t.Errorf("answer %q: got %v %v, want %v", in, ok, err, want)
		}
		if !strings.Contains(out.String(), "+ create NetworkPolicy shop/q deny all") || !strings.Contains(out.String(), "approve step isolate? type yes: ") {
			t.Errorf("prompt:\n%s", out.String())
		}
	}
}

// TestApproverShowsWarnings: every warning of the plan is printed before
// the question, so a responder approves knowing what is not enforced.
func TestApproverShowsWarnings(t *testing.T) {
	plan := action.Plan{
		Changes:  []action.Change{{Verb: "create", Object: "networkpolicy shop/q"}},
		Warnings: []string{"NOT ENFORCED: the suspect runs with hostNetwork", "a CiliumNetworkPolicy allows the suspect's egress"},
	}
	var out bytes.Buffer
	if _, err := NewApprover(strings.NewReader("no\n"), &out).Approve(t.Context(), "isolate", "isolate.pod-network", plan); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	ask := strings.Index(got, "approve step isolate?")
	for _, w := range plan.Warnings {
		i := strings.Index(got, "! WARNING: "+w)
		if i < 0 || i > ask {
			t.Errorf("warning %q not shown before the question:\n%s", w, got)
		}
	}
}

// TestApproverInterrupted: Ctrl-C while the prompt waits returns at once.
func TestApproverInterrupted(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ok, err := NewApprover(r, io.Discard).Approve(ctx, "isolate", "isolate.network", action.Plan{})
	if ok || err != context.DeadlineExceeded {
		t.Errorf("got %v %v", ok, err)
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out)
	p.Event(playbooks.Event{Step: "objects", Action: "collect.objects", State: "running", Total: 2})
	p.Event(playbooks.Event{Step: "objects", Action: "collect.objects", State: playbooks.StatusSucceeded, Duration: 1500 * time.Millisecond, Done: 1, Total: 2, Warnings: []string{"no engine"}})
	p.Event(playbooks.Event{Step: "isolate", Action: "isolate.network", State: playbooks.StatusFailed, Err: "denied", Done: 2, Total: 2})
	p.Close()
	got := out.String()
	for _, want := range []string{"… objects", "✓ objects", "1.5s", "! WARNING: no engine", "✗ isolate", "denied", "2/2"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r") {
		t.Errorf("Close did not return to the line start: %q", got)
	}
}

func TestActionProgress(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out)
	p.ActionProgress("snap", "3 snapshot(s)", 10, 100) // before the bar: nothing
	p.Event(playbooks.Event{Step: "snap", Action: "collect.ebs-snapshot", State: "running", Total: 1})
	p.ActionProgress("snap", "3 snapshot(s)", 45, 100)
	p.Close()
	if got := out.String(); !strings.Contains(got, "snap: 3 snapshot(s) 45%") || strings.Contains(got, "10%") {
		t.Errorf("output = %q, want the step's 45%% and not the 10%% reported before the bar", got)
	}
}
