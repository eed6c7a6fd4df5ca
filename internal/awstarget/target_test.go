package awstarget

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
)

func TestNodeInstance(t *testing.T) {
	node := func(pid string, labels map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels}, Spec: corev1.NodeSpec{ProviderID: pid}}
	}
	id, err := NodeInstance(node("aws:///us-east-1a/i-0123456789abcdef0", nil))
	if err != nil || id != "i-0123456789abcdef0" {
		t.Fatalf("EC2 node: got %q, %v", id, err)
	}
	for name, n := range map[string]*corev1.Node{
		"no provider ID": node("", nil),
		"fargate":        node("aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-1-1.ec2.internal", map[string]string{FargateLabel: "fargate"}),
		"other cloud":    node("gce://proj/us-central1-a/vm-1", nil),
		"no instance":    node("aws:///us-east-1a/", nil),
	} {
		if _, err := NodeInstance(n); !errors.Is(err, action.ErrBadInput) || !errors.Is(err, ErrNoEC2Instance) {
			t.Errorf("%s: want bad input and no EC2 instance, got %v", name, err)
		}
		if IsFargate(n) != (name == "fargate") {
			t.Errorf("%s: IsFargate %v", name, IsFargate(n))
		}
	}
	// The provider ID decides; the label, which a kubelet can set on its own
	// node, counts only where there is no provider ID.
	fargatePID := "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-1-1.ec2.internal"
	for name, tc := range map[string]struct {
		n    *corev1.Node
		want bool
	}{
		"EC2 node labelled fargate (spoofed)": {node("aws:///us-east-1a/i-0123456789abcdef0", map[string]string{FargateLabel: "fargate"}), false},
		"Fargate provider ID, no label":       {node(fargatePID, nil), true},
		"no provider ID, fargate label":       {node("", map[string]string{FargateLabel: "fargate"}), true},
		"fargate- deeper in the path":         {node("aws:///us-east-1a/x/y/fargate-ip", nil), false},
		"fargate- in another cloud's ID":      {node("gce://p/z/fargate-x", nil), false},
		"empty Fargate name":                  {node("aws:///us-east-1a/0a1b/fargate-", nil), false},
	} {
		if got := IsFargate(tc.n); got != tc.want {
			t.Errorf("%s: IsFargate %v, want %v", name, got, tc.want)
		}
	}
	if id, err := NodeInstance(node("aws:///us-east-1a/i-0123456789abcdef0", map[string]string{FargateLabel: "fargate"})); err != nil || id != "i-0123456789abcdef0" {
		t.Errorf("a spoofed fargate label hid the instance: %q, %v", id, err)
	}
}

func TestReadPodCredentials(t *testing.T) {
	env := func(kv ...string) []corev1.EnvVar {
		var out []corev1.EnvVar
		for i := 0; i < len(kv); i += 2 {
			out = append(out, corev1.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	pod := func(e []corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "pay", Name: "web"},
			Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "c", Env: e}}}}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{RoleARNAnnotation: "arn:aws:iam::1:role/annotated"}}}
	const injected = "arn:aws:iam::1:role/injected"
	cases := []struct {
		name     string
		p        *corev1.Pod
		sa       *corev1.ServiceAccount
		kind     string
		role, sn string
	}{
		{"irsa env wins over a changed annotation", pod(env(EnvRoleARN, injected, EnvWebIdentityToken, "/t")), sa, IRSA, injected, "pay/web"},
		{"annotation only (webhook not run yet)", pod(nil), sa, IRSA, "arn:aws:iam::1:role/annotated", "pay/web"},
		{"pod identity", pod(env(EnvContainerCredsURI, "http://169.254.170.23/v1/credentials")), nil, PodIdentity, "", "pay/web"},
		{"both", pod(env(EnvRoleARN, injected, EnvWebIdentityToken, "/t", EnvContainerCredsURI, "http://169.254.170.23/v1/credentials")), nil, IRSA + "+" + PodIdentity, injected, "pay/web"},
		{"none", pod(nil), nil, "", "", "pay/web"},
	}
	for _, c := range cases {
		got := ReadPodCredentials(c.p, c.sa)
		if got.Kind() != c.kind || got.RoleARN != c.role || got.ServiceAccount != c.sn {
			t.Errorf("%s: got %+v", c.name, got)
		}
	}
	p := pod(nil)
	p.Spec.ServiceAccountName = ""
	if got := ReadPodCredentials(p, nil); got.ServiceAccount != "pay/default" {
		t.Errorf("default service account: got %q", got.ServiceAccount)
	}
}
