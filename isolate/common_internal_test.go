package isolate

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/eksir/eksir/action"
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

// TestRestoreOriginal drives the one Undo write through a fake clientset:
// a conflict is retried from a fresh read, the original comes back and the
// annotation goes, and a missing object or annotation is success without a
// write.
func TestRestoreOriginal(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"a": "changed"}}}
	if err := writeOriginal(node, "test", "inc-1", map[string]string{"a": "orig"}); err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(node, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "plain"}})
	updates, conflicts := 0, 1
	kc.PrependReactor("update", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		updates++
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), "n1", errors.New("stale"))
		}
		return false, nil, nil
	})
	nodes := kc.CoreV1().Nodes()
	restore := func(n *corev1.Node, orig map[string]string) { n.Labels = restoreKeys(n.Labels, orig, "a") }
	ctx := t.Context()
	if r, err := restoreOriginal(ctx, "node n1", "test", "inc-1", getter(nodes, "n1"), updater(nodes), restore); err != nil || r.Outcome != action.OutcomeRestored {
		t.Fatal(r, err)
	}
	got, err := nodes.Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updates != 2 || got.Labels["a"] != "orig" || got.Annotations != nil {
		t.Fatalf("after restore: %d updates, labels %v, annotations %v", updates, got.Labels, got.Annotations)
	}
	for _, name := range []string{"n1", "plain", "gone"} {
		if r, err := restoreOriginal(ctx, "node "+name, "test", "inc-1", getter(nodes, name), updater(nodes), restore); err != nil || r.Outcome != action.OutcomeClean {
			t.Errorf("%s: %v %v", name, r, err)
		}
	}
	if updates != 2 {
		t.Errorf("nothing to restore, yet %d updates", updates-2)
	}
}
