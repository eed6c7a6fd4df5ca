package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/eksir/eksir/action"
)

// drillPlaybook is the test playbook marked drill: true.
func drillPlaybook(t *testing.T, reg *action.Registry) *Checked {
	t.Helper()
	return mustCheck(t, reg, strings.Replace(string(loadValid(t, reg).source), "inputs:", "drill: true\ninputs:", 1))
}

// drillEnv is an Env whose cluster holds the suspect shop/web-1, with
// the drill label on the pod, on its namespace, or nowhere.
func drillEnv(podLabel, nsLabel bool) *action.Env {
	l := func(on bool) map[string]string {
		if on {
			return map[string]string{DrillLabel: "true"}
		}
		return map[string]string{DrillLabel: "false"}
	}
	return &action.Env{Kube: fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: l(nsLabel)}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: l(podLabel)}},
	)}
}

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
	sum, err := Drill(t.Context(), drillPlaybook(t, reg), podIn, reg, Options{Env: drillEnv(true, false), Journal: CaseJournal(cs), Yes: true}, seal)
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
	_, err := Drill(t.Context(), drillPlaybook(t, reg), podIn, reg, Options{Env: drillEnv(false, true), Journal: CaseJournal(cs), Yes: true},
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
	_, err := Drill(t.Context(), drillPlaybook(t, reg), podIn, reg, Options{Env: drillEnv(true, true), Journal: CaseJournal(cs), Yes: true},
		func(context.Context) error { return nil })
	if !errors.Is(err, ErrNotReleased) {
		t.Fatalf("want ErrNotReleased, got %v", err)
	}
}

type failingUndo struct{ labelAct }

func (failingUndo) Undo(context.Context, *action.Env, action.Call, json.RawMessage) ([]action.Restored, error) {
	return nil, errors.New("injected undo failure")
}

// TestDrillRefused: a playbook not marked drill: true, or a target without
// the drill label on the pod or its namespace, is refused before anything
// is journaled or changed; the release of a drill asks like any release.
func TestDrillRefused(t *testing.T) {
	seal := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name  string
		drill bool
		env   *action.Env
		want  string
	}{
		{name: "not-a-drill-playbook", drill: false, env: drillEnv(true, true), want: "not a drill playbook"},
		{name: "unlabelled-target", drill: true, env: drillEnv(false, false), want: "not a drill target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			reg := testRegistry(w)
			cs, _ := testCase(t)
			c := loadValid(t, reg)
			if tc.drill {
				c = drillPlaybook(t, reg)
			}
			n := len(cs.Log().Records())
			_, err := Drill(t.Context(), c, podIn, reg, Options{Env: tc.env, Journal: CaseJournal(cs), Yes: true}, seal)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want ErrInvalid %q, got %v", tc.want, err)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Hint() == "" {
				t.Errorf("no hint: %v", err)
			}
			if len(w.effects) != 0 || len(cs.Log().Records()) != n {
				t.Errorf("a refused drill changed something: %v", w.effects)
			}
		})
	}
	t.Run("release-asks", func(t *testing.T) {
		w := newWorld()
		reg := testRegistry(w)
		cs, _ := testCase(t)
		// label is approved (run and release); revoke needs no approval
		// to run, but its release asks, and the answer is no.
		_, err := Drill(t.Context(), drillPlaybook(t, reg), podIn, reg, Options{Env: drillEnv(true, false), Journal: CaseJournal(cs),
			Approver: answer(false), Approved: []string{"label"}}, seal)
		if !errors.Is(err, ErrNotReleased) || !strings.Contains(err.Error(), "revoke is needs-approval") || w.labels["sa-shop/web-1"] != "quarantine" {
			t.Fatalf("the drill's release did not ask: %v, labels %v", err, w.labels)
		}
	})
}
