package action

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

type fake struct{ spec Spec }

func (f fake) Spec() Spec                                   { return f.spec }
func (fake) Plan(context.Context, *Env, Call) (Plan, error) { return Plan{}, nil }
func (fake) Run(context.Context, *Env, Call) (Result, error) {
	return Result{}, nil
}

type reversible struct{ fake }

func (reversible) Undo(context.Context, *Env, Call, json.RawMessage) ([]Restored, error) {
	return nil, nil
}

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
	k8s := []Cloud{Kubernetes}
	r.Register(fake{Spec{Name: "b.collect", Kind: Collect, Needs: k8s}}, reversible{fake{Spec{Name: "a.contain", Kind: Contain, Needs: k8s, Reversible: true}}})
	if got := r.Names(); !slices.Equal(got, []string{"a.contain", "b.collect"}) {
		t.Fatalf("Names = %v", got)
	}
	if _, ok := r.Lookup("a.contain"); !ok {
		t.Fatal("Lookup missed a registered action")
	}
	mustPanic(t, "duplicate name", func() { r.Register(fake{Spec{Name: "b.collect", Needs: k8s}}) })
	mustPanic(t, "Reversible without Undo", func() { NewRegistry().Register(fake{Spec{Name: "x", Needs: k8s, Reversible: true}}) })
	mustPanic(t, "Undo without Reversible", func() { NewRegistry().Register(reversible{fake{Spec{Name: "y", Needs: k8s}}}) })
	// Declarations must agree with each other.
	mustPanic(t, "no Needs", func() { NewRegistry().Register(fake{Spec{Name: "n", Kind: Collect}}) })
	mustPanic(t, "IAM without aws", func() {
		NewRegistry().Register(fake{Spec{Name: "i", Kind: Collect, Needs: k8s, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:DescribeInstances"}}}}}})
	})
	mustPanic(t, "Kube rules without kubernetes", func() {
		NewRegistry().Register(fake{Spec{Name: "k", Kind: Collect, Needs: []Cloud{AWS}, Permissions: Permissions{Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}}})
	})
	mustPanic(t, "collector revoking", func() {
		NewRegistry().Register(fake{Spec{Name: "r", Kind: Collect, Needs: k8s, RevokesCredential: true}})
	})
	mustPanic(t, "unknown param type", func() {
		NewRegistry().Register(fake{Spec{Name: "p", Kind: Collect, Needs: k8s, Params: []Param{{Name: "x", Type: "float"}}}})
	})
	if got := Clouds([]Spec{{Needs: []Cloud{AWS}}, {Needs: k8s}}); !slices.Equal(got, []Cloud{Kubernetes, AWS}) {
		t.Errorf("Clouds = %v", got)
	}
	if got := Clouds([]Spec{{Needs: k8s}}); !slices.Equal(got, []Cloud{Kubernetes}) {
		t.Errorf("Clouds of a Kubernetes-only set = %v", got)
	}
}

func TestPolicies(t *testing.T) {
	specs := []Spec{
		{Name: "c1", Kind: Collect, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:DescribeVolumes"}}},
			Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get"}}}}},
		{Name: "c2", Kind: Collect, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:DescribeVolumes", "ec2:CreateSnapshot"}}},
			Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "get"}}}}},
		{Name: "k1", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"iam:DeleteAccessKey"}}},
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

// TestIAMResourcesAndConditions: permissions naming resources and
// conditions become their own statements, never widened to "*".
func TestIAMResourcesAndConditions(t *testing.T) {
	tagged := map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/eksir-revocable": {"true"}}}
	specs := []Spec{
		{Name: "a", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{
			{Actions: []string{"iam:PutRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}, Conditions: tagged},
			{Actions: []string{"ec2:DescribeInstances"}},
		}}},
		{Name: "b", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{
			{Actions: []string{"iam:GetRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}, Conditions: tagged},
		}}},
	}
	b, err := IAMPolicy(specs)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Sid       string
			Action    []string
			Resource  any
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statement) != 2 {
		t.Fatalf("want a wildcard statement and a scoped one: %s", b)
	}
	var scoped, wild int
	for _, st := range doc.Statement {
		switch st.Resource {
		case "*":
			wild++
			if !slices.Equal(st.Action, []string{"ec2:DescribeInstances"}) || st.Condition != nil {
				t.Errorf("wildcard statement: %+v", st)
			}
		case "arn:aws:iam::*:role/*":
			scoped++
			if !slices.Equal(st.Action, []string{"iam:GetRolePolicy", "iam:PutRolePolicy"}) || st.Condition["StringEquals"]["aws:ResourceTag/eksir-revocable"][0] != "true" {
				t.Errorf("scoped statement: %+v", st)
			}
		}
	}
	if scoped != 1 || wild != 1 || doc.Statement[0].Sid == doc.Statement[1].Sid {
		t.Errorf("statements: %s", b)
	}
}

// TestTypes: every declared type parses its own text and JSON forms back
// to the same Go value, and the target list is what the CLI offers.
func TestTypes(t *testing.T) {
	for _, tc := range []struct {
		typ     ParamType
		literal any
		want    any
	}{
		{String, "x", "x"}, {Int, int64(3), int64(3)}, {Bool, true, true}, {Duration, "90s", 90 * time.Second},
		{StringList, []any{"a", "b"}, []string{"a", "b"}}, {StringMap, map[string]any{"k": "v"}, map[string]string{"k": "v"}},
		{Pod, "ns/p", "ns/p"}, {Node, "n", "n"}, {Instance, "i-1", "i-1"}, {IAMRole, "arn:aws:iam::1:role/r", "arn:aws:iam::1:role/r"},
		{AccessKey, "AKIA1", "AKIA1"}, {Namespace, "ns", "ns"},
	} {
		p := Param{Name: "x", Type: tc.typ}
		got, err := p.Convert(tc.literal)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Convert(%v) = %v, %v", tc.typ, tc.literal, got, err)
			continue
		}
		raw, _ := json.Marshal(got)
		back, err := p.FromJSON(raw)
		if err != nil || !reflect.DeepEqual(back, tc.want) {
			t.Errorf("%s: FromJSON(%s) = %#v, %v", tc.typ, raw, back, err)
		}
		if slices.Contains(InputTypes(), tc.typ) {
			txt, err := tc.typ.ParseText(FormatText(got))
			if err != nil || !reflect.DeepEqual(txt, tc.want) {
				t.Errorf("%s: ParseText(FormatText) = %v, %v", tc.typ, txt, err)
			}
		}
		if tc.typ.CELType() == nil || tc.typ.Schema()["type"] == nil {
			t.Errorf("%s: no CEL type or schema", tc.typ)
		}
	}
	if len(Types()) != len(typeTable) {
		t.Errorf("Types() lists %d of %d declared types", len(Types()), len(typeTable))
	}
	var flags []string
	for _, tt := range TargetTypes() {
		tg, _ := tt.Target()
		flags = append(flags, tg.Flag)
	}
	if !slices.Equal(flags, []string{"pod", "node", "instance", "iam-role", "access-key"}) {
		t.Errorf("target flags = %v", flags)
	}
	for _, bad := range []struct {
		typ     ParamType
		literal any
	}{{Int, "3"}, {Bool, "yes"}, {Duration, "soon"}, {StringList, "a"}, {StringMap, []any{"a"}}, {Pod, int64(1)}} {
		if _, err := (Param{Type: bad.typ}).Convert(bad.literal); err == nil {
			t.Errorf("%s accepted %#v", bad.typ, bad.literal)
		}
	}
	if _, err := Pod.ParseText(""); err == nil {
		t.Error("an empty pod reference parsed")
	}
	if _, err := StringList.ParseText("a,b"); err == nil {
		t.Error("a list has no text form, yet ParseText accepted one")
	}
	if _, err := (Param{Type: String, Enum: []string{"a"}}).Convert("b"); err == nil {
		t.Error("enum not enforced")
	}
}
