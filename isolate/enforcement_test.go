package isolate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
)

// engine runs a policy engine's DaemonSet pod on node.
func (f *fixture) engine(t *testing.T, engine, node string, o labtest.EngineOptions) {
	t.Helper()
	f.lab.RunEngine(t, engine, node, o)
}

func (f *fixture) podCall(pod string, extra map[string]any) action.Call {
	p := map[string]any{"pod": f.ns + "/" + pod}
	for k, v := range extra {
		p[k] = v
	}
	return f.call(p)
}

func joined(ss []string) string { return strings.Join(ss, "\n") }

// setNodeLabel changes a label of the suspect's node as an admin would.
func (f *fixture) setNodeLabel(t *testing.T, node, key, value string) {
	t.Helper()
	ctx, admin := t.Context(), f.lab.Kube.Typed
	n, err := admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels[key] = value
	if _, err := admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// otherNode is a seeded node other than the suspect's.
func (f *fixture) otherNode(t *testing.T, w world) string {
	t.Helper()
	for _, p := range w.pods {
		if p.Spec.NodeName != "" && p.Spec.NodeName != f.node {
			return p.Spec.NodeName
		}
	}
	t.Fatal("no second node seeded")
	return ""
}

// A target no NetworkPolicy can contain fails the step before any change:
// host networking, a Fargate node, a Windows node, and a node without an
// engine while another node has one (what a cluster-wide first-match
// check got wrong).
func TestPodNetworkNotEnforceable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prep   func(t *testing.T, f *fixture) string // returns the target pod
		reason string
	}{
		{"host-network", func(t *testing.T, f *fixture) string {
			f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "node-exporter-x1", Labels: map[string]string{"app": "checkout-api"}},
				Spec: corev1.PodSpec{NodeName: f.node, HostNetwork: true, Containers: []corev1.Container{{Name: "c", Image: "public.ecr.aws/docker/library/busybox:1.36"}}}}
			if _, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			return p.Name
		}, "hostNetwork"},
		{"fargate", func(t *testing.T, f *fixture) string {
			f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
			f.setNodeLabel(t, f.node, "eks.amazonaws.com/compute-type", "fargate")
			return f.suspect
		}, "Fargate"},
		{"windows", func(t *testing.T, f *fixture) string {
			f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
			f.setNodeLabel(t, f.node, "kubernetes.io/os", "windows")
			return f.suspect
		}, "Windows"},
		{"engine-on-another-node", func(t *testing.T, f *fixture) string {
			f.engine(t, labtest.EngineAWSNode, f.otherNode(t, f.world(t)), labtest.EngineOptions{})
			f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{NetworkPolicyDisabled: true})
			return f.suspect
		}, "no NetworkPolicy engine runs on the pod's node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			ctx := t.Context()
			a := f.action(t, "isolate.pod-network")
			target := tc.prep(t, f)
			call := f.podCall(target, nil)
			before := f.world(t)

			plan, err := a.Plan(ctx, f.env, call)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if plan.Done || len(plan.Changes) != 0 || !strings.Contains(joined(plan.Warnings), "THE STEP WILL FAIL") || !strings.Contains(joined(plan.Warnings), tc.reason) {
				t.Errorf("plan: want no changes, not done, a will-fail warning naming %q; got %+v", tc.reason, plan)
			}
			res, err := a.Run(ctx, f.env, call)
			if err == nil {
				t.Fatalf("run succeeded on a not-enforceable target: %+v", res)
			}
			if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "allow-unenforced") {
				t.Errorf("error does not name the reason %q and the way out: %v", tc.reason, err)
			}
			if !strings.Contains(err.Error(), "quarantine security group (isolate.instance-network") {
				t.Errorf("error does not name the instance's AWS containment: %v", err)
			}
			t.Logf("run: %v", err)
			// kwok writes pod status; metadata and spec must be untouched.
			diff(t, "cluster after the failed run", podsAndPolicies(before), podsAndPolicies(f.world(t)))

			// The playbook may accept it: the policies go in, with the warnings.
			call = f.podCall(target, map[string]any{"allow-unenforced": true})
			res, err = a.Run(ctx, f.env, call)
			if err != nil {
				t.Fatalf("run with allow-unenforced: %v", err)
			}
			if res.Outputs["enforcement"] != isolate.NotEnforceable || len(res.Warnings) == 0 {
				t.Errorf("outputs %v warnings %v", res.Outputs, res.Warnings)
			}
			if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
				t.Fatalf("undo: %v", err)
			}
			diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
		})
	}
}

// Enforcement follows the engine pods on the suspect's own node, and the
// VPC CNI agent's owner-keyed state makes a sibling replica on the same
// node a limitation the plan names.
func TestPodNetworkEnforcementPerNode(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	a := f.action(t, "isolate.pod-network")
	call := f.podCall(f.suspect, nil)
	w := f.world(t)
	_, sibling, _ := f.roles(t, w)
	if sibling.Spec.NodeName == f.node {
		t.Fatalf("seed layout changed: the sibling %s shares the suspect's node", sibling.Name)
	}
	f.engine(t, labtest.EngineCilium, sibling.Spec.NodeName, labtest.EngineOptions{})
	if _, err := a.Run(ctx, f.env, call); err == nil || !strings.Contains(err.Error(), "no NetworkPolicy engine runs on the pod's node") {
		t.Fatalf("engine on another node only: want not-enforceable, got %v", err)
	}

	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
	plan, err := a.Plan(ctx, f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(joined(plan.Warnings), "UNVERIFIED") || strings.Contains(joined(plan.Warnings), "FAIL") {
		t.Errorf("plan with the agent on the node and no sibling there: %v", plan.Warnings)
	}
	if !strings.Contains(joined(plan.Warnings), "conntrack") {
		t.Errorf("plan: no conntrack warning: %v", plan.Warnings)
	}
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Outputs["enforcement"] != isolate.Enforced || res.Outputs["engine"] != "aws-vpc-cni" {
		t.Errorf("outputs: %v", res.Outputs)
	}
	after := f.world(t)
	suspect, sib, frontend := f.roles(t, after)
	if allowed(after.policies, frontend, suspect, after.nsLabels) || allowed(after.policies, suspect, frontend, after.nsLabels) {
		t.Error("suspect not isolated per the evaluator")
	}
	if !allowed(after.policies, frontend, sib, after.nsLabels) {
		t.Error("sibling lost its traffic")
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	diff(t, "pods and policies after undo", podsAndPolicies(w), podsAndPolicies(f.world(t)))

	// A replica of the same ReplicaSet lands on the suspect's node.
	twin := sibling.DeepCopy()
	twin.ObjectMeta = metav1.ObjectMeta{Name: sibling.Name + "-twin", Labels: sibling.Labels, OwnerReferences: sibling.OwnerReferences}
	twin.Spec.NodeName = f.node
	twin.Status = corev1.PodStatus{}
	if _, err := admin.CoreV1().Pods(f.ns).Create(ctx, twin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err = a.Plan(ctx, f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	ws := joined(plan.Warnings)
	if !strings.Contains(ws, "UNVERIFIED") || !strings.Contains(ws, twin.Name) || !strings.Contains(ws, "remove-from-endpoints: true") {
		t.Errorf("plan with a sibling on the node: want an unverified warning naming %s and the remedies, got %v", twin.Name, plan.Warnings)
	}
	res, err = a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	reasons, _ := res.Outputs["enforcement_reasons"].([]string)
	if res.Outputs["enforcement"] != isolate.Unverified || !strings.Contains(joined(reasons), twin.Name) {
		t.Errorf("outputs: %v", res.Outputs)
	}
	t.Logf("reasons: %v", reasons)
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
}

var (
	calicoGNP = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "globalnetworkpolicies"}
	ciliumCNP = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	ciliumCCN = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
	anpGVR    = schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "adminnetworkpolicies"}
)

func obj(gvr schema.GroupVersionResource, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(gvr.GroupVersion().String())
	u.SetKind(kind)
	u.SetName(name)
	u.SetNamespace(ns)
	return u
}

// Allow policies in Calico, Cilium and AdminNetworkPolicy CRDs selecting
// the suspect are found and countered with per-incident denies of higher
// precedence, read back from the API server; release removes exactly those.
func TestPodNetworkCRDAllowsCountered(t *testing.T) {
	f := setup(t)
	f.lab.InstallPolicyCRDs(t)
	ctx, dyn := t.Context(), f.lab.Kube.Dynamic
	a := f.action(t, "isolate.pod-network")
	call := f.podCall(f.suspect, nil)
	p := f.lab.Prefix
	allowCalico := obj(calicoGNP, "GlobalNetworkPolicy", "", "default."+p+"allow-checkout", map[string]any{
		"order": int64(100), "selector": "app == 'checkout-api' && projectcalico.org/namespace == '" + f.ns + "'",
		"types": []any{"Ingress"}, "ingress": []any{map[string]any{"action": "Allow"}}})
	allowCilium := obj(ciliumCNP, "CiliumNetworkPolicy", f.ns, "allow-world-to-checkout", map[string]any{
		"endpointSelector": map[string]any{"matchLabels": map[string]any{"k8s:app": "checkout-api"}},
		"ingress":          []any{map[string]any{"fromEntities": []any{"world"}}}})
	otherCilium := obj(ciliumCCN, "CiliumClusterwideNetworkPolicy", "", p+"allow-frontend", map[string]any{
		"endpointSelector": map[string]any{"matchLabels": map[string]any{"k8s:app": "frontend", "k8s:io.kubernetes.pod.namespace": f.ns}},
		"ingress":          []any{map[string]any{"fromEntities": []any{"world"}}}})
	allowANP := obj(anpGVR, "AdminNetworkPolicy", "", p+"allow-ns", map[string]any{
		"priority": int64(20), "subject": map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": f.ns}}},
		"ingress": []any{map[string]any{"name": "all", "action": "Allow", "from": []any{map[string]any{"namespaces": map[string]any{}}}}}})
	for _, o := range []struct {
		gvr schema.GroupVersionResource
		u   *unstructured.Unstructured
	}{{calicoGNP, allowCalico}, {ciliumCNP, allowCilium}, {ciliumCCN, otherCilium}, {anpGVR, allowANP}} {
		var err error
		if o.u.GetNamespace() != "" {
			_, err = dyn.Resource(o.gvr).Namespace(o.u.GetNamespace()).Create(ctx, o.u, metav1.CreateOptions{})
		} else {
			_, err = dyn.Resource(o.gvr).Create(ctx, o.u, metav1.CreateOptions{})
			name, gvr := o.u.GetName(), o.gvr
			t.Cleanup(func() { dyn.Resource(gvr).Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
		if err != nil {
			t.Fatalf("create %s: %v", o.u.GetName(), err)
		}
	}
	crdState := func() map[string]any {
		out := map[string]any{}
		for _, g := range []schema.GroupVersionResource{calicoGNP, ciliumCNP, ciliumCCN, anpGVR} {
			l, err := dyn.Resource(g).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range l.Items {
				if it.GetNamespace() == f.ns || strings.HasPrefix(it.GetName(), p) || strings.HasPrefix(it.GetName(), "default."+p) ||
					strings.Contains(it.GetName(), "eksir-quarantine-inc-"+strings.TrimSuffix(p, "-")) {
					out[g.Resource+"/"+it.GetName()] = it.Object["spec"]
				}
			}
		}
		return out
	}
	beforeCRD, before := crdState(), f.world(t)

	// Calico runs on the node, Cilium does not: the Cilium allow stays in
	// force, uncountered.
	f.engine(t, labtest.EngineCalico, f.node, labtest.EngineOptions{})
	plan, err := a.Plan(ctx, f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	ws := joined(plan.Warnings)
	if !strings.Contains(ws, "UNVERIFIED: cilium CiliumNetworkPolicy "+f.ns+"/allow-world-to-checkout") || strings.Contains(ws, p+"allow-frontend") {
		t.Errorf("plan without cilium on the node: %v", plan.Warnings)
	}
	if !strings.Contains(ws, "GlobalNetworkPolicy default."+p+"allow-checkout allows traffic of the pod: countered") {
		t.Errorf("plan: the Calico allow is not reported countered: %v", plan.Warnings)
	}

	f.engine(t, labtest.EngineCilium, f.node, labtest.EngineOptions{})
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Outputs["enforcement"] != isolate.Enforced {
		t.Errorf("enforcement %v, reasons %v", res.Outputs["enforcement"], res.Outputs["enforcement_reasons"])
	}
	t.Logf("countered: %v", res.Outputs["countered"])
	name := isolate.ObjectName("eksir-quarantine-", f.env.Incident)
	qk, qv := isolate.QuarantineKey(f.env.Incident), isolate.LabelValue(f.env.Incident)
	suspect := f.world(t).pods[f.suspect]
	if suspect.Labels[qk] != qv {
		t.Fatalf("suspect not labelled: %v", suspect.Labels)
	}

	gnp, err := dyn.Resource(calicoGNP).Get(ctx, "default."+name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("calico counter: %v", err)
	}
	order, _, _ := unstructured.NestedInt64(gnp.Object, "spec", "order")
	sel, _, _ := unstructured.NestedString(gnp.Object, "spec", "selector")
	ing, _, _ := unstructured.NestedSlice(gnp.Object, "spec", "ingress")
	eg, _, _ := unstructured.NestedSlice(gnp.Object, "spec", "egress")
	if order != 0 || sel != fmt.Sprintf("%s == '%s'", qk, qv) || len(ing) != 1 || len(eg) != 1 ||
		ing[0].(map[string]any)["action"] != "Deny" || eg[0].(map[string]any)["action"] != "Deny" {
		t.Errorf("calico counter spec: %v", gnp.Object["spec"])
	}
	// Precedence, judged here: lower order first, the deny selects the pod.
	if allowOrder, _, _ := unstructured.NestedInt64(allowCalico.Object, "spec", "order"); order >= allowOrder {
		t.Errorf("calico counter order %d does not precede the allow's %d", order, allowOrder)
	}

	cnp, err := dyn.Resource(ciliumCNP).Namespace(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("cilium counter: %v", err)
	}
	ml, _, _ := unstructured.NestedStringMap(cnp.Object, "spec", "endpointSelector", "matchLabels")
	ideny, _, _ := unstructured.NestedSlice(cnp.Object, "spec", "ingressDeny")
	edeny, _, _ := unstructured.NestedSlice(cnp.Object, "spec", "egressDeny")
	if len(ml) != 1 || suspect.Labels[qk] != ml[qk] || len(ideny) != 1 || len(edeny) != 1 {
		t.Errorf("cilium counter spec: %v", cnp.Object["spec"])
	}

	anp, err := dyn.Resource(anpGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ANP counter: %v", err)
	}
	prio, _, _ := unstructured.NestedInt64(anp.Object, "spec", "priority")
	podSel, _, _ := unstructured.NestedStringMap(anp.Object, "spec", "subject", "pods", "podSelector", "matchLabels")
	if prio != 19 || podSel[qk] != qv {
		t.Errorf("ANP counter spec: %v", anp.Object["spec"])
	}
	for _, u := range []*unstructured.Unstructured{gnp, cnp, anp} {
		if u.GetLabels()[isolate.IncidentKey(f.env.Incident)] != qv {
			t.Errorf("%s lacks the incident label: %v", u.GetName(), u.GetLabels())
		}
	}
	after := f.world(t)
	s, _, fe := f.roles(t, after)
	if allowed(after.policies, fe, s, after.nsLabels) {
		t.Error("suspect reachable per the NetworkPolicy evaluator")
	}

	// Idempotent: a second run changes nothing.
	if plan, err := a.Plan(ctx, f.env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: done=%v changes=%v err=%v", plan.Done, plan.Changes, err)
	}
	// Released without the record, as after a step in doubt: the counters
	// are found by the incident's labels.
	report, err := a.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatalf("undo: %v", err)
	}
	t.Logf("undo: %+v", report)
	got := map[string]string{}
	for _, r := range report {
		got[r.Object] = r.Outcome
	}
	for _, c := range res.Outputs["countered"].([]string) {
		if got[c] != action.OutcomeRestored {
			t.Errorf("undo report: %s is %q", c, got[c])
		}
	}
	diff(t, "CRD policies after undo", beforeCRD, crdState())
	diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
}

// Two incidents on two pods behind the same NetworkPolicy, released in
// either order: the other stays contained and its expression stays on the
// shared policy; after both, the policy is as it was.
func TestPodNetworkTwoIncidents(t *testing.T) {
	for _, first := range []string{"a", "b"} {
		t.Run("release-"+first+"-first", func(t *testing.T) {
			f := setup(t)
			ctx := t.Context()
			a := f.action(t, "isolate.pod-network")
			before := f.world(t)
			suspect, sibling, _ := f.roles(t, before)
			f.engine(t, labtest.EngineCalico, suspect.Spec.NodeName, labtest.EngineOptions{})
			f.engine(t, labtest.EngineCalico, sibling.Spec.NodeName, labtest.EngineOptions{})
			envA, envB := *f.env, *f.env
			envB.Incident = f.env.Incident + "-b"
			type inc struct {
				env  *action.Env
				pod  string
				call action.Call
				undo []byte
			}
			incs := map[string]*inc{"a": {env: &envA, pod: suspect.Name}, "b": {env: &envB, pod: sibling.Name}}
			for _, k := range []string{"a", "b"} {
				in := incs[k]
				in.call = f.podCall(in.pod, nil)
				if k == "b" {
					plan, err := a.Plan(ctx, in.env, in.call)
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(joined(plan.Warnings), "ANOTHER OPEN INCIDENT: networkpolicy "+f.ns+"/allow-frontend-to-checkout-api") {
						t.Errorf("plan of b: the shared policy's other incident is not shown: %v", plan.Warnings)
					}
				}
				res, err := a.Run(ctx, in.env, in.call)
				if err != nil {
					t.Fatalf("run %s: %v", k, err)
				}
				in.undo = res.Undo
			}
			isolated := func(w world, pod string) bool {
				p := w.pods[pod]
				_, _, fe := f.roles(t, w)
				return !allowed(w.policies, fe, p, w.nsLabels) && !allowed(w.policies, p, fe, w.nsLabels)
			}
			w := f.world(t)
			if !isolated(w, suspect.Name) || !isolated(w, sibling.Name) {
				t.Fatal("both pods should be isolated")
			}
			second := map[string]string{"a": "b", "b": "a"}[first]
			if _, err := a.(action.Reverser).Undo(ctx, incs[first].env, incs[first].call, incs[first].undo); err != nil {
				t.Fatalf("undo %s: %v", first, err)
			}
			w = f.world(t)
			if !isolated(w, incs[second].pod) {
				t.Errorf("after releasing %s, %s's pod is no longer isolated", first, second)
			}
			if isolated(w, incs[first].pod) {
				t.Errorf("after releasing %s, its pod is still isolated", first)
			}
			shared := policyNamed(t, w, "allow-frontend-to-checkout-api")
			if !hasDNE(shared, isolate.QuarantineKey(incs[second].env.Incident)) || hasDNE(shared, isolate.QuarantineKey(incs[first].env.Incident)) {
				t.Errorf("shared policy after releasing %s: %+v", first, shared.Spec.PodSelector)
			}
			if _, err := a.(action.Reverser).Undo(ctx, incs[second].env, incs[second].call, incs[second].undo); err != nil {
				t.Fatalf("undo %s: %v", second, err)
			}
			diff(t, "pods and policies after both releases", podsAndPolicies(before), podsAndPolicies(f.world(t)))
		})
	}
}

func policyNamed(t *testing.T, w world, name string) networkingv1.NetworkPolicy {
	t.Helper()
	for _, np := range w.policies {
		if np.Name == name {
			return np
		}
	}
	t.Fatalf("policy %s not found", name)
	return networkingv1.NetworkPolicy{}
}

func hasDNE(np networkingv1.NetworkPolicy, key string) bool {
	return slices.ContainsFunc(np.Spec.PodSelector.MatchExpressions, func(e metav1.LabelSelectorRequirement) bool {
		return e.Key == key && e.Operator == metav1.LabelSelectorOpDoesNotExist
	})
}

// failingPolicies wraps a real client: every NetworkPolicy Create fails,
// as a step killed after labelling the pod would leave things.
type failingPolicies struct {
	kubernetes.Interface
	creates *atomic.Int32
}

func (k failingPolicies) NetworkingV1() networkingv1client.NetworkingV1Interface {
	return failingNet{k.Interface.NetworkingV1(), k.creates}
}

type failingNet struct {
	networkingv1client.NetworkingV1Interface
	creates *atomic.Int32
}

func (n failingNet) NetworkPolicies(ns string) networkingv1client.NetworkPolicyInterface {
	return failingNP{n.NetworkingV1Interface.NetworkPolicies(ns), n.creates}
}

type failingNP struct {
	networkingv1client.NetworkPolicyInterface
	creates *atomic.Int32
}

var errKilled = errors.New("step killed")

func (p failingNP) Create(context.Context, *networkingv1.NetworkPolicy, metav1.CreateOptions) (*networkingv1.NetworkPolicy, error) {
	p.creates.Add(1)
	return nil, errKilled
}

// A step that dies after labelling the pod returns no undo record; release
// from the call and the cluster's annotations leaves it clean and reports
// each object.
func TestPodNetworkUndoWithoutRecord(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
	a := f.action(t, "isolate.pod-network")
	call := f.podCall(f.suspect, map[string]any{"remove-from-endpoints": true})
	before := f.world(t)
	var creates atomic.Int32
	env := *f.env
	env.Kube = failingPolicies{f.env.Kube, &creates}
	if _, err := a.Run(ctx, &env, call); !errors.Is(err, errKilled) {
		t.Fatalf("run: want the injected failure, got %v", err)
	}
	if creates.Load() == 0 {
		t.Fatal("the policy create was never attempted")
	}
	half := f.world(t).pods[f.suspect]
	if half.Labels[isolate.QuarantineKey(f.env.Incident)] == "" || half.Labels["app"] != "" {
		t.Fatalf("the step did not get half-way: %v", half.Labels)
	}
	report, err := a.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatalf("undo without record: %v", err)
	}
	t.Logf("report: %+v", report)
	outcome := map[string]string{}
	for _, r := range report {
		outcome[r.Object] = r.Outcome
	}
	name := isolate.ObjectName("eksir-quarantine-", f.env.Incident)
	if outcome["pod "+f.ns+"/"+f.suspect] != action.OutcomeRestored || outcome["networkpolicy "+f.ns+"/"+name] != action.OutcomeClean {
		t.Errorf("report: %+v", report)
	}
	diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))

	// A complete run released without its record comes back clean too.
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	_ = res
	report, err = a.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range report {
		if r.Outcome != action.OutcomeRestored {
			t.Errorf("after a full run, %s: %s", r.Object, r.Outcome)
		}
	}
	diff(t, "pods and policies after the second undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
	// And again: everything already clean.
	report, err = a.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range report {
		if r.Outcome != action.OutcomeClean {
			t.Errorf("third undo, %s: %s", r.Object, r.Outcome)
		}
	}
}
