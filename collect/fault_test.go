package collect_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
)

// crashingEvidence cancels the run's context after n items, as a crash or
// Ctrl-C part-way through a step would.
type crashingEvidence struct {
	action.Evidence
	n      int32
	count  atomic.Int32
	cancel context.CancelFunc
}

func (e *crashingEvidence) Add(ctx context.Context, rel string, info evidence.ItemInfo, r io.Reader) (evidence.Item, error) {
	it, err := e.Evidence.Add(ctx, rel, info, r)
	if e.count.Add(1) == e.n {
		e.cancel()
	}
	return it, err
}

// A collection interrupted part-way resumes: the second run writes only
// what is missing, and the case ends with the same items as one clean run.
func TestObjectsResumeAfterInterruption(t *testing.T) {
	f := setup(t, 2, 3)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	env := *f.env
	env.Evidence = &crashingEvidence{Evidence: f.env.Evidence, n: 5, cancel: cancel}
	call := action.Call{Step: "test", Params: map[string]any{"namespace": f.ns, "selector": "app", "concurrency": int64(2)}}
	if _, err := (collect.Objects{}).Run(ctx, &env, call); err == nil {
		t.Fatal("interrupted run reported success")
	}
	partial := len(f.c.Items())
	res, err := (collect.Objects{}).Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if len(res.Items) == 0 || partial+len(res.Items) != len(f.c.Items()) {
		t.Errorf("partial %d + resumed %d != %d items", partial, len(res.Items), len(f.c.Items()))
	}
	for _, it := range f.c.Items() {
		// No controller-manager runs in the lab, so there is no default
		// ServiceAccount: recording that is right.
		if it.Status != evidence.StatusCollected && !strings.HasSuffix(it.Path, "/serviceaccounts/default.json") {
			t.Errorf("%s: %s %s", it.Path, it.Status, it.Reason)
		}
	}
	// A clean run elsewhere yields the same set of paths.
	clean := setupCase(t, f)
	if _, err := (collect.Objects{}).Run(t.Context(), clean, call); err != nil {
		t.Fatal(err)
	}
	if a, b := len(clean.Evidence.(*evidence.Case).Items()), len(f.c.Items()); a != b {
		t.Errorf("clean run %d items, resumed %d", a, b)
	}
	t.Logf("interrupted after %d items, resumed with %d more", partial, len(res.Items))
}

// withoutExec returns role without pods/exec: the API server refuses every
// exec, as it does for a responder whose role lacks it.
func withoutExec(role *rbacv1.ClusterRole) *rbacv1.ClusterRole {
	r := role.DeepCopy()
	var rules []rbacv1.PolicyRule
	for _, rule := range r.Rules {
		rule.Resources = slices.DeleteFunc(slices.Clone(rule.Resources), func(s string) bool { return s == "pods/exec" })
		if len(rule.Resources) > 0 {
			rules = append(rules, rule)
		}
	}
	r.Rules = rules
	return r
}

// A volatile capture whose every exec is refused is not complete: its
// outputs list the missing items with their reasons; a second run with
// exec allowed (a resume) acquires exactly those items, and the index then
// shows them collected while the custody log keeps both records.
func TestVolatileExecRefusedThenRetried(t *testing.T) {
	f := setup(t, 1, 2)
	role := action.ClusterRole("eksir", f.registry.Specs())
	sa := f.lab.AsServiceAccountNamed(t, "eksir-noexec", withoutExec(role))
	refused := *f.env
	refused.Kube, refused.RESTConfig = sa.Typed, sa.Config
	call := action.Call{Step: "volatile", Params: map[string]any{"pod": f.ns + "/" + f.pod}}
	for _, p := range (collect.Volatile{}).Spec().Params {
		if _, ok := call.Params[p.Name]; !ok && p.Default != nil {
			call.Params[p.Name] = p.Default
		}
	}
	res, err := (collect.Volatile{}).Run(t.Context(), &refused, call)
	if err != nil {
		t.Fatalf("refused run: %v", err)
	}
	missing, _ := res.Outputs["missing"].([]string)
	if res.Outputs["complete"] != false || len(missing) == 0 || len(res.Outputs["collected"].([]string)) != 0 {
		t.Fatalf("outputs with exec refused: %v", res.Outputs)
	}
	for _, m := range missing {
		if !strings.HasPrefix(m, "data/volatile/") || !strings.Contains(strings.ToLower(m), "forbidden") || !strings.Contains(m, "deliver the collector") {
			t.Errorf("missing item %q: want a volatile item and the refused delivery", m)
		}
	}
	records := func() map[string]int {
		n := map[string]int{}
		for _, r := range f.c.Log().Records() {
			n[r.Action]++
		}
		return n
	}
	before := records()
	if before[evidence.ActionNotCollected] != len(missing) || before[evidence.ActionAcquired] != 0 {
		t.Fatalf("custody records after the refused run: %v, want %d not-collected", before, len(missing))
	}
	for _, it := range f.c.Items() {
		if f.c.Has(strings.TrimPrefix(it.Path, "data/")) {
			t.Errorf("%s: not collected but Has", it.Path)
		}
	}

	res, err = (collect.Volatile{}).Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	collected, _ := res.Outputs["collected"].([]string)
	if res.Outputs["complete"] != true || len(collected) != len(missing) {
		t.Fatalf("retry outputs: %v, want the %d missing items collected", res.Outputs, len(missing))
	}
	for i, m := range missing {
		if p, _, _ := strings.Cut(m, ": "); !slices.Contains(collected, p) {
			t.Errorf("missing item %d (%s) not collected by the retry", i, p)
		}
	}
	after := records()
	if after[evidence.ActionNotCollected] != len(missing) || after[evidence.ActionAcquired] != len(missing) {
		t.Errorf("custody records after the retry: %v, want %d not-collected and %d acquired", after, len(missing), len(missing))
	}
	if items := f.c.Items(); len(items) != len(missing) {
		t.Errorf("%d items after the retry, want %d", len(items), len(missing))
	}
	for _, it := range f.c.Items() {
		if it.Status != evidence.StatusCollected {
			t.Errorf("%s: %s after the retry", it.Path, it.Status)
		}
	}
	// A third run finds nothing to do.
	res, err = (collect.Volatile{}).Run(t.Context(), f.env, call)
	if err != nil || res.Outputs["complete"] != true || len(res.Outputs["collected"].([]string)) != 0 || len(res.Items) != 0 {
		t.Errorf("third run: %v %v", res.Outputs, err)
	}
}
