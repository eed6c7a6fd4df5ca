package playbooks

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/eksir/eksir/action"
)

// TestManyTargets: a Deployment resolves to its pods; the steps run once
// per pod under one journal, a failure stops only its own target, status
// and release group by target, and resume finishes the failed target.
func TestManyTargets(t *testing.T) {
	sel := map[string]string{"app": "web"}
	objs := []runtime.Object{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}}}}
	for _, n := range []string{"web-1", "web-2", "web-3"} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: n, Labels: sel}})
	}
	objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-1", Labels: map[string]string{"app": "db"}}})
	k := fake.NewClientset(objs...)
	w := newWorld()
	reg := testRegistry(w)
	c := loadValid(t, reg)
	res := map[action.Cloud]TargetResolver{action.Kubernetes: KubeTargets(k)}

	for ref, want := range map[string]string{
		"deployment:shop/web":       "shop/web-1 shop/web-2 shop/web-3",
		"selector:shop/app in (db)": "shop/db-1",
		"shop/web-2,shop/db-1":      "shop/db-1 shop/web-2",
	} {
		pod, targets, err := ResolveTargets(t.Context(), c, map[string]string{"pod": ref}, res)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		var got []string
		for _, in := range targets {
			got = append(got, in["pod"].(string))
		}
		if pod != "pod" || strings.Join(got, " ") != want {
			t.Errorf("%s: %s %v, want %s", ref, pod, got, want)
		}
	}
	if _, _, err := ResolveTargets(t.Context(), c, map[string]string{"pod": "deployment:shop/nope"}, res); err == nil {
		t.Error("a missing Deployment resolved")
	}

	pod, targets, err := ResolveTargets(t.Context(), c, map[string]string{"pod": "deployment:shop/web"}, res)
	if err != nil {
		t.Fatal(err)
	}
	many := c.ForTargets(pod, targets)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	w.fail["label@shop/web-2"] = true
	in := Inputs{"pod": "deployment:shop/web", "window": podIn["window"]}
	sum, err := Run(t.Context(), many, in, Options{Env: &action.Env{}, Journal: j, Approved: []string{"label"}, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := statuses(sum)
	if got["label@shop/web-1"] != StatusSucceeded || got["label@shop/web-3"] != StatusSucceeded || got["label@shop/web-2"] != StatusFailed ||
		got["revoke@shop/web-2"] != StatusNotRun || got["revoke@shop/web-1"] != StatusSucceeded {
		t.Fatalf("statuses: %v", got)
	}
	for _, s := range sum.Steps {
		if base, tg, _ := strings.Cut(s.ID, TargetSep); s.Target != tg || base == "" {
			t.Errorf("step %s has target %q", s.ID, s.Target)
		}
	}
	if sum.Outputs["contained@shop/web-1"] != true || sum.Outputs["contained@shop/web-2"] != false {
		t.Errorf("outputs per target: %v", sum.Outputs)
	}
	if w.labels["shop/web-1"] != "quarantine" || w.labels["sa-shop/web-3"] != "quarantine" || w.labels["shop/web-2"] != "" {
		t.Fatalf("labels: %v", w.labels)
	}
	// Resume from the journal alone: the failed target completes.
	delete(w.fail, "label@shop/web-2")
	sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
	if err != nil || sum.Partial() {
		t.Fatalf("resume: %v %v", err, statuses(sum))
	}
	if w.count("test.volatile/shop/web-1") != 1 || w.labels["shop/web-2"] != "quarantine" {
		t.Fatalf("after resume: %v %v", w.effects, w.labels)
	}
	st, err := Status(j, reg)
	if err != nil || len(st.Steps) != 12 || st.Steps[0].Target != "shop/web-1" || st.Steps[11].Target != "shop/web-3" {
		t.Fatalf("status: %v %+v", err, st)
	}
	rel, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true, RestoreCredentials: true})
	if err != nil || rel.Partial() || len(rel.Steps) != 6 {
		t.Fatalf("release: %v %+v", err, rel)
	}
	for i, s := range rel.Steps {
		if want := targets[i/2]["pod"]; s.Target != want {
			t.Errorf("release step %d is %s (target %s), want target %s: grouped by target", i, s.ID, s.Target, want)
		}
	}
	for k, v := range w.labels {
		if v != "" {
			t.Errorf("release left %s=%s", k, v)
		}
	}
}
