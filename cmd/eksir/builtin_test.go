package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/playbooks"
)

// TestBuiltinsValidate keeps every built-in valid against the shipped
// registry, at every commit.
func TestBuiltinsValidate(t *testing.T) {
	names := playbooks.Builtins()
	for _, want := range []string{"game-day", "pod-compromise", "triage"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("built-in %s missing", want)
		}
	}
	reg := newRegistry()
	for _, n := range names {
		ck, err := loadChecked(n, reg)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if n == "triage" {
			for _, s := range ck.Specs() {
				if s.Kind != "collect" {
					t.Errorf("triage uses %s, which is %s", s.Name, s.Kind)
				}
			}
		}
	}
}

func TestPlaybooksShowIsExact(t *testing.T) {
	for _, n := range playbooks.Builtins() {
		out, _, code := runCLI(t, "playbooks", "show", n)
		b, _ := playbooks.Builtin(n)
		if code != 0 || !bytes.Equal([]byte(out), b) {
			t.Errorf("show %s: exit %d, output differs", n, code)
		}
	}
	out, _, code := runCLI(t, "playbooks", "list")
	if code != 0 || !strings.HasPrefix(out, "credential-compromise\t") || !strings.Contains(out, "\nnode-compromise\t") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
}

func TestPermissionsForPlaybook(t *testing.T) {
	out, stderr, code := runCLI(t, "permissions", "--playbook", "triage", "--format", "rbac")
	if code != 0 || !strings.Contains(out, "kind: ClusterRole") {
		t.Errorf("triage rbac: exit %d\n%s%s", code, out, stderr)
	}
	all, _, _ := runCLI(t, "permissions", "--format", "rbac")
	if len(all) <= len(out) {
		t.Errorf("triage's role is not narrower than the whole registry's")
	}
	// Credential revocation has a role of its own: only it can re-bind roles.
	if strings.Contains(out, "eksir-revoker") || strings.Contains(out, "- bind") {
		t.Errorf("triage revokes nothing, yet its roles include the revoker's:\n%s", out)
	}
	docs := strings.Split(all, "\n---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "name: eksir-responder") || !strings.Contains(docs[1], "name: eksir-revoker") ||
		strings.Contains(docs[0], "- bind") || !strings.Contains(docs[1], "- bind") || strings.Contains(all, "'*'") || strings.Contains(all, "escalate") {
		t.Errorf("the whole registry's roles: want the responder's without bind and the revoker's apart:\n%s", all)
	}
	out, _, code = runCLI(t, "permissions", "--format", "iam")
	if code != 0 || !strings.Contains(out, `"Version": "2012-10-17"`) {
		t.Errorf("iam: exit %d\n%s", code, out)
	}
}

func TestValidateBadPlaybookExit2(t *testing.T) {
	_, stderr, code := runCLI(t, "playbooks", "validate", "../../playbooks/testdata/malformed/cycle.yaml")
	if code != evidencecli.ExitBadInput || !strings.Contains(stderr, "cycle.yaml:") || !strings.Contains(stderr, "cycle in needs") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// TestBuiltinDrills: only game-day may run as a drill, and it never
// deletes token Secrets (release could not bring them back);
// pod-compromise cordons with approval and revokes the pod's own account.
func TestBuiltinDrills(t *testing.T) {
	reg := newRegistry()
	for _, n := range playbooks.Builtins() {
		ck, err := loadChecked(n, reg)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Drill != (n == "game-day") {
			t.Errorf("%s: drill = %v", n, ck.Drill)
		}
		if s, ok := ck.Step("revoke"); ok && n == "game-day" && s.With["delete-tokens"] != false {
			t.Errorf("game-day's revoke deletes token Secrets: %v", s.With)
		}
	}
	ck, err := loadChecked("pod-compromise", reg)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := ck.Step("cordon"); !ok || s.Action != "isolate.cordon-node" || !s.Approve || !slices.Contains(s.RequiresCapture, "volatile") {
		t.Errorf("pod-compromise's cordon step: %+v", s)
	}
	for _, in := range ck.Inputs {
		if (in.Name == "node" && in.From != "pod.node") || (in.Name == "service_account" && in.From != "pod.service_account") {
			t.Errorf("pod-compromise input %s comes from %q", in.Name, in.From)
		}
	}
}
