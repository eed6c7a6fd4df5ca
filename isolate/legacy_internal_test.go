package isolate

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/eksir/eksir/action"
)

func TestSetUnsetKeys(t *testing.T) {
	rec := map[string]keyChange{}
	m := setKeys(map[string]string{"shared": "user", "keep": "x"}, map[string]string{"shared": "eksir", "own": "1"}, rec, nil)
	// A re-run keeps the first Had.
	m = setKeys(m, map[string]string{"shared": "eksir", "own": "1"}, rec, nil)
	if rec["shared"].Had == nil || *rec["shared"].Had != "user" || rec["own"].Had != nil {
		t.Fatalf("record %+v", rec)
	}
	m["own"] = "changed by a person"
	got := unsetKeys(m, rec, nil)
	want := map[string]string{"shared": "user", "keep": "x", "own": "changed by a person"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Inherited: the second incident takes the first's original value.
	rec2 := map[string]keyChange{}
	setKeys(map[string]string{"shared": "eksir"}, map[string]string{"shared": "eksir"}, rec2, func(k, cur string) (*string, bool) { return nil, true })
	if rec2["shared"].Had != nil {
		t.Errorf("inherit ignored: %+v", rec2)
	}
}

func legacyAnnotation(t *testing.T, act, incident string, v any) map[string]string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{legacyOriginalKey(act, incident): string(b)}
}

// Objects an older eksir changed (eksir.dev keys, snapshot records) are
// released by this one from the call alone.
func TestReleaseLegacySnapshots(t *testing.T) {
	const inc = "inc-old"
	ctx := t.Context()
	nodeAnn := legacyAnnotation(t, "cordon", inc, map[string]any{"unschedulable": false, "taints": nil, "labels": map[string]string{"zone": "a"}, "annotations": nil})
	nodeAnn[DoNotDisrupt] = "true"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a", LegacyQuarantineKey: inc, LegacyIncidentKey: inc}, Annotations: nodeAnn},
		Spec: corev1.NodeSpec{Unschedulable: true, Taints: []corev1.Taint{{Key: LegacyQuarantineKey, Value: inc, Effect: corev1.TaintEffectNoSchedule}}}}
	podAnn := legacyAnnotation(t, "label", inc, map[string]any{"labels": map[string]string{"app": "x"}, "annotations": map[string]string{"note": "y"}})
	for k, v := range map[string]string{"note": "y", LegacyIncidentKey: inc, "eksir.dev/reason": "r", "eksir.dev/time": "t"} {
		podAnn[k] = v
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "x", LegacyIncidentKey: inc}, Annotations: podAnn}}
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "web", Namespace: "ns"}
	u := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "u"}
	v := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "v"}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rb", Namespace: "ns", Annotations: legacyAnnotation(t, "revoke", inc, map[string]any{"subjects": []rbacv1.Subject{sa, u}})},
		Subjects: []rbacv1.Subject{u, v}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}}
	kc := fake.NewClientset(node, pod, rb)
	env := &action.Env{Kube: kc, Incident: inc}

	res, err := CordonNode{}.Undo(ctx, env, action.Call{Params: map[string]any{"node": "n1"}}, nil)
	if err != nil || res[0].Outcome != action.OutcomeRestored {
		t.Fatalf("cordon: %v %v", res, err)
	}
	n, _ := kc.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if n.Spec.Unschedulable || n.Spec.Taints != nil || !reflect.DeepEqual(n.Labels, map[string]string{"zone": "a"}) || n.Annotations != nil {
		t.Errorf("node: %+v %v %v", n.Spec, n.Labels, n.Annotations)
	}

	if _, err := (Label{}).Undo(ctx, env, action.Call{Params: map[string]any{"pod": "ns/p"}}, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := kc.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
	if !reflect.DeepEqual(p.Labels, map[string]string{"app": "x"}) || !reflect.DeepEqual(p.Annotations, map[string]string{"note": "y"}) {
		t.Errorf("pod: %v %v", p.Labels, p.Annotations)
	}

	if _, err := (RevokeServiceAccount{}).Undo(ctx, env, action.Call{Params: map[string]any{"service-account": "ns/web"}}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := kc.RbacV1().RoleBindings("ns").Get(ctx, "rb", metav1.GetOptions{})
	if !reflect.DeepEqual(b.Subjects, []rbacv1.Subject{u, v, sa}) || b.Annotations != nil {
		t.Errorf("binding: %v %v", b.Subjects, b.Annotations)
	}
}

func TestOtherIncidents(t *testing.T) {
	const mine, other = "inc-1", "inc-2"
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Labels:      map[string]string{QuarantineKey(mine): mine, IncidentKey(other): other, LegacyQuarantineKey: mine},
		Annotations: map[string]string{originalKey("cordon", mine): "{}", originalKey("label", other): "{}"}}}
	if got := OtherIncidents(n, nil, mine, false); len(got) != 2 {
		t.Errorf("labels and records of another incident: %v", got)
	}
	if got := OtherIncidents(n, nil, mine, true); len(got) != 0 {
		t.Errorf("an incident label and a label record are not containment: %v", got)
	}
	taints := []corev1.Taint{{Key: QuarantineKey(other), Value: other, Effect: corev1.TaintEffectNoSchedule}, {Key: LegacyQuarantineKey, Value: "old", Effect: corev1.TaintEffectNoSchedule}}
	if got := OtherIncidents(n, taints, mine, true); len(got) != 2 {
		t.Errorf("another incident's taints: %v", got)
	}
}
