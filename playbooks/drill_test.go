package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/eksir/eksir/action"
)

// TestDrill: a game day runs, seals while the containment is still in
// place, then releases everything, credentials included, without asking.
func TestDrill(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	w.labels["sa-shop/web-1"] = "old"
	sealed := 0
	seal := func(context.Context) error {
		sealed++
		if w.labels["shop/web-1"] != "quarantine" || w.labels["sa-shop/web-1"] != "quarantine" {
			t.Errorf("sealed after the release: %v", w.labels)
		}
		return nil
	}
	sum, err := Drill(t.Context(), loadValid(t, reg), podIn, reg, Options{Env: &action.Env{}, Journal: CaseJournal(cs), Yes: true}, seal)
	if err != nil {
		t.Fatal(err)
	}
	if sealed != 1 {
		t.Errorf("sealed %d times", sealed)
	}
	if sum.Drill == nil || sum.Drill.TimeToSealedEvidence <= 0 || sum.Drill.TimeToSealedEvidence < sum.Drill.TimeToContain {
		t.Errorf("drill score: %+v", sum.Drill)
	}
	if w.labels["shop/web-1"] != "" || w.labels["sa-shop/web-1"] != "old" {
		t.Errorf("drill left %v", w.labels)
	}
	st, err := Status(CaseJournal(cs), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(st); got["label"] != StatusReleased || got["revoke"] != StatusReleased {
		t.Errorf("status after the drill: %v", got)
	}
}

// TestDrillSealFails: without sealed evidence nothing is released.
func TestDrillSealFails(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	boom := errors.New("disk full")
	_, err := Drill(t.Context(), loadValid(t, reg), podIn, reg, Options{Env: &action.Env{}, Journal: CaseJournal(cs), Yes: true},
		func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("want the seal's error, got %v", err)
	}
	if w.labels["shop/web-1"] != "quarantine" {
		t.Errorf("released without sealed evidence: %v", w.labels)
	}
}

// TestDrillNotReleased: a step whose undo fails makes the drill ErrNotReleased.
func TestDrillNotReleased(t *testing.T) {
	w := newWorld()
	reg := action.NewRegistry()
	reg.Register(collectAct{w: w, name: "test.collect"}, collectAct{w: w, name: "test.volatile", volatile: true},
		failingUndo{labelAct{w: w, name: "test.label"}}, labelAct{w: w, name: "revoke.test"})
	cs, _ := testCase(t)
	_, err := Drill(t.Context(), loadValid(t, reg), podIn, reg, Options{Env: &action.Env{}, Journal: CaseJournal(cs), Yes: true},
		func(context.Context) error { return nil })
	if !errors.Is(err, ErrNotReleased) {
		t.Fatalf("want ErrNotReleased, got %v", err)
	}
}

type failingUndo struct{ labelAct }

func (failingUndo) Undo(context.Context, *action.Env, action.Call, json.RawMessage) ([]action.Restored, error) {
	return nil, errors.New("injected undo failure")
}
