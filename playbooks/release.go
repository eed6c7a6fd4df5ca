package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/eksir/eksir/action"
)

// Release undoes the run's reversible steps in reverse order of their
// last journal record. A succeeded step is undone from the Undo record
// journaled with its result. A step that was started (its intent is
// journaled) but did not succeed, because it failed or is in doubt after a
// crash, may have changed part of what it meant to: it is undone from its
// intent's parameters and whatever the action left on the cluster's
// objects (the Undo record is nil). Every undo needs approval as a run's
// approve steps do, and each reports the objects it restored or found
// already clean. Evidence is never deleted: collect actions are not
// reversible.
func Release(ctx context.Context, reg *action.Registry, o Options) (*Summary, error) {
	o.defaults()
	st, c, _, err := fromJournal(ctx, reg, &o, "release")
	if err != nil {
		return nil, err
	}
	sum := &Summary{Playbook: c.Metadata.Name, Started: o.Now()}
	stop, work, done := o.contexts(ctx)
	defer done()
	for _, id := range st.releaseOrder() {
		cs, ok := c.steps[id]
		if !ok || !cs.spec.Reversible {
			continue
		}
		res, from, ok := st.releasable(id)
		if !ok {
			continue
		}
		line := StepSummary{ID: id, Target: cs.target, Action: cs.Action, Kind: cs.spec.Kind}
		if u, done := st.undone[id]; done && u.Status == StatusReleased {
			line.Status, line.Restored = StatusReleased, u.Restored
			sum.Steps = append(sum.Steps, line)
			continue
		}
		if stop.Err() != nil {
			line.Status, line.Error = StatusNotRun, "interrupted"
			sum.Steps = append(sum.Steps, line)
			sum.Interrupted = true
			continue
		}
		out, err := release(stop, work, cs, st.intents[id], res.Undo, from, o)
		if err != nil {
			return sum, err
		}
		line.Status, line.Error, line.Restored = out.Status, out.Error, out.Restored
		o.Observer.Event(Event{Time: o.Now(), Step: id, Action: cs.Action, State: out.Status, Err: out.Error})
		sum.Steps = append(sum.Steps, line)
	}
	// Grouped by target for the report; within a target, in undo order.
	sort.SliceStable(sum.Steps, func(i, j int) bool { return sum.Steps[i].Target < sum.Steps[j].Target })
	if sum.Interrupted {
		return sum, context.Canceled
	}
	return sum, nil
}

// releaseOrder is every step with an intent or a result, latest first.
func (st *journalState) releaseOrder() []string {
	ids := make([]string, 0, len(st.last))
	for id := range st.last {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return st.last[ids[i]] > st.last[ids[j]] })
	return ids
}

// releasable says whether release has something to undo for step id: its
// result (with a null Undo when there is no record) and, for the approval
// prompt, what the undo works from. A step that succeeded without an undo
// record changed nothing to undo; a step never started changed nothing.
func (st *journalState) releasable(id string) (StepResult, string, bool) {
	res, hasResult := st.results[id]
	if hasResult && res.Status == StatusSucceeded {
		return res, "the undo record", hasUndo(res.Undo)
	}
	if _, started := st.intents[id]; !started {
		return res, "", false
	}
	status := StatusInDoubt
	if hasResult {
		status = res.Status
	}
	return res, "the step's parameters and the incident's marks on the cluster (the step is " + status + ")", true
}

func hasUndo(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// release undoes one step: the prompt listens to stop, the undo runs
// under work.
func release(stop, work context.Context, cs *cstep, in Intent, undo json.RawMessage, from string, o Options) (StepResult, error) {
	out := StepResult{Step: cs.ID, Action: cs.Action}
	if cs.spec.RevokesCredential && !o.RestoreCredentials {
		out.Status, out.Error = StatusKept, "credential stays revoked; release with --restore-credentials to restore it"
		return out, nil
	}
	call, err := decodeCall(cs, in.Params)
	if err != nil {
		return out, err
	}
	if !hasUndo(undo) {
		undo = nil
	}
	if !o.approved(cs.ID) && !o.approved(cs.local) {
		ok := false
		if o.Approver != nil {
			detail := "from " + from
			if undo != nil {
				detail += ": " + string(undo)
			}
			p := action.Plan{Changes: []action.Change{{Verb: "undo", Object: cs.Action, Detail: detail}}}
			if ok, err = o.Approver.Approve(stop, cs.ID, cs.Action+" (undo)", p); err != nil {
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
	uctx, cancel := context.WithTimeout(work, cs.timeout)
	defer cancel()
	out.Started = o.Now().UTC().Format(time.RFC3339Nano)
	restored, err := cs.act.(action.Reverser).Undo(uctx, o.Env, call, undo)
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
	c, _, err := journaled(st, reg)
	if err == nil {
		order = c.Order
	}
	sum := &Summary{Playbook: st.start.Playbook, Started: st.startAt}
	for _, id := range order {
		res := st.results[id]
		line := StepSummary{ID: id, Action: res.Action, Status: st.status(id), Error: res.Error, Warnings: res.Warnings}
		if c != nil && c.steps[id] != nil {
			line.Target = c.steps[id].target
		}
		if line.Action == "" {
			line.Action = st.intents[id].Action
		}
		if u, ok := st.undone[id]; ok {
			line.Status, line.Restored = u.Status, u.Restored
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
