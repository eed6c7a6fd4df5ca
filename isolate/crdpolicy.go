package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
)

// Policies that are not networking.k8s.io NetworkPolicies stay in force
// whatever eksir does to those: Calico and Cilium policies and
// AdminNetworkPolicies. eksir reads the ones installed (discovery; an
// absent CRD is skipped) and counters each allow that selects the suspect
// with a per-incident deny of higher precedence in the same engine's API.

// crdKind is one policy resource eksir reads.
type crdKind struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
	engine     string // the engine that enforces it
}

var (
	calicoV3NP   = crdKind{schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "networkpolicies"}, "NetworkPolicy", true, engineCalico}
	calicoV3GNP  = crdKind{schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "globalnetworkpolicies"}, "GlobalNetworkPolicy", false, engineCalico}
	calicoV1NP   = crdKind{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "networkpolicies"}, "NetworkPolicy", true, engineCalico}
	calicoV1GNP  = crdKind{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "globalnetworkpolicies"}, "GlobalNetworkPolicy", false, engineCalico}
	ciliumCNP    = crdKind{schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}, "CiliumNetworkPolicy", true, engineCilium}
	ciliumCCNP   = crdKind{schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}, "CiliumClusterwideNetworkPolicy", false, engineCilium}
	adminNetPols = crdKind{schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "adminnetworkpolicies"}, "AdminNetworkPolicy", false, engineCalico}
)

// crdAPI is the dynamic client and what discovery says is served.
type crdAPI struct {
	dyn    dynamic.Interface
	served map[schema.GroupVersionResource]bool
}

// newCRDAPI asks discovery which of the policy resources are served.
func newCRDAPI(kc kubernetes.Interface, dyn dynamic.Interface) (*crdAPI, error) {
	api := &crdAPI{dyn: dyn, served: map[schema.GroupVersionResource]bool{}}
	gvs := map[string]bool{}
	for _, k := range []crdKind{calicoV3NP, calicoV1NP, ciliumCNP, adminNetPols} {
		gvs[k.gvr.GroupVersion().String()] = true
	}
	for gv := range gvs {
		list, err := kc.Discovery().ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", gv, err)
		}
		g, _ := schema.ParseGroupVersion(gv)
		for _, r := range list.APIResources {
			api.served[g.WithResource(r.Name)] = true
		}
	}
	return api, nil
}

// calico returns the Calico kinds to use: the projectcalico.org API server
// when it runs, else the CRDs it stores them in.
func (a *crdAPI) calico() (np, gnp crdKind, ok bool) {
	if a.served[calicoV3GNP.gvr] {
		return calicoV3NP, calicoV3GNP, true
	}
	if a.served[calicoV1GNP.gvr] {
		return calicoV1NP, calicoV1GNP, true
	}
	return crdKind{}, crdKind{}, false
}

// counterKinds are the kinds eksir may create counter objects in.
func (a *crdAPI) counterKinds() []crdKind {
	var out []crdKind
	if _, gnp, ok := a.calico(); ok {
		out = append(out, gnp)
	}
	for _, k := range []crdKind{ciliumCNP, adminNetPols} {
		if a.served[k.gvr] {
			out = append(out, k)
		}
	}
	return out
}

func (a *crdAPI) res(k crdKind, ns string) dynamic.ResourceInterface {
	if k.namespaced {
		return a.dyn.Resource(k.gvr).Namespace(ns)
	}
	return a.dyn.Resource(k.gvr)
}

// crdFinding is one CRD allow policy that selects the pod.
type crdFinding struct {
	Object    string
	Countered bool
	Why       string // why it is not countered
}

// counterObj is a per-incident deny eksir wants in place.
type counterObj struct {
	kind crdKind
	obj  *unstructured.Unstructured
}

func (c counterObj) name() string {
	n := strings.ToLower(c.kind.kind) + " "
	if c.kind.namespaced {
		n += c.obj.GetNamespace() + "/"
	}
	return n + c.obj.GetName()
}

// podView is what the policy selectors are evaluated against.
type podView struct {
	ns       string
	labels   map[string]string // the pod's labels as the workload has them
	nsLabels map[string]string
	sa       string
}

// crdPolicies finds the CRD allow policies that select the pod and builds
// the counter objects for those the engines on the node enforce.
func (a *crdAPI) crdPolicies(ctx context.Context, pv podView, incident string, engines []string) ([]crdFinding, []counterObj, error) {
	var findings []crdFinding
	var counters []counterObj
	val, qkey := LabelValue(incident), QuarantineKey(incident)
	meta := func(kind crdKind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(kind.gvr.GroupVersion().String())
		u.SetKind(kind.kind)
		u.SetName(name)
		if kind.namespaced {
			u.SetNamespace(ns)
		}
		u.SetLabels(map[string]string{managedBy: "eksir", IncidentKey(incident): val})
		return u
	}

	// Calico: a default-tier GlobalNetworkPolicy of order 0 denying all
	// precedes every allow of that tier with a higher order (and the
	// Kubernetes NetworkPolicies, which Calico orders at 1000).
	if np, gnp, ok := a.calico(); ok {
		onNode := slices.Contains(engines, engineCalico)
		var need bool
		for _, k := range []crdKind{np, gnp} {
			items, err := a.list(ctx, k, pv.ns)
			if err != nil {
				return nil, nil, err
			}
			for _, it := range items {
				if !calicoSelects(it, k, pv) || !rulesAllow(it.Object, "action") {
					continue
				}
				f := crdFinding{Object: "calico " + k.kind + " " + objName(it), Countered: onNode}
				tier, _, _ := unstructured.NestedString(it.Object, "spec", "tier")
				order := calicoOrder(it)
				switch {
				case !onNode:
					f.Why = "calico-node does not run on the pod's node"
				case tier != "" && tier != "default":
					f.Countered, f.Why = false, "it is in tier "+tier+", which eksir's default-tier deny does not precede"
				case order <= 0:
					f.Countered, f.Why = false, fmt.Sprintf("its order %v is not above eksir's order 0", order)
				}
				need = need || f.Countered
				findings = append(findings, f)
			}
		}
		if need {
			name := ObjectName("eksir-quarantine-", incident)
			if gnp.gvr.Group == calicoV1GNP.gvr.Group {
				// The CRD store names default-tier policies "default.<name>".
				name = "default." + name
			}
			u := meta(gnp, "", name)
			u.Object["spec"] = map[string]any{
				"tier": "default", "order": int64(0), "selector": fmt.Sprintf("%s == '%s'", qkey, val),
				"types":   []any{"Ingress", "Egress"},
				"ingress": []any{map[string]any{"action": "Deny"}},
				"egress":  []any{map[string]any{"action": "Deny"}},
			}
			counters = append(counters, counterObj{gnp, u})
		}
	}

	// Cilium: deny rules take precedence over allow rules, whichever
	// policy holds them.
	if a.served[ciliumCNP.gvr] || a.served[ciliumCCNP.gvr] {
		onNode := slices.Contains(engines, engineCilium)
		var need bool
		for _, k := range []crdKind{ciliumCNP, ciliumCCNP} {
			if !a.served[k.gvr] {
				continue
			}
			items, err := a.list(ctx, k, pv.ns)
			if err != nil {
				return nil, nil, err
			}
			for _, it := range items {
				if !ciliumAllowsPod(it, pv) {
					continue
				}
				f := crdFinding{Object: "cilium " + k.kind + " " + objName(it), Countered: onNode}
				if !onNode {
					f.Why = "cilium does not run on the pod's node"
				}
				need = need || onNode
				findings = append(findings, f)
			}
		}
		if need && a.served[ciliumCNP.gvr] {
			u := meta(ciliumCNP, pv.ns, ObjectName("eksir-quarantine-", incident))
			u.Object["spec"] = map[string]any{
				"endpointSelector": map[string]any{"matchLabels": map[string]any{qkey: val}},
				"ingressDeny":      []any{map[string]any{"fromEntities": []any{"all"}}},
				"egressDeny":       []any{map[string]any{"toEntities": []any{"all"}}},
			}
			counters = append(counters, counterObj{ciliumCNP, u})
		}
	}

	// AdminNetworkPolicy: a lower priority number wins; eksir's deny takes
	// one below the lowest allow that selects the pod.
	if a.served[adminNetPols.gvr] {
		onNode := slices.Contains(engines, engineCalico)
		items, err := a.list(ctx, adminNetPols, pv.ns)
		if err != nil {
			return nil, nil, err
		}
		lowest := int64(math.MaxInt64)
		var idx []int
		for _, it := range items {
			if !anpSelects(it, pv) || !rulesAllow(it.Object, "action") {
				continue
			}
			p, _, _ := unstructured.NestedInt64(it.Object, "spec", "priority")
			lowest = min(lowest, p)
			idx = append(idx, len(findings))
			findings = append(findings, crdFinding{Object: "AdminNetworkPolicy " + it.GetName(), Countered: onNode})
		}
		for _, i := range idx {
			switch {
			case !onNode:
				findings[i].Why = "no engine enforcing AdminNetworkPolicy (calico-node) runs on the pod's node"
			case lowest <= 0:
				findings[i].Countered, findings[i].Why = false, "an allow at priority 0 leaves no higher precedence for eksir's deny"
			}
		}
		if len(idx) > 0 && onNode && lowest > 0 {
			u := meta(adminNetPols, "", ObjectName("eksir-quarantine-", incident))
			u.Object["spec"] = map[string]any{
				"priority": lowest - 1,
				"subject": map[string]any{"pods": map[string]any{
					"namespaceSelector": map[string]any{"matchLabels": map[string]any{corev1.LabelMetadataName: pv.ns}},
					"podSelector":       map[string]any{"matchLabels": map[string]any{qkey: val}}}},
				"ingress": []any{map[string]any{"name": "eksir-deny-ingress", "action": "Deny", "from": []any{map[string]any{"namespaces": map[string]any{}}}}},
				"egress": []any{map[string]any{"name": "eksir-deny-egress", "action": "Deny", "to": []any{
					map[string]any{"namespaces": map[string]any{}}, map[string]any{"networks": []any{"0.0.0.0/0", "::/0"}}}}},
			}
			counters = append(counters, counterObj{adminNetPols, u})
		}
	}
	return findings, counters, nil
}

// list returns the kind's objects that eksir did not create.
func (a *crdAPI) list(ctx context.Context, k crdKind, ns string) ([]unstructured.Unstructured, error) {
	l, err := a.res(k, ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", k.gvr.GroupResource(), err)
	}
	var out []unstructured.Unstructured
	for _, it := range l.Items {
		if it.GetLabels()[managedBy] != "eksir" {
			out = append(out, it)
		}
	}
	return out, nil
}

func objName(u unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

// rulesAllow: does any ingress or egress rule of the spec allow?
func rulesAllow(obj map[string]any, field string) bool {
	for _, dir := range []string{"ingress", "egress"} {
		rules, _, _ := unstructured.NestedSlice(obj, "spec", dir)
		for _, r := range rules {
			if m, ok := r.(map[string]any); ok && strings.EqualFold(fmt.Sprint(m[field]), "allow") {
				return true
			}
		}
	}
	return false
}

// calicoOrder is the policy's order; none means last (+Inf).
func calicoOrder(u unstructured.Unstructured) float64 {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "order")
	if !ok {
		return math.Inf(1)
	}
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return math.Inf(1)
}

// calicoSelects evaluates a Calico policy's selectors against the pod as a
// Calico workload endpoint: its labels plus the namespace and service
// account labels Calico adds. A selector eksir cannot parse counts as
// selecting (the counter does not depend on it).
func calicoSelects(u unstructured.Unstructured, k crdKind, pv podView) bool {
	if k.namespaced && u.GetNamespace() != pv.ns {
		return false
	}
	ep := copyMap(pv.labels)
	if ep == nil {
		ep = map[string]string{}
	}
	ep["projectcalico.org/namespace"], ep["projectcalico.org/orchestrator"], ep["projectcalico.org/serviceaccount"] = pv.ns, "k8s", pv.sa
	match := func(field string, set map[string]string) bool {
		s, _, _ := unstructured.NestedString(u.Object, "spec", field)
		sel, err := parseCalicoSelector(s)
		return err != nil || sel(set)
	}
	nsSet := copyMap(pv.nsLabels)
	if nsSet == nil {
		nsSet = map[string]string{}
	}
	nsSet["projectcalico.org/name"] = pv.ns
	return match("selector", ep) && match("namespaceSelector", nsSet)
}

// ciliumAllowsPod: does a rule of the Cilium policy (spec or specs) select
// the pod with its endpointSelector and allow anything?
func ciliumAllowsPod(u unstructured.Unstructured, pv podView) bool {
	if u.GetNamespace() != "" && u.GetNamespace() != pv.ns {
		return false
	}
	var rules []map[string]any
	if m, ok, _ := unstructured.NestedMap(u.Object, "spec"); ok {
		rules = append(rules, m)
	}
	specs, _, _ := unstructured.NestedSlice(u.Object, "specs")
	for _, s := range specs {
		if m, ok := s.(map[string]any); ok {
			rules = append(rules, m)
		}
	}
	ep := copyMap(pv.labels)
	if ep == nil {
		ep = map[string]string{}
	}
	ep["io.kubernetes.pod.namespace"] = pv.ns
	ep["io.cilium.k8s.policy.serviceaccount"] = pv.sa
	for k, v := range pv.nsLabels {
		ep["io.cilium.k8s.namespace.labels."+k] = v
	}
	for _, r := range rules {
		es, ok := r["endpointSelector"]
		if !ok { // a nodeSelector rule is a host policy
			continue
		}
		ing, _ := r["ingress"].([]any)
		eg, _ := r["egress"].([]any)
		if len(ing) == 0 && len(eg) == 0 {
			continue
		}
		if sel, ok := ciliumSelector(es); !ok || selectorMatchesSet(sel, ep) {
			return true
		}
	}
	return false
}

// ciliumSelector converts an endpointSelector to a LabelSelector, with the
// source prefixes (k8s:, any:) dropped; ok is false when it cannot.
func ciliumSelector(v any) (*metav1.LabelSelector, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var sel metav1.LabelSelector
	if err := json.Unmarshal(b, &sel); err != nil {
		return nil, false
	}
	strip := func(k string) string {
		for _, p := range []string{"k8s:", "any:"} {
			k = strings.TrimPrefix(k, p)
		}
		return k
	}
	ml := map[string]string{}
	for k, v := range sel.MatchLabels {
		if strings.HasPrefix(k, "reserved:") {
			ml["eksir.io/never-matches"] = "reserved"
			continue
		}
		ml[strip(k)] = v
	}
	sel.MatchLabels = ml
	for i := range sel.MatchExpressions {
		sel.MatchExpressions[i].Key = strip(sel.MatchExpressions[i].Key)
	}
	return &sel, true
}

// anpSelects evaluates an AdminNetworkPolicy's subject against the pod.
func anpSelects(u unstructured.Unstructured, pv podView) bool {
	sel := func(path ...string) (*metav1.LabelSelector, bool) {
		v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
		if !ok {
			return nil, false
		}
		s, ok := ciliumSelector(v) // a plain LabelSelector: no prefixes to drop
		return s, ok
	}
	if s, ok := sel("spec", "subject", "namespaces"); ok {
		return selectorMatchesSet(s, pv.nsLabels)
	}
	nsSel, ok1 := sel("spec", "subject", "pods", "namespaceSelector")
	podSel, ok2 := sel("spec", "subject", "pods", "podSelector")
	if !ok1 || !ok2 {
		return false
	}
	return selectorMatchesSet(nsSel, pv.nsLabels) && selectorMatchesSet(podSel, pv.labels)
}

func selectorMatchesSet(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return true // unreadable: assume it selects
	}
	return s.Matches(labels.Set(set))
}

// ensureCounter creates or resets one counter object; it reports whether
// it changed anything.
func (a *crdAPI) ensureCounter(ctx context.Context, c counterObj, dry bool) (string, error) {
	r := a.res(c.kind, c.obj.GetNamespace())
	verb := ""
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := r.Get(ctx, c.obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := r.Create(ctx, c.obj.DeepCopy(), createOpts(dry)); err != nil {
				return fmt.Errorf("create %s: %w", c.name(), err)
			}
			verb = "create"
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", c.name(), err)
		}
		if equality.Semantic.DeepEqual(cur.Object["spec"], c.obj.Object["spec"]) {
			return nil
		}
		cur.Object["spec"] = c.obj.DeepCopy().Object["spec"]
		if _, err := r.Update(ctx, cur, updateOpts(dry)); err != nil {
			return fmt.Errorf("update %s: %w", c.name(), err)
		}
		verb = "update"
		return nil
	})
	return verb, err
}

// removeCounters deletes every counter object of the incident, found by
// its labels; recorded names that are gone are reported clean.
func (a *crdAPI) removeCounters(ctx context.Context, ns, incident string, recorded []string) ([]action.Restored, error) {
	var report []action.Restored
	seen := map[string]bool{}
	sel := labels.SelectorFromSet(labels.Set{managedBy: "eksir", IncidentKey(incident): LabelValue(incident)}).String()
	for _, k := range a.counterKinds() {
		l, err := a.res(k, ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return report, fmt.Errorf("list %s: %w", k.gvr.GroupResource(), err)
		}
		for _, it := range l.Items {
			c := counterObj{k, &it}
			err := a.res(k, it.GetNamespace()).Delete(ctx, it.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return report, fmt.Errorf("delete %s: %w", c.name(), err)
			}
			seen[c.name()] = true
			report = append(report, action.Restored{Object: c.name(), Outcome: action.OutcomeRestored, Detail: "deleted"})
		}
	}
	for _, n := range recorded {
		if !seen[n] {
			report = append(report, action.Restored{Object: n, Outcome: action.OutcomeClean, Detail: "gone"})
		}
	}
	return report, nil
}
