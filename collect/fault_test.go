package collect_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

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
