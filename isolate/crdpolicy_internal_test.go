package isolate

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func u(ns string, obj map[string]any) unstructured.Unstructured {
	x := unstructured.Unstructured{Object: obj}
	x.SetName("p")
	x.SetNamespace(ns)
	return x
}

func TestCRDSelection(t *testing.T) {
	pv := podView{ns: "pay", labels: map[string]string{"app": "api"}, nsLabels: map[string]string{"kubernetes.io/metadata.name": "pay", "team": "a"}, sa: "api"}
	allow := []any{map[string]any{"action": "Allow"}}

	// Calico: selector and namespaceSelector in Calico syntax.
	for _, tc := range []struct {
		spec map[string]any
		ns   string
		kind crdKind
		want bool
	}{
		{map[string]any{"selector": "app == 'api'"}, "pay", calicoV1NP, true},
		{map[string]any{"selector": "app == 'api'"}, "other", calicoV1NP, false},
		{map[string]any{"selector": "app == 'web'"}, "", calicoV1GNP, false},
		{map[string]any{"selector": "projectcalico.org/namespace == 'pay' && has(app)"}, "", calicoV1GNP, true},
		{map[string]any{"selector": "all()", "namespaceSelector": "team == 'b'"}, "", calicoV1GNP, false},
		{map[string]any{"selector": "all()", "namespaceSelector": "team == 'a'"}, "", calicoV1GNP, true},
		{map[string]any{"selector": "app =~ 'a.*'"}, "", calicoV1GNP, true}, // unparsable: assumed to select
	} {
		tc.spec["ingress"] = allow
		if got := calicoSelects(u(tc.ns, map[string]any{"spec": tc.spec}), tc.kind, pv); got != tc.want {
			t.Errorf("calico %v: %v, want %v", tc.spec, got, tc.want)
		}
	}

	// Cilium: k8s: prefixes, namespace label, specs, deny-only rules.
	ing := []any{map[string]any{"fromEntities": []any{"world"}}}
	for _, tc := range []struct {
		obj  map[string]any
		ns   string
		want bool
	}{
		{map[string]any{"spec": map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"k8s:app": "api"}}, "ingress": ing}}, "pay", true},
		{map[string]any{"spec": map[string]any{"endpointSelector": map[string]any{}, "ingress": ing}}, "pay", true},
		{map[string]any{"spec": map[string]any{"endpointSelector": map[string]any{}, "ingressDeny": ing}}, "pay", false},
		{map[string]any{"spec": map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "api"}}, "ingress": ing}}, "other", false},
		{map[string]any{"spec": map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"k8s:io.kubernetes.pod.namespace": "pay"}}, "egress": ing}}, "", true},
		{map[string]any{"spec": map[string]any{"nodeSelector": map[string]any{}, "ingress": ing}}, "", false},
		{map[string]any{"specs": []any{map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "ingress": ing},
			map[string]any{"endpointSelector": map[string]any{"matchExpressions": []any{map[string]any{"key": "k8s:app", "operator": "In", "values": []any{"api"}}}}, "ingress": ing}}}, "pay", true},
	} {
		if got := ciliumAllowsPod(u(tc.ns, tc.obj), pv); got != tc.want {
			t.Errorf("cilium %v: %v, want %v", tc.obj, got, tc.want)
		}
	}

	// AdminNetworkPolicy subjects.
	for _, tc := range []struct {
		subject map[string]any
		want    bool
	}{
		{map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"team": "a"}}}, true},
		{map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"team": "b"}}}, false},
		{map[string]any{"pods": map[string]any{"namespaceSelector": map[string]any{}, "podSelector": map[string]any{"matchLabels": map[string]any{"app": "api"}}}}, true},
		{map[string]any{"pods": map[string]any{"namespaceSelector": map[string]any{}, "podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}}}, false},
	} {
		if got := anpSelects(u("", map[string]any{"spec": map[string]any{"subject": tc.subject}}), pv); got != tc.want {
			t.Errorf("anp %v: %v, want %v", tc.subject, got, tc.want)
		}
	}
	if !rulesAllow(map[string]any{"spec": map[string]any{"egress": []any{map[string]any{"action": "allow"}}}}, "action") ||
		rulesAllow(map[string]any{"spec": map[string]any{"ingress": []any{map[string]any{"action": "Deny"}}}}, "action") {
		t.Error("rulesAllow")
	}
}
