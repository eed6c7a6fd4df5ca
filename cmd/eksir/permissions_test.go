package main

import (
	"encoding/json"
	"testing"
)

// TestPermissionsIAMDeterministic: `eksir permissions --format iam` prints
// the same valid policy each time, with a Version and a Sid on every
// statement, for the whole registry and for one playbook.
func TestPermissionsIAMDeterministic(t *testing.T) {
	for _, args := range [][]string{{"permissions", "--format", "iam"}, {"permissions", "--playbook", "pod-compromise", "--format", "iam"}} {
		first, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		for range 3 {
			if again, _, _ := runCLI(t, args...); again != first {
				t.Fatalf("%v: output differs between runs:\n%s\n---\n%s", args, first, again)
			}
		}
		var doc struct {
			Version   string
			Statement []struct{ Sid string }
		}
		if err := json.Unmarshal([]byte(first), &doc); err != nil || doc.Version != "2012-10-17" {
			t.Fatalf("%v: %v\n%s", args, err, first)
		}
		for _, st := range doc.Statement {
			if st.Sid == "" {
				t.Errorf("%v: statement without Sid:\n%s", args, first)
			}
		}
	}
}
