package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps eksir-verify small enough for a forensics lab to audit:
// no Kubernetes, AWS or CEL package, nor the project's packages that link
// them.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	// evidence and the fast I/O beneath it are what a lab audits.
	allowed := map[string]bool{"github.com/eksir/eksir/cmd/eksir-verify": true, "github.com/eksir/eksir/cmd/internal/evidencecli": true,
		"github.com/eksir/eksir/evidence": true, "github.com/eksir/eksir/internal/fastio": true}
	forbidden := []string{"k8s.io/", "sigs.k8s.io/", "github.com/aws/", "cel.dev/", "github.com/google/cel-go"}
	have := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		have[d] = true
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("eksir-verify links %s", d)
			}
		}
		if strings.HasPrefix(d, "github.com/eksir/eksir/") && !allowed[d] {
			t.Errorf("eksir-verify links %s; it may link only evidence, its I/O package and evidencecli of the project", d)
		}
	}
	// The list must be the real one, not an empty answer.
	for _, want := range []string{"github.com/eksir/eksir/evidence", "github.com/eksir/eksir/cmd/internal/evidencecli", "github.com/urfave/cli/v2"} {
		if !have[want] {
			t.Errorf("eksir-verify does not link %s; go list said:\n%s", want, out)
		}
	}
}
