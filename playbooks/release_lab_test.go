package playbooks_test

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/playbooks"
)

// TestLabReleaseAfterCrash kills pod-compromise inside its isolate step,
// right after the step's first change on the API server, and releases
// without resuming: isolate is in doubt and has no undo record, yet
// release leaves the suspect without any eksir.io/ label and without a
// quarantine NetworkPolicy, and names every object it looked at.
func TestLabReleaseAfterCrash(t *testing.T) {
	f := setupLab(t)
	inc := "relcrash-1"
	r := f.run(t, crashingBin(t), []string{crashEnv + "=isolate:inside"}, "run", "pod-compromise", "--pod", f.ns+"/"+f.pod,
		"--incident", inc, "--yes", "--parallel", "1")
	if !r.killed {
		t.Fatalf("crash hook did not fire: %v", r)
	}
	if st := f.status(t, inc); st["isolate"].Status != playbooks.StatusInDoubt {
		t.Fatalf("isolate after the crash: %+v", st["isolate"])
	}
	if !f.suspectTouched(t) && len(f.quarantinePolicies(t)) == 0 {
		t.Fatal("the crash left nothing to release: the test proves nothing")
	}

	r = f.eksir(t, nil, "release", "--incident", inc, "--yes")
	if r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 0 {
		t.Errorf("release left quarantine policies %v", p)
	}
	if f.suspectTouched(t) {
		t.Errorf("release left eksir's marks on the suspect")
	}
	if !strings.Contains(r.stdout, "RELEASED BY") || !strings.Contains(r.stdout, "pod "+f.ns+"/"+f.pod) {
		t.Errorf("release output does not list the objects:\n%s", r.stdout)
	}

	// The JSON output and status carry the same objects.
	r = f.eksir(t, nil, "--output", "json", "status", "--incident", inc)
	var sum playbooks.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("status: %v %v", err, r)
	}
	for _, s := range sum.Steps {
		if s.ID != "isolate" {
			continue
		}
		if s.Status != playbooks.StatusReleased || len(s.Restored) == 0 {
			t.Fatalf("isolate after release: %+v", s)
		}
		for _, o := range s.Restored {
			if o.Outcome != action.OutcomeRestored && o.Outcome != action.OutcomeClean {
				t.Errorf("object %s: outcome %q", o.Object, o.Outcome)
			}
		}
	}
}

// suspectTouched reads the suspect back: does it hold any eksir.io/ label
// or annotation?
func (f *labFixture) suspectTouched(t *testing.T) bool {
	t.Helper()
	p, err := f.le.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Labels {
		if strings.HasPrefix(k, "eksir.io/") {
			return true
		}
	}
	for k := range p.Annotations {
		if strings.HasPrefix(k, "eksir.io/") {
			return true
		}
	}
	return false
}
