// Package collect holds the Kubernetes collection actions. Everything they
// acquire goes into the case through action.Env.Evidence, which hashes as it
// writes: logs, command output, checkpoint archives and memory images stream
// without being held whole in memory (API objects are encoded to JSON
// first). Nothing runs inside the suspect container.
package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// Register adds the collection actions to r.
func Register(r *action.Registry) {
	r.Register(Objects{}, PodLogs{}, Volatile{}, Checkpoint{}, NodeFiles{}, InstanceMetadata{}, CloudLogs{}, Memory{}, EBSSnapshot{})
}

// defaultConcurrency bounds the pods collected at once: enough to hide API
// latency, few enough to stay inside API priority-and-fairness limits.
const defaultConcurrency = 16

func concurrencyParam() action.Param {
	return action.Param{Name: "concurrency", Type: action.Int, Default: int64(defaultConcurrency), Doc: "pods collected at once"}
}

func limit(call action.Call) int {
	if n := call.Int("concurrency"); n > 0 {
		return int(n)
	}
	return defaultConcurrency
}

// CaptureOutputs are the outputs every collection step has, set by the
// shared store: "collected" lists the bag paths this run acquired,
// "missing" the items it could not acquire ("data/PATH: reason"), and
// "complete" is true when nothing is missing. Items collected by an earlier
// run are not acquired again and appear in neither list. The capture-first
// rule (requires_capture) tests "complete".
var CaptureOutputs = []string{"collected", "missing", "complete"}

func captureOutputs(extra ...string) []string { return append(extra, CaptureOutputs...) }

// store writes items, skipping those already collected in the case so that
// a resumed run does not collect twice but retries what was not collected;
// it gathers the paths written and recorded.
type store struct {
	env *action.Env
	mu  chan struct{}
	res []string
	// collected and missing are what this run acquired and could not
	// acquire ("data/PATH: reason").
	collected, missing []string
	// claimed holds the paths a goroutine of this run took: two pods
	// sharing a node or a service account must not both write (or both
	// record as not collected) the same item.
	claimed sync.Map
}

func newStore(env *action.Env) *store { return &store{env: env, mu: make(chan struct{}, 1)} }

// add notes an item this run wrote: acquired when reason is empty, else
// recorded as not collected for that reason.
func (s *store) add(p, reason string) {
	s.mu <- struct{}{}
	s.res = append(s.res, "data/"+p)
	if reason == "" {
		s.collected = append(s.collected, "data/"+p)
	} else {
		s.missing = append(s.missing, "data/"+p+": "+reason)
	}
	<-s.mu
}

// result is the step's result: the items written and the capture outputs,
// merged with the action's own outputs.
func (s *store) result(outputs map[string]any, warnings []string) action.Result {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	out := map[string]any{
		"collected": append([]string{}, s.collected...),
		"missing":   append([]string{}, s.missing...),
		"complete":  len(s.missing) == 0,
	}
	for k, v := range outputs {
		out[k] = v
	}
	return action.Result{Items: append([]string(nil), s.res...), Outputs: out, Warnings: warnings}
}

func (s *store) has(rel string) bool { return s.env.Evidence.Has(rel) }

// claim reports whether the caller is the one to acquire rel: it is not in
// the case yet and no other goroutine of this run took it.
func (s *store) claim(rel string) bool {
	if s.has(rel) {
		return false
	}
	_, taken := s.claimed.LoadOrStore(rel, true)
	return !taken
}

// json writes v as indented JSON at rel.
func (s *store) json(ctx context.Context, rel string, info evidence.ItemInfo, v any) error {
	if !s.claim(rel) {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", rel, err)
	}
	return s.reader(ctx, rel, info, bytes.NewReader(append(b, '\n')))
}

func (s *store) reader(ctx context.Context, rel string, info evidence.ItemInfo, r io.Reader) error {
	if _, err := s.env.Evidence.Add(ctx, rel, info, r); err != nil {
		// Two pods on one node both collect the node: the first wins.
		if errors.Is(err, evidence.ErrExists) {
			return nil
		}
		return fmt.Errorf("store %s: %w", rel, err)
	}
	s.add(rel, "")
	return nil
}

// stream runs fill with a hashing evidence writer; a failure aborts the
// item (no partial file) and is recorded as not collected with its reason.
func (s *store) stream(ctx context.Context, rel string, info evidence.ItemInfo, fill func(w io.Writer) error) error {
	if !s.claim(rel) {
		return nil
	}
	w, err := s.env.Evidence.Create(rel, info)
	if errors.Is(err, evidence.ErrExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	if ferr := fill(w); ferr != nil {
		w.Abort()
		if ctx.Err() != nil {
			return ferr
		}
		return s.recordNotCollected(rel, info, ferr.Error())
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("commit %s: %w", rel, err)
	}
	s.add(rel, "")
	return nil
}

func (s *store) notCollected(rel string, info evidence.ItemInfo, reason string) error {
	if !s.claim(rel) {
		return nil
	}
	return s.recordNotCollected(rel, info, reason)
}

func (s *store) recordNotCollected(rel string, info evidence.ItemInfo, reason string) error {
	if _, err := s.env.Evidence.NotCollected(rel, info, reason); err != nil {
		if errors.Is(err, evidence.ErrExists) {
			return nil // collected meanwhile
		}
		return fmt.Errorf("record %s not collected: %w", rel, err)
	}
	s.add(rel, reason)
	return nil
}

func isExists(err error) bool { return apierrors.IsAlreadyExists(err) }
