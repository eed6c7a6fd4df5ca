package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	goldenfile "github.com/eksir/eksir/internal/golden"
)

// world is the in-memory state the test actions change, counting every
// side effect so tests can assert exactly-once.
type world struct {
	mu      sync.Mutex
	labels  map[string]string // target -> label value
	effects map[string]int    // action/target -> side effects
	fail    map[string]bool   // step IDs whose action fails
	// failAfter holds step IDs whose action fails after its change: a
	// half-applied containment.
	failAfter map[string]bool
	// marks is what a label action leaves on the target for its undo
	// without a record (the incident's annotation on a cluster object):
	// target -> value before the change.
	marks map[string]string
	// missing holds, per step ID, items a collection cannot acquire: the
	// step succeeds with complete false, as a capture whose execs are
	// refused does.
	missing map[string][]string
	block   chan struct{} // when set, actions wait on it
	// planWarnings are what label actions' plans warn of.
	planWarnings []string
}

func newWorld() *world {
	return &world{labels: map[string]string{}, effects: map[string]int{}, fail: map[string]bool{}, failAfter: map[string]bool{},
		marks: map[string]string{}, missing: map[string][]string{}}
}

func (w *world) effect(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.effects[k]++
}

func (w *world) count(k string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.effects[k]
}

// collectAct is a test-only collection action.
type collectAct struct {
	w        *world
	name     string
	volatile bool
}

func (a collectAct) Spec() action.Spec {
	return action.Spec{Name: a.name, Doc: "test collection", Kind: action.Collect, Needs: []action.Cloud{action.Kubernetes}, Volatile: a.volatile,
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Required: true, Doc: "target"},
			{Name: "lines", Type: action.Int, Default: int64(100), Doc: "lines"},
			{Name: "since", Type: action.Duration, Doc: "window"},
			{Name: "containers", Type: action.StringList, Doc: "containers"},
		},
		Outputs:     []string{"count", "collected", "missing", "complete"},
		Permissions: action.Permissions{Kube: []action.KubeRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}}
}

func (a collectAct) Plan(_ context.Context, _ *action.Env, c action.Call) (action.Plan, error) {
	return action.Plan{Changes: []action.Change{{Verb: "collect", Object: "pod " + c.String("pod"), Detail: "lines=" + jsonStr(c.Int("lines"))}},
		Checks: []action.PermissionCheck{{Permission: "get pods", Allowed: true}}}, nil
}

func (a collectAct) Run(ctx context.Context, _ *action.Env, c action.Call) (action.Result, error) {
	if a.w.block != nil {
		select {
		case <-a.w.block:
		case <-ctx.Done():
			return action.Result{}, ctx.Err()
		}
	}
	a.w.effect(a.name + "/" + c.String("pod"))
	if a.w.fail[c.Step] {
		return action.Result{}, errors.New("injected failure")
	}
	a.w.mu.Lock()
	missing := slices.Clone(a.w.missing[c.Step])
	a.w.mu.Unlock()
	return action.Result{Outputs: map[string]any{"count": 3, "collected": []string{}, "missing": missing, "complete": len(missing) == 0}}, nil
}

// labelAct is a test-only containment action: idempotent and reversible.
type labelAct struct {
	w    *world
	name string
	// revokes declares the action a credential revocation.
	revokes bool
	// preserves declares containment that destroys nothing (protection).
	preserves bool
}

type labelUndo struct {
	Target string `json:"target"`
	Old    string `json:"old"`
}

func (a labelAct) Spec() action.Spec {
	return action.Spec{Name: a.name, Doc: "test containment", Kind: action.Contain, Reversible: true, RevokesCredential: a.revokes, Preserves: a.preserves,
		Params: []action.Param{
			{Name: "target", Type: action.String, Required: true, Doc: "target"},
			{Name: "value", Type: action.String, Default: "quarantine", Enum: []string{"quarantine", "watch"}, Doc: "label value"},
		},
		Needs:       []action.Cloud{action.Kubernetes},
		Permissions: action.Permissions{Kube: []action.KubeRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"patch"}}}}}
}

func (a labelAct) Plan(_ context.Context, _ *action.Env, c action.Call) (action.Plan, error) {
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	done := a.w.labels[c.String("target")] == c.String("value")
	return action.Plan{Done: done, Warnings: slices.Clone(a.w.planWarnings), Changes: []action.Change{{Verb: "patch", Object: "label " + c.String("target"), Detail: "eksir=" + c.String("value")}},
		Checks: []action.PermissionCheck{{Permission: "patch pods", Allowed: true}}}, nil
}

func (a labelAct) Run(_ context.Context, _ *action.Env, c action.Call) (action.Result, error) {
	if a.w.fail[c.Step] {
		return action.Result{}, errors.New("injected failure")
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	t := c.String("target")
	old := a.w.labels[t]
	if old != c.String("value") { // idempotent: only change what is not in place
		if _, marked := a.w.marks[t]; !marked {
			a.w.marks[t] = old
		}
		a.w.labels[t] = c.String("value")
		a.w.effects[a.name+"/"+t]++
	}
	if a.w.failAfter[c.Step] {
		return action.Result{}, errors.New("injected failure after the change")
	}
	u, _ := json.Marshal(labelUndo{Target: t, Old: old})
	return action.Result{Undo: u, Warnings: []string{"no engine enforces " + t}}, nil
}

// Undo restores from the record, or without one from the call's target
// and the mark the run left on it.
func (a labelAct) Undo(_ context.Context, _ *action.Env, c action.Call, undo json.RawMessage) ([]action.Restored, error) {
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	var u labelUndo
	if undo == nil {
		u.Target = c.String("target")
		old, marked := a.w.marks[u.Target]
		if !marked {
			a.w.effects["clean:"+a.name+"/"+u.Target]++
			return []action.Restored{{Object: u.Target, Outcome: action.OutcomeClean}}, nil
		}
		u.Old = old
	} else if err := json.Unmarshal(undo, &u); err != nil {
		return nil, err
	}
	delete(a.w.marks, u.Target)
	a.w.labels[u.Target] = u.Old
	a.w.effects["undo:"+a.name+"/"+u.Target]++
	return []action.Restored{{Object: u.Target, Outcome: action.OutcomeRestored}}, nil
}

func jsonStr(v any) string { b, _ := json.Marshal(v); return string(b) }

func testRegistry(w *world) *action.Registry {
	r := action.NewRegistry()
	r.Register(
		collectAct{w: w, name: "test.collect"},
		collectAct{w: w, name: "test.volatile", volatile: true},
		labelAct{w: w, name: "test.label"},
		labelAct{w: w, name: "revoke.test", revokes: true},
		labelAct{w: w, name: "test.protect", preserves: true},
	)
	return r
}

// testCase opens a real case with a fresh key: the journal under test is
// the real signed custody log.
func testCase(t *testing.T) (*evidence.Case, string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "k.key")
	if _, _, err := evidence.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	s, err := evidence.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: filepath.Join(dir, "cases"), Incident: "INC-1", Signer: s, Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, key
}

func mustCheck(t *testing.T, reg *action.Registry, src string) *Checked {
	t.Helper()
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Validate(p, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func golden(t *testing.T, path string, got []byte) { t.Helper(); goldenfile.Check(t, path, got) }

func jsonIndent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

func mustDur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func mustTime(s string) time.Time {
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return v
}
