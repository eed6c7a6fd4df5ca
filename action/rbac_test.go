package action_test

import (
	"slices"
	"testing"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/isolate"
)

// The responder ClusterRole generated from every registered action is
// least privilege in the ways a reviewer checks first: no wildcard, no
// escalate or impersonate, bind only on roles (revocation updates
// bindings), and no write to roles at all, so bind cannot be turned into
// granting new permissions through a role eksir edits.
func TestClusterRoleLeastPrivilege(t *testing.T) {
	r := action.NewRegistry()
	isolate.Register(r)
	collect.Register(r)
	role := action.ClusterRole("eksir", r.Specs())
	if len(role.Rules) == 0 {
		t.Fatal("empty role")
	}
	for _, rule := range role.Rules {
		for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
			if slices.Contains(list, "*") {
				t.Errorf("wildcard in %+v", rule)
			}
		}
		if len(rule.NonResourceURLs) > 0 {
			t.Errorf("non-resource URLs: %+v", rule)
		}
		for _, v := range rule.Verbs {
			switch v {
			case "escalate", "impersonate", "deletecollection":
				t.Errorf("%s granted: %+v", v, rule)
			case "bind":
				if rule.APIGroups[0] != "rbac.authorization.k8s.io" || rule.Resources[0] != "roles" && rule.Resources[0] != "clusterroles" {
					t.Errorf("bind outside roles: %+v", rule)
				}
			}
		}
		if rule.APIGroups[0] == "rbac.authorization.k8s.io" && (rule.Resources[0] == "roles" || rule.Resources[0] == "clusterroles") {
			for _, v := range rule.Verbs {
				if !slices.Contains([]string{"bind", "get", "list", "watch"}, v) {
					t.Errorf("%s on %s: eksir never writes roles", v, rule.Resources[0])
				}
			}
		}
	}
	for _, rule := range role.Rules {
		t.Logf("%v %v %v", rule.APIGroups, rule.Resources, rule.Verbs)
	}
}

// A rule narrowed to names stays apart from the unnamed rule of the same
// resource.
func TestClusterRoleResourceNames(t *testing.T) {
	role := action.ClusterRole("x", []action.Spec{{Permissions: action.Permissions{Kube: []action.KubeRule{
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"get"}, ResourceNames: []string{"calico-node", "aws-node"}},
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"list"}},
	}}}})
	if len(role.Rules) != 2 || role.Rules[0].ResourceNames != nil || !slices.Equal(role.Rules[1].ResourceNames, []string{"aws-node", "calico-node"}) ||
		!slices.Equal(role.Rules[1].Verbs, []string{"get"}) {
		t.Errorf("rules %+v", role.Rules)
	}
}
