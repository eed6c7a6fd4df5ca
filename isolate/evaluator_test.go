package isolate_test

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The evaluator reads NetworkPolicies as an enforcing engine would (the lab
// enforces nothing on the wire): it is the test's independent judge of
// whether containment works, written from the API's documented semantics,
// not from the code under test.

func selectorMatches(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// selecting returns the names of the policies that select pod.
func selecting(nps []networkingv1.NetworkPolicy, pod corev1.Pod) []string {
	var out []string
	for _, np := range nps {
		if np.Namespace == pod.Namespace && selectorMatches(&np.Spec.PodSelector, pod.Labels) {
			out = append(out, np.Name)
		}
	}
	return out
}

func hasType(np networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		// Defaults: Ingress always, Egress when egress rules exist.
		return t == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	for _, x := range np.Spec.PolicyTypes {
		if x == t {
			return true
		}
	}
	return false
}

// peerMatches: does peer (in a policy of namespace ns) admit pod p?
// IP blocks never match a pod here: the lab's pods have no IPs.
func peerMatches(peer networkingv1.NetworkPolicyPeer, ns string, p corev1.Pod, nsLabels map[string]map[string]string) bool {
	if peer.IPBlock != nil {
		return false
	}
	if peer.NamespaceSelector != nil {
		if !selectorMatches(peer.NamespaceSelector, nsLabels[p.Namespace]) {
			return false
		}
	} else if p.Namespace != ns {
		return false
	}
	return peer.PodSelector == nil || selectorMatches(peer.PodSelector, p.Labels)
}

// allowed reports whether traffic from → to is allowed: egress of from and
// ingress of to must both be allowed; a pod no policy isolates allows all.
func allowed(nps []networkingv1.NetworkPolicy, from, to corev1.Pod, nsLabels map[string]map[string]string) bool {
	return direction(nps, to, from, networkingv1.PolicyTypeIngress, nsLabels) && direction(nps, from, to, networkingv1.PolicyTypeEgress, nsLabels)
}

func direction(nps []networkingv1.NetworkPolicy, subject, other corev1.Pod, t networkingv1.PolicyType, nsLabels map[string]map[string]string) bool {
	isolated := false
	for _, np := range nps {
		if np.Namespace != subject.Namespace || !selectorMatches(&np.Spec.PodSelector, subject.Labels) || !hasType(np, t) {
			continue
		}
		isolated = true
		var peersList [][]networkingv1.NetworkPolicyPeer
		if t == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				peersList = append(peersList, r.From)
			}
		} else {
			for _, r := range np.Spec.Egress {
				peersList = append(peersList, r.To)
			}
		}
		for _, peers := range peersList {
			if len(peers) == 0 {
				return true
			}
			for _, peer := range peers {
				if peerMatches(peer, np.Namespace, other, nsLabels) {
					return true
				}
			}
		}
	}
	return !isolated
}
