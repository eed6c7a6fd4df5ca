package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/isolate"
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

// TestPermissionsIAMCoversEveryAction: the whole registry's policy grants
// every IAM action each action declares, collection's included, on the
// resources it declares, in a statement of the action's kind (collection
// and containment never share one).
func TestPermissionsIAMCoversEveryAction(t *testing.T) {
	out, stderr, code := runCLI(t, "permissions", "--format", "iam")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var doc struct {
		Statement []struct {
			Sid      string
			Action   []string
			Resource any
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, st := range doc.Statement {
		var res []string
		switch r := st.Resource.(type) {
		case string:
			res = []string{r}
		case []any:
			for _, v := range r {
				res = append(res, v.(string))
			}
		}
		kind := strings.TrimRight(strings.TrimPrefix(st.Sid, "Eksir"), "0123456789")
		for _, a := range st.Action {
			for _, r := range res {
				granted[kind+" "+a+" "+r] = true
			}
		}
	}
	kinds := map[action.Kind]string{action.Collect: "Collect", action.Contain: "Contain"}
	collectIAM := 0
	for _, s := range newRegistry().Specs() {
		for _, p := range s.Permissions.IAM {
			res := p.Resources
			if len(res) == 0 {
				res = []string{"*"}
			}
			for _, a := range p.Actions {
				for _, r := range res {
					if !granted[kinds[s.Kind]+" "+a+" "+r] {
						t.Errorf("%s declares %s on %s; the policy's %s statements do not grant it", s.Name, a, r, kinds[s.Kind])
					}
				}
				if s.Kind == action.Collect {
					collectIAM++
				}
			}
		}
	}
	// The collect actions on AWS declare IAM permissions: a registry
	// without them would pass the loop above with nothing to check.
	for _, want := range []string{"ec2:CreateSnapshots", "ssm:SendCommand", "ec2:GetConsoleScreenshot", "logs:FilterLogEvents", "cloudtrail:LookupEvents"} {
		if !strings.Contains(out, `"`+want+`"`) {
			t.Errorf("the policy lacks %s (collection):\n%s", want, out)
		}
	}
	if collectIAM == 0 {
		t.Error("no collect action declares an IAM permission")
	}
}

// TestRegistryIsCheckedForIAM: internal/iamcheck checks the IAM
// permissions of the actions isolate and collect register; an action
// registered here from anywhere else would escape that check.
func TestRegistryIsCheckedForIAM(t *testing.T) {
	checked := action.NewRegistry()
	isolate.Register(checked)
	collect.Register(checked)
	if got, want := newRegistry().Names(), checked.Names(); !slices.Equal(got, want) {
		t.Errorf("registry %v, internal/iamcheck registers %v: register the new package in internal/iamcheck's test too", got, want)
	}
}
