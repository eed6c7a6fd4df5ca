package action

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

type fake struct{ spec Spec }

func (f fake) Spec() Spec                                   { return f.spec }
func (fake) Plan(context.Context, *Env, Call) (Plan, error) { return Plan{}, nil }
func (fake) Run(context.Context, *Env, Call) (Result, error) {
	return Result{}, nil
}

type reversible struct{ fake }

func (reversible) Undo(context.Context, *Env, Call, json.RawMessage) error { return nil }

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func TestRegistryInvariants(t *testing.T) {
	r := NewRegistry()
	r.Register(fake{Spec{Name: "b.collect", Kind: Collect}}, reversible{fake{Spec{Name: "a.contain", Kind: Contain, Reversible: true}}})
	if got := r.Names(); !slices.Equal(got, []string{"a.contain", "b.collect"}) {
		t.Fatalf("Names = %v", got)
	}
	if _, ok := r.Lookup("a.contain"); !ok {
		t.Fatal("Lookup missed a registered action")
	}
	mustPanic(t, "duplicate name", func() { r.Register(fake{Spec{Name: "b.collect"}}) })
	mustPanic(t, "Reversible without Undo", func() { NewRegistry().Register(fake{Spec{Name: "x", Reversible: true}}) })
	mustPanic(t, "Undo without Reversible", func() { NewRegistry().Register(reversible{fake{Spec{Name: "y"}}}) })
}

func TestPolicies(t *testing.T) {
	specs := []Spec{
		{Name: "c1", Kind: Collect, Permissions: Permissions{IAM: []string{"ec2:DescribeVolumes"},
			Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get"}}}}},
		{Name: "c2", Kind: Collect, Permissions: Permissions{IAM: []string{"ec2:DescribeVolumes", "ec2:CreateSnapshot"},
			Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "get"}}}}},
		{Name: "k1", Kind: Contain, Permissions: Permissions{IAM: []string{"iam:DeleteAccessKey"},
			Kube: []KubeRule{{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"create"}}}}},
	}
	b, err := IAMPolicy(specs)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Sid    string
			Action []string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2012-10-17" || len(doc.Statement) != 2 ||
		!slices.Equal(doc.Statement[0].Action, []string{"ec2:CreateSnapshot", "ec2:DescribeVolumes"}) ||
		!slices.Equal(doc.Statement[1].Action, []string{"iam:DeleteAccessKey"}) {
		t.Fatalf("IAM policy: %s", b)
	}
	role := ClusterRole("eksir", specs)
	var got []string
	for _, r := range role.Rules {
		got = append(got, r.APIGroups[0]+"/"+r.Resources[0]+":"+join(r.Verbs))
	}
	want := []string{"/pods:get,list", "/pods/log:get", "networking.k8s.io/networkpolicies:create"}
	if !slices.Equal(got, want) {
		t.Fatalf("ClusterRole rules = %v, want %v", got, want)
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
