package playbooks

import (
	"context"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

// TestReleaseAfterFailure: a containment that failed after changing
// something, one that failed before changing anything, and one in doubt
// after a crash are each released from their intent, without an undo
// record, and report every object; steps never started are left alone.
func TestReleaseAfterFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, w *world, j Journal, reg *action.Registry)
		status  string // label's status before the release
		outcome string
	}{
		{name: "failed-half-way", status: StatusFailed, outcome: action.OutcomeRestored,
			prepare: func(t *testing.T, w *world, j Journal, reg *action.Registry) {
				w.failAfter["label"] = true
				mustRun(t, reg, j)
			}},
		{name: "failed-before-any-change", status: StatusFailed, outcome: action.OutcomeClean,
			prepare: func(t *testing.T, w *world, j Journal, reg *action.Registry) {
				w.fail["label"] = true
				mustRun(t, reg, j)
			}},
		{name: "in-doubt", status: StatusInDoubt, outcome: action.OutcomeRestored,
			prepare: func(t *testing.T, w *world, j Journal, reg *action.Registry) {
				// The run crashed inside label: its change is made, its
				// result never written.
				c := loadValid(t, reg)
				if _, err := j.Record(RecRunStart, RunStart{Playbook: "contain", File: "testdata/valid/contain.yaml", Source: string(c.source), Inputs: podIn.strings()}, nil); err != nil {
					t.Fatal(err)
				}
				if _, err := j.Record(RecIntent, Intent{Step: "label", Action: "test.label", Params: []byte(`{"target":"shop/web-1","value":"quarantine"}`)}, nil); err != nil {
					t.Fatal(err)
				}
				call := action.Call{Step: "label", Params: map[string]any{"target": "shop/web-1", "value": "quarantine"}}
				if _, err := (labelAct{w: w, name: "test.label"}).Run(t.Context(), nil, call); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			reg := testRegistry(w)
			cs, _ := testCase(t)
			j := CaseJournal(cs)
			tc.prepare(t, w, j, reg)
			st, err := Status(j, reg)
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(st)["label"]; got != tc.status {
				t.Fatalf("label before release: %s, want %s", got, tc.status)
			}
			// Asked first: the prompt says what the undo works from.
			var asked []action.Plan
			sum, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Approver: recordApprover{&asked, false}})
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(sum); got["label"] != StatusNeedsApproval || len(asked) != 1 ||
				!strings.Contains(asked[0].Changes[0].Detail, "the step is "+tc.status) {
				t.Fatalf("release refused: %v, asked %+v", got, asked)
			}
			sum, err = Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Steps) != 1 || sum.Steps[0].ID != "label" {
				t.Fatalf("released steps: %+v (only label was started)", sum.Steps)
			}
			line := sum.Steps[0]
			if line.Status != StatusReleased || len(line.Restored) != 1 || line.Restored[0] != (action.Restored{Object: "shop/web-1", Outcome: tc.outcome}) {
				t.Fatalf("release: %+v", line)
			}
			if w.labels["shop/web-1"] != "" || len(w.marks) != 0 {
				t.Fatalf("after release: labels %v, marks %v", w.labels, w.marks)
			}
			// Status shows the release and its objects; a second release
			// undoes nothing again.
			st, err = Status(j, reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.Steps {
				if s.ID == "label" && (s.Status != StatusReleased || len(s.Restored) != 1) {
					t.Errorf("status after release: %+v", s)
				}
			}
			if _, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
				t.Fatal(err)
			}
			if n := w.count("undo:test.label/shop/web-1") + w.count("clean:test.label/shop/web-1"); n != 1 {
				t.Errorf("undo ran %d times", n)
			}
		})
	}
}

func mustRun(t *testing.T, reg *action.Registry, j Journal) *Summary {
	t.Helper()
	sum, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Yes: true})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// recordApprover answers ok and keeps the plans it was shown.
type recordApprover struct {
	plans *[]action.Plan
	ok    bool
}

func (a recordApprover) Approve(_ context.Context, _, _ string, p action.Plan) (bool, error) {
	*a.plans = append(*a.plans, p)
	return a.ok, nil
}

// TestApprovalShowsWarnings: the approver is shown the step's plan with
// every warning, the action's and the engine's (a capture overridden).
func TestApprovalShowsWarnings(t *testing.T) {
	w := newWorld()
	w.planWarnings = []string{"NOT ENFORCED: no policy engine on the suspect's node"}
	w.missing["volatile"] = []string{"data/volatile/ps.txt: exec refused"}
	reg := testRegistry(w)
	cs, _ := testCase(t)
	var asked []action.Plan
	_, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{Responder: "alice"}, Journal: CaseJournal(cs),
		Approver: recordApprover{&asked, true}, ContainWithoutCapture: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 {
		t.Fatalf("asked %d times", len(asked))
	}
	ws := strings.Join(asked[0].Warnings, "\n")
	if !strings.Contains(ws, "NOT ENFORCED") || !strings.Contains(ws, "without complete capture, decided by alice") {
		t.Errorf("warnings at the prompt:\n%s", ws)
	}
}
