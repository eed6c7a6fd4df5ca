package playbooks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/eksir/eksir/action"
)

const fromPlaybook = `apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: from
inputs:
  - name: pod
    type: pod
    required: true
  - name: node
    type: node
    from: pod.node
  - name: sa
    type: string
    from: pod.service_account
steps:
  - id: label
    action: test.label
    when: inputs.node != ""
    with:
      target: ${{ inputs.sa }}
`

// TestInputFrom: inputs derived from the pod resolve before any change,
// a given value wins, and a pod without a node gives "".
func TestInputFrom(t *testing.T) {
	reg := testRegistry(newWorld())
	c := mustCheck(t, reg, fromPlaybook)
	k := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}, Spec: corev1.PodSpec{NodeName: "ip-10-0-1-4", ServiceAccountName: "web"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pending"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	)
	res := map[action.Cloud]TargetResolver{action.Kubernetes: KubeTargets(k)}
	for _, tc := range []struct {
		given    map[string]string
		node, sa string
	}{
		{map[string]string{"pod": "shop/web-1"}, "ip-10-0-1-4", "shop/web"},
		{map[string]string{"pod": "shop/web-1", "node": "other", "sa": "shop/x"}, "other", "shop/x"},
		{map[string]string{"pod": "shop/pending"}, "", "shop/default"},
	} {
		in, err := Resolve(t.Context(), c, tc.given, res)
		if err != nil {
			t.Fatal(err)
		}
		if in["node"] != tc.node || in["sa"] != tc.sa {
			t.Errorf("%v: node %q sa %q, want %q %q", tc.given, in["node"], in["sa"], tc.node, tc.sa)
		}
	}
	for _, tc := range []struct{ from, typ, want string }{
		{"pod.uid", "string", "unknown attribute"},
		{"sa.node", "node", "is not a pod input"},
		{"pod.node", "string", "gives a node"},
	} {
		src := strings.Replace(strings.Replace(fromPlaybook, "from: pod.service_account", "from: "+tc.from, 1), "  - name: sa\n    type: string", "  - name: sa\n    type: "+tc.typ, 1)
		p, err := Parse("t.yaml", []byte(src))
		if err == nil {
			_, err = Validate(p, reg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("from %s (%s): %v, want %q", tc.from, tc.typ, err, tc.want)
		}
	}
}
