package isolate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/isolate"
)

// envFor is the fixture's env for another incident.
func (f *fixture) envFor(incident string) *action.Env {
	e := *f.env
	e.Incident = incident + "-" + f.env.Incident
	return &e
}

func (f *fixture) getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := f.lab.Kube.Typed.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hasTaint(n *corev1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}

// Two incidents label and cordon one node; released in either order, the
// first release leaves the other's taint, labels, cordon and disruption
// annotations, and the second leaves the node as it was.
func TestTwoIncidentsOnOneNode(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	cordon, label := f.action(t, "isolate.cordon-node"), f.action(t, "isolate.label")
	for i, node := range []string{f.node, f.otherNode(t, f.world(t))} {
		a, b := f.envFor("a"), f.envFor("b")
		first, second := a, b
		if i == 1 {
			first, second = b, a
		}
		orig := f.getNode(t, node)
		call := f.call(map[string]any{"node": node})
		for _, env := range []*action.Env{a, b} {
			if env == b {
				p, err := cordon.Plan(ctx, env, call)
				if err != nil {
					t.Fatalf("plan b: %v", err)
				}
				if !strings.Contains(strings.Join(p.Warnings, "\n"), isolate.QuarantineKey(a.Incident)) {
					t.Errorf("plan of b does not show incident a: %v", p.Warnings)
				}
			}
			if _, err := label.Run(ctx, env, f.call(map[string]any{"node": node, "reason": env.Incident})); err != nil {
				t.Fatalf("label %s: %v", env.Incident, err)
			}
			if _, err := cordon.Run(ctx, env, call); err != nil {
				t.Fatalf("cordon %s: %v", env.Incident, err)
			}
		}
		for _, r := range []action.Reverser{label.(action.Reverser), cordon.(action.Reverser)} {
			res, err := r.Undo(ctx, first, call, nil)
			if err != nil || len(res) != 1 || res[0].Outcome != action.OutcomeRestored {
				t.Fatalf("release %s: %v %v", first.Incident, res, err)
			}
		}
		n := f.getNode(t, node)
		if !n.Spec.Unschedulable || !hasTaint(n, isolate.QuarantineKey(second.Incident)) || hasTaint(n, isolate.QuarantineKey(first.Incident)) ||
			n.Labels[isolate.QuarantineKey(second.Incident)] == "" || n.Labels[isolate.IncidentKey(second.Incident)] == "" ||
			n.Labels[isolate.IncidentKey(first.Incident)] != "" || n.Annotations[isolate.ReasonKey(second.Incident)] != second.Incident ||
			n.Annotations[isolate.DoNotDisrupt] != "true" || n.Annotations[isolate.ScaleDownDisabled] != "true" {
			t.Errorf("order %d: after releasing %s the node lost %s's containment or kept the first's: unschedulable=%v taints=%v labels=%v annotations=%v",
				i, first.Incident, second.Incident, n.Spec.Unschedulable, n.Spec.Taints, n.Labels, n.Annotations)
		}
		for _, r := range []action.Reverser{cordon.(action.Reverser), label.(action.Reverser)} {
			if _, err := r.Undo(ctx, second, call, nil); err != nil {
				t.Fatalf("release %s: %v", second.Incident, err)
			}
			// Idempotent: a second release finds nothing.
			if res, err := r.Undo(ctx, second, call, nil); err != nil || len(res) != 1 || res[0].Outcome != action.OutcomeClean {
				t.Errorf("second release: %v %v", res, err)
			}
		}
		diff(t, "node after both releases", nodeView(orig), nodeView(f.getNode(t, node)))
	}
}

// A node a person cordoned stays cordoned after the release.
func TestCordonKeepsForeignCordon(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	n := f.getNode(t, f.node)
	n.Spec.Unschedulable = true
	if _, err := admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	orig := f.getNode(t, f.node)
	a := f.action(t, "isolate.cordon-node")
	call := f.call(map[string]any{"node": f.node})
	if _, err := a.Run(ctx, f.env, call); err != nil {
		t.Fatal(err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, nil); err != nil {
		t.Fatal(err)
	}
	diff(t, "node after release", nodeView(orig), nodeView(f.getNode(t, f.node)))
}

func (f *fixture) bindings(t *testing.T) map[string]any {
	t.Helper()
	ctx, admin := t.Context(), f.lab.Kube.Typed
	out := map[string]any{}
	l, err := admin.RbacV1().RoleBindings(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range l.Items {
		normalise(&b.ObjectMeta)
		out["rb/"+b.Name] = []any{b.ObjectMeta, b.Subjects, b.RoleRef}
	}
	c, err := admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.Items {
		if strings.HasPrefix(b.Name, f.lab.Prefix) {
			normalise(&b.ObjectMeta)
			out["crb/"+b.Name] = []any{b.ObjectMeta, b.Subjects, b.RoleRef}
		}
	}
	return out
}

func names(bs map[string]any, ns, sa string) []string {
	var out []string
	for k, v := range bs {
		for _, s := range v.([]any)[1].([]rbacv1.Subject) {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && (s.Namespace == ns || s.Namespace == "") {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Two incidents revoke one account from the same bindings: the subject
// comes back only when the last incident holding it removed is released,
// in either order; others' changes to the subjects since stay.
func TestTwoIncidentsRevokeOneAccount(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	rev := f.action(t, "revoke.service-account")
	call := f.call(map[string]any{"service-account": f.ns + "/checkout-api"})
	before := f.bindings(t)
	granted := names(before, f.ns, "checkout-api")
	if len(granted) == 0 {
		t.Fatal("the seeded account has no binding")
	}
	for order := 0; order < 2; order++ {
		a, b := f.envFor("a"), f.envFor("b")
		if _, err := rev.Run(ctx, a, call); err != nil {
			t.Fatal(err)
		}
		p, err := rev.Plan(ctx, b, call)
		if err != nil || p.Done || !strings.Contains(p.Changes[0].Detail, "another incident") {
			t.Fatalf("plan of b: %+v %v", p, err)
		}
		resB, err := rev.Run(ctx, b, call)
		if err != nil {
			t.Fatal(err)
		}
		first, second := a, b
		if order == 1 {
			first, second = b, a
		}
		// A person adds a subject meanwhile: no release removes it.
		rb, err := admin.RbacV1().RoleBindings(f.ns).Get(ctx, strings.TrimPrefix(firstRB(granted), "rb/"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		extra := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "auditor"}
		rb.Subjects = append(rb.Subjects, extra)
		if _, err := admin.RbacV1().RoleBindings(f.ns).Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		var undo []byte
		if first == b {
			undo = resB.Undo
		}
		if _, err := rev.(action.Reverser).Undo(ctx, first, call, undo); err != nil {
			t.Fatal(err)
		}
		if got := names(f.bindings(t), f.ns, "checkout-api"); len(got) != 0 {
			t.Errorf("order %d: after releasing one incident the account is back in %v", order, got)
		}
		res, err := rev.(action.Reverser).Undo(ctx, second, call, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("release %s: %+v", second.Incident, res)
		if got := names(f.bindings(t), f.ns, "checkout-api"); !slices.Equal(got, granted) {
			t.Errorf("order %d: after both releases the account is in %v, want %v", order, got, granted)
		}
		rb, _ = admin.RbacV1().RoleBindings(f.ns).Get(ctx, rb.Name, metav1.GetOptions{})
		if !slices.Contains(rb.Subjects, extra) {
			t.Errorf("the subject a person added is gone: %v", rb.Subjects)
		}
		rb.Subjects = slices.DeleteFunc(rb.Subjects, func(s rbacv1.Subject) bool { return s == extra })
		if _, err := admin.RbacV1().RoleBindings(f.ns).Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		diff(t, "bindings after both releases", before, f.bindings(t))
	}
}

func firstRB(keys []string) string {
	for _, k := range keys {
		if strings.HasPrefix(k, "rb/") {
			return k
		}
	}
	return ""
}

// revoke.service-account on an account that does not exist: bad input
// (exit 2), nothing changed.
func TestRevokeMissingServiceAccount(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	rev := f.action(t, "revoke.service-account")
	before := f.bindings(t)
	call := f.call(map[string]any{"service-account": f.ns + "/checkout-apy", "recreate": true, "delete-tokens": true})
	if _, err := rev.Plan(ctx, f.env, call); !errors.Is(err, action.ErrBadInput) || !errors.Is(err, evidence.ErrInvalidInput) {
		t.Errorf("plan: %v, want bad input", err)
	}
	if _, err := rev.Run(ctx, f.env, call); !errors.Is(err, action.ErrBadInput) {
		t.Errorf("run: %v, want bad input", err)
	} else {
		t.Logf("run: %v", err)
	}
	if _, err := rev.Run(ctx, f.env, f.call(map[string]any{"service-account": "no-slash"})); !errors.Is(err, action.ErrBadInput) {
		t.Errorf("run with a bad reference: %v, want bad input", err)
	}
	diff(t, "bindings", before, f.bindings(t))
}

// The plan lists what revocation leaves: a group grant to
// system:serviceaccounts (with the roles aggregated into its ClusterRole),
// bound tokens, IRSA.
func TestRevokePlanListsRemainingGrants(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	p := f.lab.Prefix
	agg := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: p + "agg"},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg": f.ns}}}}}
	part := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: p + "part", Labels: map[string]string{"agg": f.ns}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: p + "all-sas"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: agg.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts"}}}
	for _, cr := range []*rbacv1.ClusterRole{agg, part} {
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.RbacV1().ClusterRoles().Delete(context.Background(), cr.Name, metav1.DeleteOptions{}) })
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	sa, err := admin.CoreV1().ServiceAccounts(f.ns).Get(ctx, "checkout-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sa.Annotations == nil {
		sa.Annotations = map[string]string{}
	}
	sa.Annotations[isolate.IRSARoleAnnotation] = "arn:aws:iam::123456789012:role/checkout"
	if _, err := admin.CoreV1().ServiceAccounts(f.ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err := f.action(t, "revoke.service-account").Plan(ctx, f.env, f.call(map[string]any{"service-account": f.ns + "/checkout-api"}))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(plan.Warnings, "\n")
	for _, want := range []string{"clusterrolebinding " + crb.Name + " gives clusterrole " + agg.Name + " (aggregating clusterroles " + part.Name + ") to group system:serviceaccounts",
		"eksir does not remove group grants", "up to 1 h", "arn:aws:iam::123456789012:role/checkout", "Pod Identity"} {
		if !strings.Contains(w, want) {
			t.Errorf("plan warnings lack %q:\n%s", want, w)
		}
	}
}

// recreate: a new UID (tokens of the old one are refused), the old object
// in the case; release keeps the account with its metadata, and creates it
// again from the saved object if it is gone.
func TestRevokeRecreate(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	rev := f.action(t, "revoke.service-account")
	sas := admin.CoreV1().ServiceAccounts(f.ns)
	old, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tok, err := sas.CreateToken(ctx, "checkout-api", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	whoami := func() error {
		cfg := rest.AnonymousClientConfig(f.lab.Kube.Config)
		cfg.BearerToken = tok.Status.Token
		kc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	}
	if err := whoami(); err != nil {
		t.Fatalf("token before recreate: %v", err)
	}
	call := f.call(map[string]any{"service-account": f.ns + "/checkout-api", "recreate": true})
	res, err := rev.Run(ctx, f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	neu, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if neu.UID == old.UID {
		t.Error("same UID after recreate")
	}
	// The API server may answer from its token cache for a few seconds.
	start := time.Now()
	for whoami() == nil {
		if time.Since(start) > time.Minute {
			t.Fatal("a token of the old account still authenticates")
		}
		time.Sleep(time.Second)
	}
	t.Logf("old token refused after %s", time.Since(start).Round(time.Second))
	c := f.env.Evidence.(*evidence.Case)
	if b, err := os.ReadFile(filepath.Join(c.Dir(), "data", "k8s", f.ns, "serviceaccounts", "checkout-api.before-recreate.json")); err != nil || !strings.Contains(string(b), `"name": "checkout-api"`) {
		t.Errorf("old object not in the case: %v %s", err, b)
	}
	if p, err := rev.Plan(ctx, f.env, call); err != nil || !p.Done {
		t.Errorf("plan after run: %+v %v", p, err)
	}
	if _, err := rev.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	after, _ := sas.Get(ctx, "checkout-api", metav1.GetOptions{})
	if after.UID != neu.UID || !mapsEqual(after.Labels, old.Labels) || !mapsEqual(after.Annotations, old.Annotations) {
		t.Errorf("after release: uid %s labels %v annotations %v, want labels %v annotations %v", after.UID, after.Labels, after.Annotations, old.Labels, old.Annotations)
	}
	// Gone since: the release creates it from the saved object.
	if _, err := rev.Run(ctx, f.env, call); err != nil {
		t.Fatal(err)
	}
	if err := sas.Delete(ctx, "checkout-api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := rev.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release: %+v", out)
	if again, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{}); err != nil || !mapsEqual(again.Labels, old.Labels) {
		t.Errorf("not created again: %v %v", err, again)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// evict-others without the suspect: bad input, nothing changed.
func TestCordonEvictNeedsSuspect(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	a := f.action(t, "isolate.cordon-node")
	orig := f.getNode(t, f.node)
	call := f.call(map[string]any{"node": f.node, "evict-others": true})
	if _, err := a.Plan(ctx, f.env, call); !errors.Is(err, action.ErrBadInput) {
		t.Errorf("plan: %v", err)
	}
	if _, err := a.Run(ctx, f.env, call); !errors.Is(err, action.ErrBadInput) {
		t.Errorf("run: %v", err)
	}
	diff(t, "node", nodeView(orig), nodeView(f.getNode(t, f.node)))
	if _, err := a.Plan(ctx, f.env, f.call(map[string]any{"node": "no-such-node"})); !errors.Is(err, action.ErrBadInput) {
		t.Errorf("plan of a missing node: %v", err)
	}
}

// killKube is a real client whose calls after a point fail as if eksir
// had been killed there: node patches (the cordon after the taint) and
// the second ClusterRoleBinding or node update.
type killKube struct {
	kubernetes.Interface
	killed *bool
}

func (k killKube) CoreV1() corev1client.CoreV1Interface { return killCore{k.Interface.CoreV1(), k} }
func (k killKube) RbacV1() rbacv1client.RbacV1Interface { return killRbac{k.Interface.RbacV1(), k} }

type killCore struct {
	corev1client.CoreV1Interface
	k killKube
}

func (c killCore) Nodes() corev1client.NodeInterface {
	return killNodes{c.CoreV1Interface.Nodes(), c.k}
}

type killNodes struct {
	corev1client.NodeInterface
	k killKube
}

func (n killNodes) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*corev1.Node, error) {
	*n.k.killed = true
	return nil, errKilled
}

func (n killNodes) Update(ctx context.Context, node *corev1.Node, opts metav1.UpdateOptions) (*corev1.Node, error) {
	if *n.k.killed {
		return nil, errKilled
	}
	return n.NodeInterface.Update(ctx, node, opts)
}

type killRbac struct {
	rbacv1client.RbacV1Interface
	k killKube
}

func (r killRbac) RoleBindings(ns string) rbacv1client.RoleBindingInterface {
	return killRB{r.RbacV1Interface.RoleBindings(ns), r.k}
}

type killRB struct {
	rbacv1client.RoleBindingInterface
	k killKube
}

func (b killRB) Update(ctx context.Context, rb *rbacv1.RoleBinding, opts metav1.UpdateOptions) (*rbacv1.RoleBinding, error) {
	if *b.k.killed {
		return nil, errKilled
	}
	out, err := b.RoleBindingInterface.Update(ctx, rb, opts)
	if len(opts.DryRun) == 0 {
		*b.k.killed = true
	}
	return out, err
}

// Steps stopped half-way return no undo record; the release works from the
// call and the incident's annotations, and leaves every object as it was.
func TestReleaseAfterStepKilledHalfway(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	origNode := f.getNode(t, f.node)
	before := f.world(t)
	var killed bool
	env := *f.env
	env.Kube = killKube{Interface: f.env.Kube, killed: &killed}

	// Cordon: tainted and recorded, killed at the cordon.
	cordon := f.action(t, "isolate.cordon-node")
	ccall := f.call(map[string]any{"node": f.node})
	if _, err := cordon.Run(ctx, &env, ccall); !errors.Is(err, errKilled) {
		t.Fatalf("cordon: %v", err)
	}
	if n := f.getNode(t, f.node); !hasTaint(n, isolate.QuarantineKey(env.Incident)) || n.Spec.Unschedulable {
		t.Fatalf("not half-way: %+v", n.Spec)
	}
	res, err := cordon.(action.Reverser).Undo(ctx, f.env, ccall, nil)
	if err != nil || len(res) != 1 || res[0].Outcome != action.OutcomeRestored {
		t.Fatalf("release cordon: %v %v", res, err)
	}
	diff(t, "node after release", nodeView(origNode), nodeView(f.getNode(t, f.node)))

	// Label: the pod is labelled, the node update is killed.
	label := f.action(t, "isolate.label")
	lcall := f.call(map[string]any{"pod": f.ns + "/" + f.suspect, "node": f.node})
	killed = true
	if _, err := label.Run(ctx, &env, lcall); !errors.Is(err, errKilled) {
		t.Fatalf("label: %v", err)
	}
	if p := f.world(t).pods[f.suspect]; p.Labels[isolate.IncidentKey(env.Incident)] == "" {
		t.Fatal("pod not labelled")
	}
	res, err = label.(action.Reverser).Undo(ctx, f.env, lcall, nil)
	if err != nil || len(res) != 2 || res[0].Outcome != action.OutcomeRestored || res[1].Outcome != action.OutcomeClean {
		t.Fatalf("release label: %+v %v", res, err)
	}
	diff(t, "pods after release", podsAndPolicies(before), podsAndPolicies(f.world(t)))
	diff(t, "node after release", nodeView(origNode), nodeView(f.getNode(t, f.node)))

	// Revoke: a second RoleBinding naming the account; the first update
	// succeeds, the second is killed.
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "zz-second", Namespace: f.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "checkout-api", Namespace: f.ns}}}
	if _, err := admin.RbacV1().RoleBindings(f.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bindings := f.bindings(t)
	killed = false
	rev := f.action(t, "revoke.service-account")
	rcall := f.call(map[string]any{"service-account": f.ns + "/checkout-api"})
	if _, err := rev.Run(ctx, &env, rcall); !errors.Is(err, errKilled) {
		t.Fatalf("revoke: %v", err)
	}
	if got := names(f.bindings(t), f.ns, "checkout-api"); len(got) == len(names(bindings, f.ns, "checkout-api")) {
		t.Fatalf("no binding changed before the kill: %v", got)
	}
	res, err = rev.(action.Reverser).Undo(ctx, f.env, rcall, nil)
	if err != nil || len(res) == 0 {
		t.Fatalf("release revoke: %+v %v", res, err)
	}
	t.Logf("release: %+v", res)
	diff(t, "bindings after release", bindings, f.bindings(t))
}

func (c killCore) ServiceAccounts(ns string) corev1client.ServiceAccountInterface {
	return killSAs{c.CoreV1Interface.ServiceAccounts(ns), c.k}
}

type killSAs struct {
	corev1client.ServiceAccountInterface
	k killKube
}

func (s killSAs) Create(ctx context.Context, sa *corev1.ServiceAccount, opts metav1.CreateOptions) (*corev1.ServiceAccount, error) {
	if *s.k.killed {
		return nil, errKilled
	}
	return s.ServiceAccountInterface.Create(ctx, sa, opts)
}

// recreate stopped between the delete and the create: the account exists
// only in the case. A release with no record creates it from there; so
// does the next run.
func TestRevokeRecreateKilledBetweenDeleteAndCreate(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	sas := admin.CoreV1().ServiceAccounts(f.ns)
	old, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The first RoleBinding update sets killed: the account's create fails.
	killed := false
	env := *f.env
	env.Kube = killKube{Interface: f.env.Kube, killed: &killed}
	rev := f.action(t, "revoke.service-account")
	call := f.call(map[string]any{"service-account": f.ns + "/checkout-api", "recreate": true})
	if _, err := rev.Run(ctx, &env, call); !errors.Is(err, errKilled) {
		t.Fatalf("run: %v", err)
	}
	if _, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{}); err == nil {
		t.Fatal("the account was not deleted")
	}
	if p, err := rev.Plan(ctx, f.env, call); err != nil || p.Done {
		t.Errorf("plan after the kill: %+v %v", p, err)
	}
	res, err := rev.(action.Reverser).Undo(ctx, f.env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release: %+v", res)
	got, err := sas.Get(ctx, "checkout-api", metav1.GetOptions{})
	if err != nil || !mapsEqual(got.Labels, old.Labels) || !mapsEqual(got.Annotations, old.Annotations) {
		t.Fatalf("not created again as it was: %v %+v", err, got)
	}
	diff(t, "bindings after release", names(f.bindings(t), f.ns, "checkout-api") != nil, true)
}
