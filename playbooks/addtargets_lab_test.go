package playbooks_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/playbooks"
)

// TestLabAddTargets runs pod-compromise on the suspect, then runs it again
// into the same incident on a second pod: the second run adds that pod to
// the case's run, status shows both pods' steps, and release leaves
// neither pod marked nor any quarantine policy; read back from the API
// server.
func TestLabAddTargets(t *testing.T) {
	f := setupLab(t)
	l, err := f.le.Kube.Typed.CoreV1().Pods(f.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := ""
	for _, p := range l.Items {
		if p.Name != f.pod && p.Spec.NodeName != "" {
			second = p.Name
			break
		}
	}
	if second == "" {
		t.Fatalf("no second pod in %s", f.ns)
	}
	inc := "add-1"
	if r := f.eksir(t, nil, "run", "pod-compromise", "--pod", f.ns+"/"+f.pod, "--incident", inc, "--yes"); r.code != 0 {
		t.Fatalf("first run: %v", r)
	}
	if r := f.eksir(t, nil, "run", "pod-compromise", "--pod", f.ns+"/"+f.pod, "--incident", inc, "--yes"); r.code != 2 || !strings.Contains(r.stderr, "already holds") {
		t.Fatalf("the same pod again: want exit 2: %v", r)
	}
	if r := f.eksir(t, nil, "run", "pod-compromise", "--pod", f.ns+"/"+second, "--incident", inc, "--yes"); r.code != 0 {
		t.Fatalf("second run: %v", r)
	}
	st := f.status(t, inc)
	for _, id := range []string{"volatile", "isolate", "label", "isolate@" + f.ns + "/" + second, "label@" + f.ns + "/" + second} {
		if st[id].Status != playbooks.StatusSucceeded {
			t.Errorf("status %s: %+v", id, st[id])
		}
	}
	marked := func(name string) bool {
		p, err := f.le.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range p.Labels {
			if strings.HasPrefix(k, "eksir.io/") {
				return true
			}
		}
		return false
	}
	if !marked(f.pod) || !marked(second) {
		t.Fatalf("contained: suspect marked %v, second pod marked %v", marked(f.pod), marked(second))
	}
	if r := f.eksir(t, nil, "release", "--incident", inc, "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	if marked(f.pod) || marked(second) {
		t.Errorf("after release: suspect marked %v, second pod marked %v", marked(f.pod), marked(second))
	}
	if p := f.quarantinePolicies(t); len(p) != 0 {
		t.Errorf("release left quarantine policies %v", p)
	}
	f.checkJournal(t, inc)
}
