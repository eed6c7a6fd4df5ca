package playbooks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

// TestAddTargets: a second run of the same playbook into the case adds
// targets to its run. The first pod's steps are not repeated, the new
// pods' steps run, status lists all of them, release undoes all in
// reverse order, and another playbook, changed inputs or a target already
// in the run are refused.
func TestAddTargets(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	c := loadValid(t, reg)
	o := Options{Env: &action.Env{}, Journal: j, Yes: true}
	if _, err := Run(t.Context(), c, podIn, o); err != nil {
		t.Fatal(err)
	}

	before := len(j.Records())
	other := mustCheck(t, reg, strings.Replace(string(c.source), "name: contain", "name: contain2", 1))
	if _, err := Run(t.Context(), other, Inputs{"pod": "shop/web-2", "window": mustDur("10m")}, o); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "contain2") || !strings.Contains(err.Error(), "playbook contain ") {
		t.Fatalf("another playbook: %v", err)
	}
	if _, err := Run(t.Context(), c, Inputs{"pod": "shop/web-2", "window": mustDur("5m")}, o); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "window") {
		t.Fatalf("changed input: %v", err)
	}
	drill := o
	drill.Drill = true
	if _, err := Run(t.Context(), c, Inputs{"pod": "shop/web-2", "window": mustDur("10m")}, drill); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a drill adding targets: %v", err)
	}
	if _, err := Run(t.Context(), c, podIn, o); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "already holds pod shop/web-1") {
		t.Fatalf("same target again: %v", err)
	}

	if n := len(j.Records()); n != before {
		t.Fatalf("refused runs journaled %d records", n-before)
	}

	added := []Inputs{{"pod": "shop/web-2", "window": mustDur("10m")}, {"pod": "shop/web-3", "window": mustDur("10m")}}
	sum, err := Run(t.Context(), c.ForTargets("pod", added), Inputs{"pod": "shop/web-2,shop/web-3", "window": mustDur("10m")}, o)
	if err != nil || sum.Partial() {
		t.Fatalf("add: %v %v", err, statuses(sum))
	}
	got := statuses(sum)
	for _, id := range []string{"volatile", "label", "revoke", "volatile@shop/web-2", "label@shop/web-2", "revoke@shop/web-3"} {
		if got[id] != StatusSucceeded {
			t.Errorf("step %s: %s (all %v)", id, got[id], got)
		}
	}
	if len(sum.Steps) != 12 {
		t.Errorf("summary has %d steps, want 12", len(sum.Steps))
	}
	if sum.Outputs["contained"] != true || sum.Outputs["contained@shop/web-3"] != true {
		t.Errorf("outputs: %v", sum.Outputs)
	}
	for _, p := range []string{"shop/web-1", "shop/web-2", "shop/web-3"} {
		if n := w.count("test.volatile/" + p); n != 1 {
			t.Errorf("volatile capture of %s ran %d times", p, n)
		}
		if n := w.count("test.label/" + p); n != 1 || w.labels[p] != "quarantine" {
			t.Errorf("label of %s: %d side effects, label %q", p, n, w.labels[p])
		}
	}
	if _, err := Run(t.Context(), c, Inputs{"pod": "shop/web-3", "window": mustDur("10m")}, o); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an added target again: %v", err)
	}

	// Resume and status rebuild the same union from the journal alone.
	sum, err = Resume(t.Context(), reg, o)
	if err != nil || len(sum.Steps) != 12 || w.count("test.volatile/shop/web-1") != 1 {
		t.Fatalf("resume: %v %v %v", err, statuses(sum), w.effects)
	}
	st, err := Status(j, reg)
	if err != nil || len(st.Steps) != 12 {
		t.Fatalf("status: %v %+v", err, st)
	}
	for _, s := range st.Steps {
		if s.Status != StatusSucceeded {
			t.Errorf("status %s: %s", s.ID, s.Status)
		}
	}

	rel, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true, RestoreCredentials: true})
	if err != nil || rel.Partial() || len(rel.Steps) != 6 {
		t.Fatalf("release: %v %+v", err, rel)
	}
	// Undone in reverse order over all steps: the added targets' steps,
	// journaled last, first; the first run's last.
	var undone []string
	for _, r := range j.Records() {
		if r.Action == RecUndone {
			var res StepResult
			if err := json.Unmarshal(r.Details, &res); err != nil {
				t.Fatal(err)
			}
			undone = append(undone, res.Step)
		}
	}
	if len(undone) != 6 || undone[4] != "revoke" || undone[5] != "label" || !strings.Contains(strings.Join(undone[:4], " "), "revoke@shop/web-2") {
		t.Errorf("undo order: %v", undone)
	}
	for _, s := range rel.Steps {
		if s.Status != StatusReleased {
			t.Errorf("release %s: %s", s.ID, s.Status)
		}
	}
	for k, v := range w.labels {
		if v != "" {
			t.Errorf("release left %s=%s", k, v)
		}
	}
	for _, p := range []string{"shop/web-1", "shop/web-2", "shop/web-3"} {
		if n := w.count("undo:test.label/" + p); n != 1 {
			t.Errorf("undo of label on %s ran %d times", p, n)
		}
	}
}

// TestAddTargetsToMany: a run over many targets takes added ones as more
// targets of the same kind (ID@POD).
func TestAddTargetsToMany(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	c := loadValid(t, reg)
	o := Options{Env: &action.Env{}, Journal: j, Yes: true}
	first := []Inputs{{"pod": "shop/web-1", "window": mustDur("10m")}, {"pod": "shop/web-2", "window": mustDur("10m")}}
	if _, err := Run(t.Context(), c.ForTargets("pod", first), Inputs{"pod": "shop/web-1,shop/web-2", "window": mustDur("10m")}, o); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(t.Context(), c, Inputs{"pod": "shop/web-3", "window": mustDur("10m")}, o)
	if err != nil || sum.Partial() || len(sum.Steps) != 12 || statuses(sum)["revoke@shop/web-3"] != StatusSucceeded {
		t.Fatalf("add: %v %v", err, statuses(sum))
	}
	if w.count("test.volatile/shop/web-1") != 1 || w.count("test.volatile/shop/web-3") != 1 {
		t.Fatalf("effects: %v", w.effects)
	}
	if st, err := Status(j, reg); err != nil || len(st.Steps) != 12 || st.Steps[11].Target != "shop/web-3" {
		t.Fatalf("status: %v %+v", err, st)
	}
}
