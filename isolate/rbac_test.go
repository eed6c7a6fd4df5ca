package isolate_test

import (
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
)

// RBAC review: the three actions plan, run and release with every option
// that needs a permission, under a ServiceAccount bound to exactly the
// ClusterRole `eksir permissions --format rbac` generates from the full
// registry (collection and containment). An undeclared call fails with
// Forbidden; every plan's access checks must say allowed.
func TestGeneratedRoleSuffices(t *testing.T) {
	s := labtest.SeedScenario(t, 2, 2, func(r *action.Registry) { isolate.Register(r); collect.Register(r) })
	ctx := t.Context()
	steps := []struct {
		action string
		params map[string]any
	}{
		{"isolate.label", map[string]any{"pod": s.NS + "/" + s.Pod, "node": s.Node, "reason": "rbac review"}},
		{"isolate.cordon-node", map[string]any{"node": s.Node, "pod": s.NS + "/" + s.Pod, "evict-others": true, "timeout": time.Minute}},
		{"revoke.service-account", map[string]any{"service-account": s.NS + "/checkout-api", "recreate": true, "delete-tokens": true}},
	}
	for _, st := range steps {
		a, _ := s.Registry.Lookup(st.action)
		call := action.Call{Step: "rbac", Params: st.params}
		p, err := a.Plan(ctx, s.Env, call)
		if err != nil {
			t.Fatalf("%s plan: %v", st.action, err)
		}
		for _, c := range p.Checks {
			if !c.Allowed {
				t.Errorf("%s plan check denied: %+v", st.action, c)
			}
		}
		res, err := a.Run(ctx, s.Env, call)
		if err != nil {
			t.Fatalf("%s run: %v", st.action, err)
		}
		for _, undo := range [][]byte{res.Undo, nil} {
			if _, err := a.(action.Reverser).Undo(ctx, s.Env, call, undo); err != nil {
				t.Fatalf("%s release: %v", st.action, err)
			}
		}
	}
}
