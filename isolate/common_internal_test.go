package isolate

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValue(t *testing.T) {
	for _, id := range []string{"inc-1", "INC_2026.11.25", strings.Repeat("a", 80), "inc-", "a.b-"} {
		v := LabelValue(id)
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", id, v, errs)
		}
		if v != LabelValue(id) {
			t.Errorf("LabelValue(%q) not stable", id)
		}
	}
	if LabelValue("inc-1") != "inc-1" {
		t.Error("a valid ID should be kept as is")
	}
}

func TestObjectName(t *testing.T) {
	seen := map[string]string{}
	for _, id := range []string{"inc-1", "INC-1", "inc_1", strings.Repeat("x", 80), "a.b"} {
		n := ObjectName("eksir-quarantine-", id)
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 || len(n) > 63 {
			t.Errorf("ObjectName(%q) = %q: %v", id, n, errs)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%q and %q share the name %q", id, other, n)
		}
		seen[n] = id
	}
}

func TestRestoreKeys(t *testing.T) {
	got := restoreKeys(map[string]string{"a": "changed", "q": "1", "keep": "x"}, map[string]string{"a": "orig", "gone": "back"}, "a", "q", "gone")
	want := map[string]string{"a": "orig", "gone": "back", "keep": "x"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if restoreKeys(map[string]string{"q": "1"}, nil, "q") != nil {
		t.Error("an emptied map should be nil, as the API server returns it")
	}
}

func TestVPCCNIEnforces(t *testing.T) {
	ds := func(args ...string) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{}
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "aws-node"}, {Name: "aws-eks-nodeagent", Args: args}}
		return d
	}
	if !vpcCNIEnforces(ds("--enable-network-policy=true", "--enable-ipv6=false")) {
		t.Error("agent enabled: want true")
	}
	if vpcCNIEnforces(ds("--enable-network-policy=false")) || vpcCNIEnforces(ds()) {
		t.Error("agent disabled: want false")
	}
}
