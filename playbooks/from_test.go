package playbooks

import (
	"errors"
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
		{"pod.instance", "instance", "unknown attribute \"instance\" of pod"},
		{"other.node", "node", "is not a pod or node input"},
		{"sa.node", "node", "unknown attribute \"node\" of node"},
		{"pod.iam_role", "string", "gives a iam-role"},
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

const awsFromPlaybook = `apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: awsfrom
inputs:
  - name: pod
    type: pod
    required: true
  - name: instance
    type: instance
    from: node.instance
  - name: node
    type: node
    from: pod.node
  - name: creds
    type: string
    from: pod.aws_credentials
  - name: role
    type: iam-role
    from: pod.iam_role
steps:
  - id: label
    action: test.label
    with:
      target: ${{ inputs.creds }}
`

// TestInputFromAWS: a pod's AWS credentials and IRSA role, and its node's
// instance through a derived node (declared after the input that needs
// it); a node without an EC2 instance is a plan-time input error naming
// the input and spec.providerID.
func TestInputFromAWS(t *testing.T) {
	reg := testRegistry(newWorld())
	c := mustCheck(t, reg, awsFromPlaybook)
	const role = "arn:aws:iam::123456789012:role/web"
	irsaEnv := []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: role}, {Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}}
	k := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "irsa"}, Spec: corev1.PodSpec{NodeName: "ec2", ServiceAccountName: "web",
			Containers: []corev1.Container{{Name: "c", Env: irsaEnv}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "both"}, Spec: corev1.PodSpec{NodeName: "ec2", ServiceAccountName: "gone",
			Containers: []corev1.Container{{Name: "c", Env: append(irsaEnv, corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"})}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "annotated"}, Spec: corev1.PodSpec{NodeName: "ec2", ServiceAccountName: "web"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain"}, Spec: corev1.PodSpec{NodeName: "ec2"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pending"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "onfargate"}, Spec: corev1.PodSpec{NodeName: "fargate-ip-10-0-1-9"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "onbare"}, Spec: corev1.PodSpec{NodeName: "bare"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{"eks.amazonaws.com/role-arn": role}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ec2"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0abc123"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fargate-ip-10-0-1-9", Labels: map[string]string{"eks.amazonaws.com/compute-type": "fargate"}},
			Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-10-0-1-9"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}},
	)
	res := map[action.Cloud]TargetResolver{action.Kubernetes: KubeTargets(k)}
	for _, tc := range []struct {
		pod, instance, creds, role string
	}{
		{"shop/irsa", "i-0abc123", "irsa", role},
		{"shop/both", "i-0abc123", "irsa+pod-identity", role},
		{"shop/annotated", "i-0abc123", "irsa", role},
		{"shop/plain", "i-0abc123", "", ""},
		{"shop/pending", "", "", ""},
	} {
		in, err := Resolve(t.Context(), c, map[string]string{"pod": tc.pod}, res)
		if err != nil {
			t.Fatalf("%s: %v", tc.pod, err)
		}
		if in["instance"] != tc.instance || in["creds"] != tc.creds || in["role"] != tc.role {
			t.Errorf("%s: instance %q creds %q role %q, want %q %q %q", tc.pod, in["instance"], in["creds"], in["role"], tc.instance, tc.creds, tc.role)
		}
	}
	// A given node wins over the pod's, and its instance follows it.
	if _, err := Resolve(t.Context(), c, map[string]string{"pod": "shop/plain", "node": "bare"}, res); err == nil || !strings.Contains(err.Error(), "spec.providerID") {
		t.Errorf("given node without providerID: %v", err)
	}
	for _, tc := range []struct{ pod, want string }{
		{"shop/onfargate", "Fargate"},
		{"shop/onbare", "no spec.providerID"},
	} {
		_, err := Resolve(t.Context(), c, map[string]string{"pod": tc.pod}, res)
		var pe ErrorList
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) || !strings.Contains(err.Error(), `input "instance" from node.instance`) ||
			!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "spec.providerID") || pe[0].Line == 0 || pe[0].HintText == "" {
			t.Errorf("%s: %v, want an input error at the declaration naming %q and spec.providerID", tc.pod, err, tc.want)
		}
	}
}

// TestDerivesFrom: what a second run may change along with a pod input
// includes what derives from it through another derived input.
func TestDerivesFrom(t *testing.T) {
	c := mustCheck(t, testRegistry(newWorld()), awsFromPlaybook)
	for _, tc := range []struct {
		name, src string
		want      bool
	}{
		{"node", "pod", true}, {"instance", "pod", true}, {"instance", "node", true}, {"role", "pod", true},
		{"pod", "pod", false}, {"pod", "node", false}, {"node", "instance", false},
	} {
		if got := derivesFrom(c.Playbook, tc.name, tc.src); got != tc.want {
			t.Errorf("derivesFrom(%s, %s) = %v", tc.name, tc.src, got)
		}
	}
}
