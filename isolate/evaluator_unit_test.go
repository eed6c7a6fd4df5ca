package isolate_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEvaluator(t *testing.T) {
	pod := func(name string, l map[string]string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: l}}
	}
	api, fe := pod("api", map[string]string{"app": "api"}), pod("fe", map[string]string{"app": "fe"})
	allowFE := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow", Namespace: "ns"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "fe"}}}}}}}}
	deny := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "ns"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}
	if !allowed(nil, fe, api, nil) {
		t.Error("no policies: want allowed")
	}
	if allowed([]networkingv1.NetworkPolicy{deny}, fe, api, nil) {
		t.Error("deny-all: want denied")
	}
	// Policies are additive: the deny-all does not override the allow.
	if !allowed([]networkingv1.NetworkPolicy{allowFE, deny}, fe, api, nil) {
		t.Error("allow + deny-all: want allowed")
	}
	if allowed([]networkingv1.NetworkPolicy{allowFE}, api, api, nil) {
		t.Error("api to api under allow-fe: want denied")
	}
	if got := selecting([]networkingv1.NetworkPolicy{allowFE, deny}, fe); len(got) != 0 {
		t.Errorf("fe selected by %v", got)
	}
}
