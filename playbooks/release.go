package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eksir/eksir/action"
)

// Release undoes the run's succeeded, reversible steps in reverse order of
// completion, from the Undo data journaled with their results. Every undo
// needs approval as a run's approve steps do. Evidence is never deleted:
// collect actions are not reversible.
func Release(ctx context.Context, reg *action.Registry, o Options) (*Summary, error) {
	o.defaults()
	st, c, _, err := fromJournal(ctx, reg, &o, "release")
	if err != nil {
		return nil, err
	}
	sum := &Summary{Playbook: c.Metadata.Name, Started: o.Now()}
	for i := len(st.order) - 1; i >= 0; i-- {
		id := st.order[i]
		res := st.results[id]
		cs, ok := c.steps[id]
		if !ok || res.Status != StatusSucceeded || !cs.spec.Reversible || len(res.Undo) == 0 || bytes.Equal(res.Undo, []byte("null")) {
			continue
		}
		line := StepSummary{ID: id, Action: cs.Action, Kind: cs.spec.Kind}
		if u, done := st.undone[id]; done && u.Status == StatusReleased {
			line.Status = StatusReleased
			sum.Steps = append(sum.Steps, line)
			continue
		}
		if ctx.Err() != nil {
			line.Status, line.Error = StatusNotRun, "interrupted"
			sum.Steps = append(sum.Steps, line)
			sum.Interrupted = true
			continue
		}
		out, err := release(ctx, cs, st.intents[id], res, o)
		if err != nil {
			return sum, err
		}
		line.Status, line.Error = out.Status, out.Error
		o.Observer.Event(Event{Time: o.Now(), Step: id, Action: cs.Action, State: out.Status, Err: out.Error})
		sum.Steps = append(sum.Steps, line)
	}
	if sum.Interrupted {
		return sum, context.Canceled
	}
	return sum, nil
}

func release(ctx context.Context, cs *cstep, in Intent, res StepResult, o Options) (StepResult, error) {
	out := StepResult{Step: cs.ID, Action: cs.Action}
	if cs.spec.RevokesCredential && !o.RestoreCredentials {
		out.Status, out.Error = StatusKept, "credential stays revoked; release with --restore-credentials to restore it"
		return out, nil
	}
	call, err := decodeCall(cs, in.Params)
	if err != nil {
		return out, err
	}
	if !o.approved(cs.ID) {
		ok := false
		if o.Approver != nil {
			p := action.Plan{Changes: []action.Change{{Verb: "undo", Object: cs.Action, Detail: string(res.Undo)}}}
			if ok, err = o.Approver.Approve(ctx, cs.ID, cs.Action+" (undo)", p); err != nil {
				return out, err
			}
		}
		if !ok {
			out.Status, out.Error = StatusNeedsApproval, "approval required: re-run release with --approve "+cs.ID+" or --yes"
			if _, err := o.Journal.Record(RecUndone, out, nil); err != nil {
				return out, fmt.Errorf("journal release of %s: %w", cs.ID, err)
			}
			return out, nil
		}
	}
	if _, err := o.Journal.Record(RecUndoStart, Intent{Step: cs.ID, Action: cs.Action, Params: in.Params}, nil); err != nil {
		return out, fmt.Errorf("journal release intent of %s: %w", cs.ID, err)
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cs.timeout)
	defer cancel()
	out.Started = o.Now().UTC().Format(time.RFC3339Nano)
	restored, err := cs.act.(action.Reverser).Undo(uctx, o.Env, call, res.Undo)
	out.Restored = restored
	if err != nil {
		out.Status, out.Error = StatusFailed, err.Error()
	} else {
		out.Status = StatusReleased
	}
	out.Finished = o.Now().UTC().Format(time.RFC3339Nano)
	if _, err := o.Journal.Record(RecUndone, out, nil); err != nil {
		return out, fmt.Errorf("journal release of %s: %w", cs.ID, err)
	}
	return out, nil
}

// decodeCall rebuilds a Call from journaled JSON parameters, restoring the
// declared Go types that JSON loses (int64, time.Duration, lists, maps).
func decodeCall(cs *cstep, raw json.RawMessage) (action.Call, error) {
	call := action.Call{Step: cs.ID, Params: map[string]any{}}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return call, fmt.Errorf("journaled parameters of %s: %w", cs.ID, err)
	}
	for _, p := range cs.spec.Params {
		r, ok := m[p.Name]
		if !ok {
			continue
		}
		v, err := p.FromJSON(r)
		call.Params[p.Name] = v
		if err != nil {
			return call, fmt.Errorf("journaled parameter %s of %s: %w", p.Name, cs.ID, err)
		}
	}
	return call, nil
}

// Status reports each step's state as the journal records it, in the
// playbook's order.
func Status(j Journal, reg *action.Registry) (*Summary, error) {
	st, err := readJournal(j)
	if err != nil {
		return nil, err
	}
	if st.start == nil {
		return nil, fmt.Errorf("%w: the case holds no playbook run", ErrInvalid)
	}
	order := st.order
	if c, _, err := journaled(st, reg); err == nil {
		order = c.Order
	}
	sum := &Summary{Playbook: st.start.Playbook, Started: st.startAt}
	for _, id := range order {
		res := st.results[id]
		line := StepSummary{ID: id, Action: res.Action, Status: st.status(id), Error: res.Error, Warnings: res.Warnings}
		if line.Action == "" {
			line.Action = st.intents[id].Action
		}
		if u, ok := st.undone[id]; ok {
			line.Status = u.Status
			if u.Status == StatusReleased {
				line.Error = ""
			}
		}
		if line.Status == "" {
			line.Status = "pending"
		}
		sum.Steps = append(sum.Steps, line)
	}
	return sum, nil
}
