package isolate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// fixture is a seeded crypto-miner scenario (2 nodes × 2 pods: the suspect
// and its sibling replica, two frontend pods) and an action.Env whose
// client is a ServiceAccount bound to the generated ClusterRole.
type fixture struct {
	lab      *labtest.Env
	env      *action.Env
	ns       string
	suspect  string
	node     string
	registry *action.Registry
}

func setup(t *testing.T) *fixture {
	t.Helper()
	s := labtest.SeedScenario(t, 2, 2, isolate.Register)
	return &fixture{lab: s.Lab, env: s.Env, ns: s.NS, suspect: s.Pod, node: s.Node, registry: s.Registry}
}

func (f *fixture) call(params map[string]any) action.Call {
	return action.Call{Step: "test", Params: params}
}

func (f *fixture) action(t *testing.T, name string) action.Action {
	a, ok := f.registry.Lookup(name)
	if !ok {
		t.Fatalf("action %s not registered", name)
	}
	return a
}

// world is the namespace's pods and policies, as the admin sees them.
type world struct {
	pods     map[string]corev1.Pod
	policies []networkingv1.NetworkPolicy
	nsLabels map[string]map[string]string
}

func (f *fixture) world(t *testing.T) world {
	t.Helper()
	ctx, kc := t.Context(), f.lab.Kube.Typed
	pods, err := kc.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nps, err := kc.NetworkingV1().NetworkPolicies(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj, err := kc.CoreV1().Namespaces().Get(ctx, f.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := world{pods: map[string]corev1.Pod{}, policies: nps.Items, nsLabels: map[string]map[string]string{f.ns: nsObj.Labels}}
	for _, p := range pods.Items {
		w.pods[p.Name] = p
	}
	return w
}

// roles names the seeded pods: suspect, sibling replica, a frontend pod.
func (f *fixture) roles(t *testing.T, w world) (suspect, sibling, frontend corev1.Pod) {
	t.Helper()
	suspect = w.pods[f.suspect]
	for _, p := range w.pods {
		switch {
		case p.Name == f.suspect:
		case strings.HasPrefix(p.Name, "checkout-api-"):
			sibling = p
		case strings.HasPrefix(p.Name, "frontend-"):
			frontend = p
		}
	}
	if suspect.Name == "" || sibling.Name == "" || frontend.Name == "" {
		t.Fatalf("seeded pods not found: %v", w.pods)
	}
	return
}

func versions(w world) map[string]string {
	out := map[string]string{}
	for _, p := range w.pods {
		out["pod/"+p.Name] = p.ResourceVersion
	}
	for _, np := range w.policies {
		out["networkpolicy/"+np.Name] = np.ResourceVersion
	}
	return out
}

// normalise strips what the API server changes on every write.
func normalise(m *metav1.ObjectMeta) {
	m.ResourceVersion, m.ManagedFields, m.Generation = "", nil, 0
}

func podsAndPolicies(w world) map[string]any {
	out := map[string]any{}
	for _, p := range w.pods {
		p := p.DeepCopy()
		normalise(&p.ObjectMeta)
		out["pod/"+p.Name] = []any{p.ObjectMeta, p.Spec}
	}
	for _, np := range w.policies {
		np := np.DeepCopy()
		normalise(&np.ObjectMeta)
		out["networkpolicy/"+np.Name] = []any{np.ObjectMeta, np.Spec}
	}
	return out
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		a, _ := json.MarshalIndent(want, "", " ")
		b, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("%s differs:\nwant %s\n got %s", what, a, b)
	}
}

func TestPodNetwork(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	a := f.action(t, "isolate.pod-network")
	call := f.call(map[string]any{"pod": f.ns + "/" + f.suspect})
	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})

	before := f.world(t)
	suspect, sibling, frontend := f.roles(t, before)
	if !allowed(before.policies, frontend, suspect, before.nsLabels) || !allowed(before.policies, frontend, sibling, before.nsLabels) {
		t.Fatal("before: the frontend should reach both replicas")
	}
	t.Logf("before: suspect selected by %v, sibling by %v", selecting(before.policies, suspect), selecting(before.policies, sibling))

	plan, err := a.Plan(ctx, f.env, call)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if plan.Done || len(plan.Changes) < 3 {
		t.Errorf("plan: want pod label, policy create and neutralisations, got %+v", plan)
	}
	for _, c := range plan.Checks {
		if !c.Allowed {
			t.Errorf("plan check not allowed: %+v", c)
		}
	}
	if ws := strings.Join(plan.Warnings, "\n"); strings.Contains(ws, "FAIL") || strings.Contains(ws, "UNVERIFIED") {
		t.Errorf("plan: the agent runs on the suspect's node, want it enforced, got %v", plan.Warnings)
	}
	diff(t, "cluster after plan", podsAndPolicies(before), podsAndPolicies(f.world(t)))

	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after := f.world(t)
	suspect, sibling, frontend = f.roles(t, after)
	if got := selecting(after.policies, suspect); len(got) != 1 || !strings.HasPrefix(got[0], "eksir-quarantine-") {
		t.Errorf("after: suspect selected by %v, want the quarantine policy alone", got)
	}
	if allowed(after.policies, frontend, suspect, after.nsLabels) || allowed(after.policies, suspect, frontend, after.nsLabels) ||
		allowed(after.policies, sibling, suspect, after.nsLabels) {
		t.Error("after: the suspect is still reachable or can still reach out")
	}
	if !allowed(after.policies, frontend, sibling, after.nsLabels) {
		t.Error("after: the sibling replica lost its frontend traffic")
	}
	if got := selecting(after.policies, sibling); !reflect.DeepEqual(got, selecting(before.policies, sibling)) {
		t.Errorf("after: sibling selected by %v, before by %v", got, selecting(before.policies, sibling))
	}
	t.Logf("after: suspect selected by %v, sibling by %v", selecting(after.policies, suspect), selecting(after.policies, sibling))

	// Idempotency: the plan is done and a second run writes nothing.
	if plan, err := a.Plan(ctx, f.env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: done=%v err=%v changes=%v", plan.Done, err, plan.Changes)
	}
	res2, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	diff(t, "resourceVersions after second run", versions(after), versions(f.world(t)))
	if string(res.Undo) != string(res2.Undo) {
		t.Errorf("undo differs between runs: %s vs %s", res.Undo, res2.Undo)
	}

	undoer := a.(action.Reverser)
	for i := 0; i < 2; i++ { // Undo is idempotent too
		if _, err := undoer.Undo(ctx, f.env, call, res.Undo); err != nil {
			t.Fatalf("undo %d: %v", i, err)
		}
	}
	diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
}

// With remove-from-endpoints the pod leaves its Service and ReplicaSet
// selectors; the release puts every label back.
func TestPodNetworkRemoveFromEndpoints(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	a := f.action(t, "isolate.pod-network")
	call := f.call(map[string]any{"pod": f.ns + "/" + f.suspect, "remove-from-endpoints": true, "allow-namespaces": []string{"forensics"}, "allow-cidrs": []string{"10.99.0.0/16"}})
	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
	before := f.world(t)
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after := f.world(t)
	p := after.pods[f.suspect]
	if _, ok := p.Labels["app"]; ok {
		t.Errorf("app label still on the pod: %v", p.Labels)
	}
	if _, ok := p.Labels["pod-template-hash"]; ok {
		t.Errorf("pod-template-hash still on the pod: %v", p.Labels)
	}
	if p.Labels[isolate.QuarantineKey(f.env.Incident)] == "" {
		t.Errorf("no quarantine label: %v", p.Labels)
	}
	// The allow-list admits the forensics namespace.
	forensic := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "forensics"}}
	if !allowed(after.policies, forensic, p, map[string]map[string]string{"forensics": {corev1.LabelMetadataName: "forensics"}}) {
		t.Error("allow-list namespace cannot reach the suspect")
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatalf("undo: %v", err)
	}
	diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
}

func nodeView(n *corev1.Node) any {
	n = n.DeepCopy()
	normalise(&n.ObjectMeta)
	return []any{n.ObjectMeta, n.Spec}
}

func TestCordonNode(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	a := f.action(t, "isolate.cordon-node")
	call := f.call(map[string]any{"node": f.node, "pod": f.ns + "/" + f.suspect, "evict-others": true, "timeout": time.Minute})
	orig, err := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := a.Plan(ctx, f.env, call)
	if err != nil || plan.Done {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	n, err := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Spec.Unschedulable || n.Annotations[isolate.DoNotDisrupt] != "true" || n.Labels[isolate.QuarantineKey(f.env.Incident)] == "" {
		t.Errorf("node not cordoned/annotated/labelled: %+v %v %v", n.Spec, n.Annotations, n.Labels)
	}
	for _, tt := range n.Spec.Taints {
		if tt.Effect == corev1.TaintEffectNoExecute {
			t.Errorf("NoExecute taint: %+v", tt)
		}
	}
	// The suspect stays; its node neighbours are evicted.
	if _, err := admin.CoreV1().Pods(f.ns).Get(ctx, f.suspect, metav1.GetOptions{}); err != nil {
		t.Errorf("suspect gone: %v", err)
	}
	var out struct{ Evicted []string }
	json.Unmarshal(res.Undo, &out)
	if len(out.Evicted) == 0 {
		t.Error("nothing evicted")
	}
	for _, e := range out.Evicted {
		if strings.HasSuffix(e, "/"+f.suspect) {
			t.Errorf("suspect evicted")
		}
	}
	t.Logf("evicted %v", out.Evicted)

	rv := n.ResourceVersion
	if plan, err := a.Plan(ctx, f.env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: %+v %v", plan, err)
	}
	if _, err := a.Run(ctx, f.env, call); err != nil {
		t.Fatalf("second run: %v", err)
	}
	// kwok heartbeats write node status, so compare metadata+spec.
	n2, _ := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	diff(t, "node after second run", nodeView(n), nodeView(n2))
	_ = rv
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatalf("undo: %v", err)
	}
	n3, _ := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	diff(t, "node after undo", nodeView(orig), nodeView(n3))
}

func TestLabel(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	a := f.action(t, "isolate.label")
	call := f.call(map[string]any{"pod": f.ns + "/" + f.suspect, "node": f.node, "reason": "crypto-miner alert"})
	before := f.world(t)
	origNode, _ := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	p := f.world(t).pods[f.suspect]
	if p.Labels[isolate.IncidentKey(f.env.Incident)] != f.env.Incident || p.Annotations[isolate.ReasonKey(f.env.Incident)] != "crypto-miner alert" || p.Annotations[isolate.ResponderKey(f.env.Incident)] != "tester" || p.Annotations[isolate.TimeKey(f.env.Incident)] == "" {
		t.Errorf("pod labels %v annotations %v", p.Labels, p.Annotations)
	}
	mid := f.world(t)
	if plan, err := a.Plan(ctx, f.env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: %+v %v", plan, err)
	}
	if _, err := a.Run(ctx, f.env, call); err != nil {
		t.Fatal(err)
	}
	diff(t, "resourceVersions after second run", versions(mid), versions(f.world(t)))
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatalf("undo: %v", err)
	}
	diff(t, "pods after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
	n, _ := admin.CoreV1().Nodes().Get(ctx, f.node, metav1.GetOptions{})
	diff(t, "node after undo", nodeView(origNode), nodeView(n))
}

func TestRevokeServiceAccount(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	a := f.action(t, "revoke.service-account")
	sa := f.ns + "/checkout-api"
	// A legacy token Secret, as clusters before 1.24 minted.
	tok, err := admin.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "checkout-api-token-abcde",
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "checkout-api"}}, Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{"token": []byte("SECRET-TOKEN-VALUE"), "ca.crt": []byte("ca")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create token secret: %v", err)
	}
	_ = tok
	rbs := func() map[string]any {
		out := map[string]any{}
		l, _ := admin.RbacV1().RoleBindings(f.ns).List(ctx, metav1.ListOptions{})
		for _, b := range l.Items {
			normalise(&b.ObjectMeta)
			out["rb/"+b.Name] = []any{b.ObjectMeta, b.Subjects, b.RoleRef}
		}
		c, _ := admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
		for _, b := range c.Items {
			if strings.HasPrefix(b.Name, f.lab.Prefix) {
				normalise(&b.ObjectMeta)
				out["crb/"+b.Name] = []any{b.ObjectMeta, b.Subjects, b.RoleRef}
			}
		}
		return out
	}
	before := rbs()
	call := f.call(map[string]any{"service-account": sa, "delete-tokens": true})
	plan, err := a.Plan(ctx, f.env, call)
	if err != nil || plan.Done || len(plan.Changes) != 3 {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for k, v := range rbs() {
		for _, s := range v.([]any)[1].([]rbacv1.Subject) {
			if s.Kind == "ServiceAccount" && s.Name == "checkout-api" {
				t.Errorf("%s still names the service account", k)
			}
		}
	}
	if _, err := admin.CoreV1().Secrets(f.ns).Get(ctx, "checkout-api-token-abcde", metav1.GetOptions{}); err == nil {
		t.Error("token secret not deleted")
	}
	c := f.env.Evidence.(*evidence.Case)
	rec := filepath.Join(c.Dir(), "data", "k8s", "revoked-tokens", f.ns, "checkout-api-token-abcde.json")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatalf("token metadata not recorded: %v", err)
	}
	if strings.Contains(string(b), "SECRET-TOKEN-VALUE") || strings.Contains(string(b), "U0VDUkVU") {
		t.Error("token value recorded")
	}
	if plan, err := a.Plan(ctx, f.env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: %+v %v", plan, err)
	}
	if _, err := a.Run(ctx, f.env, call); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatalf("undo: %v", err)
	}
	diff(t, "bindings after undo", before, rbs())
}
