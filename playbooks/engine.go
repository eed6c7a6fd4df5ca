package playbooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"golang.org/x/sync/errgroup"

	"github.com/eksir/eksir/action"
)

// Approver asks a person whether a step may make the changes its plan
// shows. Nil in Options means there is no one to ask (no terminal).
type Approver interface {
	Approve(ctx context.Context, step, actionName string, p action.Plan) (bool, error)
}

// Event is one thing that happened during a run, for live output.
type Event struct {
	Time   time.Time
	Step   string
	Action string
	// State is a step status, "running", or "approval" while asking.
	State    string
	Err      string
	Duration time.Duration
	// Done and Total count the run's steps, for a progress bar.
	Done, Total int
	// Warnings are the action's, for example that no NetworkPolicy engine
	// enforces the quarantine policy: they must reach the responder.
	Warnings []string
}

// Observer receives events. It must be safe for concurrent use.
type Observer interface{ Event(Event) }

type nopObserver struct{}

func (nopObserver) Event(Event) {}

// Options configure Run, Resume and Release.
type Options struct {
	// Env is what actions may touch. Its clients may be left nil when a
	// Connector is given: the engine then connects to exactly the clouds
	// the playbook's actions and targets declare (for resume and release,
	// the journaled playbook's), so an incident that used only Kubernetes
	// needs no AWS configuration.
	Env       *action.Env
	Connector action.Connector
	Journal   Journal
	Approver  Approver
	// Yes approves every step; Approved approves the named steps.
	Yes      bool
	Approved []string
	// ApprovedBy names who approves (answers prompts, passes --approve or
	// --yes); journaled with each approval. Empty: the custody actor.
	ApprovedBy string
	// Parallel bounds concurrently running steps; 4 when 0.
	Parallel int
	Observer Observer
	Drill    bool
	// RestoreCredentials lets release undo credential revocations.
	RestoreCredentials bool
	// ContainWithoutCapture lets a step run although a capture step it
	// requires (requires_capture) failed or is incomplete: the
	// responder's decision, journaled as a RecContainWithoutCapture record
	// naming the step, the missing items and who decided, and shown as a
	// warning of the step.
	ContainWithoutCapture bool
	// Stop, when set, is the first interrupt: once it ends, no new step
	// (or undo) starts and prompts stop waiting, while running steps go
	// on under the ctx given to Run, Resume or Release, whose end (the
	// second interrupt) cancels them. Without Stop, the end of that ctx
	// stops starting steps and running steps ignore it, bounded by their
	// timeouts.
	Stop context.Context
	Now  func() time.Time
}

// contexts returns the context whose end stops starting steps, the one
// running steps work under, and the release of the first.
func (o *Options) contexts(ctx context.Context) (stop, work context.Context, release func()) {
	if o.Stop == nil {
		return ctx, context.WithoutCancel(ctx), func() {}
	}
	stop, cancel := context.WithCancel(o.Stop)
	unhook := context.AfterFunc(ctx, cancel) // cancelled running steps stop the run too
	return stop, ctx, func() { unhook(); cancel() }
}

func (o *Options) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// connect builds the clients the playbook declares it needs, when a
// Connector is given.
func (o *Options) connect(ctx context.Context, c *Checked) error {
	if o.Connector == nil {
		return nil
	}
	return action.Connect(ctx, o.Env, c.Clouds(), o.Connector)
}

func (o *Options) approved(id string) bool { return o.Yes || slices.Contains(o.Approved, id) }

// approvedHow says how a step approved without a prompt was: --yes or
// --approve naming the step (its ID or, in a run over many targets, its
// playbook ID).
func (o *Options) approvedHow() string {
	if o.Yes {
		return ApprovedYes
	}
	return ApprovedFlag
}

// StepSummary is one line of the summary table.
type StepSummary struct {
	ID string `json:"id"`
	// Target is the pod of the step in a run over many targets.
	Target   string        `json:"target,omitempty"`
	Action   string        `json:"action"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Finished time.Time     `json:"finished,omitzero"`
	Kind     action.Kind   `json:"kind"`
	Warnings []string      `json:"warnings,omitempty"`
	// Restored is, for a released step, each object its undo restored or
	// found already clean.
	Restored []action.Restored `json:"restored,omitempty"`
}

// Summary is the outcome of a run, resume or release.
type Summary struct {
	Playbook    string         `json:"playbook"`
	Steps       []StepSummary  `json:"steps"`
	Outputs     map[string]any `json:"outputs,omitempty"`
	Interrupted bool           `json:"interrupted,omitempty"`
	Started     time.Time      `json:"started"`
	Drill       *DrillScore    `json:"drill,omitempty"`
}

// Partial reports whether any step did not finish as planned.
func (s *Summary) Partial() bool {
	for _, st := range s.Steps {
		switch st.Status {
		case StatusSucceeded, StatusConditionFalse, StatusReleased:
		default:
			return true
		}
	}
	return false
}

// DrillScore is a game day's result.
type DrillScore struct {
	TimeToContain time.Duration `json:"time_to_contain_ns"`
	// TimeToSealedEvidence is set by the caller that seals the case.
	TimeToSealedEvidence time.Duration `json:"time_to_sealed_evidence_ns,omitempty"`
	StepsFailed          int           `json:"steps_failed"`
	StepsSkipped         int           `json:"steps_skipped"`
}

// ---- plan ----

// PlannedStep is what one step would do.
type PlannedStep struct {
	ID      string         `json:"id"`
	Action  string         `json:"action"`
	Kind    action.Kind    `json:"kind"`
	Needs   []string       `json:"needs,omitempty"`
	Approve bool           `json:"approve,omitempty"`
	Params  map[string]any `json:"params,omitempty"`
	// When is "" (always), "true", "false", or "depends on STEP".
	When string       `json:"when,omitempty"`
	Plan *action.Plan `json:"plan,omitempty"`
	// Deferred says why the plan waits for the run (a parameter reads an
	// earlier step's output).
	Deferred string `json:"deferred,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Plan computes every step's concrete changes and permission checks
// through the actions' Plan methods. It changes nothing. A step whose Plan
// finds bad input (action.ErrBadInput: a service account that does not
// exist, a suspect the options need and lack) is reported in its
// PlannedStep, and Plan also returns that error, naming the step, so that
// nothing runs on a plan that cannot be right.
func Plan(ctx context.Context, c *Checked, in Inputs, env *action.Env) ([]PlannedStep, error) {
	var out []PlannedStep
	var bad error
	for _, id := range c.Order {
		cs := c.steps[id]
		ps := PlannedStep{ID: id, Action: cs.Action, Kind: cs.spec.Kind, Needs: cs.deps, Approve: cs.Approve}
		act := c.vars(cs, in, nil)
		if cs.when != nil {
			if refs := cs.whenRefs; len(refs) > 0 {
				ps.When = "depends on " + strings.Join(refs, ", ")
			} else if ok, err := evalBool(ctx, cs.when, act); err != nil {
				ps.Error = err.Error()
			} else {
				ps.When = fmt.Sprint(ok)
			}
		}
		if ps.When == "false" {
			// The step will not run with these inputs: nothing to plan,
			// and its parameters may be empty by design.
			out = append(out, ps)
			continue
		}
		call, deferred, err := c.call(ctx, cs, act, false)
		ps.Params = call.Params
		switch {
		case err != nil:
			ps.Error = err.Error()
		case deferred != "":
			ps.Deferred = deferred
		default:
			p, err := cs.act.Plan(ctx, env, call)
			if err != nil {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				ps.Error = err.Error()
				if bad == nil && errors.Is(err, action.ErrBadInput) {
					bad = fmt.Errorf("step %s (%s): %w", id, cs.Action, err)
				}
			} else {
				ps.Plan = &p
			}
		}
		out = append(out, ps)
	}
	return out, bad
}

// activation builds the CEL variables from inputs and finished steps.
func activation(in Inputs, steps map[string]StepResult) map[string]any {
	vars := map[string]any{}
	for k, v := range in {
		vars["inputs."+k] = v
	}
	for id, r := range steps {
		vars["steps."+id+".status"] = r.Status
		outs := r.Outputs
		if outs == nil {
			outs = map[string]any{}
		}
		vars["steps."+id+".outputs"] = outs
	}
	return vars
}

func evalBool(ctx context.Context, prg cel.Program, vars map[string]any) (bool, error) {
	v, _, err := prg.ContextEval(ctx, vars)
	if err != nil {
		return false, fmt.Errorf("when: %w", err)
	}
	b, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("when: expression yielded %v, not a boolean", v.Value())
	}
	return b, nil
}

// call builds a step's Call. With needSteps false (plan), parameters that
// read earlier steps are not evaluated and deferred names them.
func (c *Checked) call(ctx context.Context, cs *cstep, vars map[string]any, needSteps bool) (action.Call, string, error) {
	call := action.Call{Step: cs.ID, Params: map[string]any{}}
	var deferred []string
	names := make([]string, 0, len(cs.params))
	for k := range cs.params {
		names = append(names, k)
	}
	sort.Strings(names)
	specs := map[string]action.Param{}
	for _, p := range cs.spec.Params {
		specs[p.Name] = p
	}
	for _, k := range names {
		pv := cs.params[k]
		if pv.prog == nil {
			call.Params[k] = pv.lit
			continue
		}
		if len(pv.refs) > 0 && !needSteps {
			deferred = append(deferred, k+" reads "+strings.Join(pv.refs, ", "))
			continue
		}
		v, _, err := pv.prog.ContextEval(ctx, vars)
		if err != nil {
			return call, "", fmt.Errorf("with.%s: %w", k, err)
		}
		x, err := specs[k].FromCEL(v)
		if err != nil {
			return call, "", fmt.Errorf("with.%s: %w", k, err)
		}
		call.Params[k] = x
	}
	return call, strings.Join(deferred, "; "), nil
}

// ---- run ----

// Run starts a run: it journals the playbook and inputs, then runs the
// steps. The returned error is nil when the run finished (whatever the step
// outcomes: see Summary.Partial), context.Canceled when interrupted, or a
// journal failure.
func Run(ctx context.Context, c *Checked, in Inputs, o Options) (*Summary, error) {
	o.defaults()
	st, err := readJournal(o.Journal)
	if err != nil {
		return nil, err
	}
	if st.start != nil {
		return addTargets(ctx, c, in, st, o)
	}
	sum := sha256.Sum256(c.source)
	start := RunStart{Playbook: c.Metadata.Name, File: c.file, Source: string(c.source), SHA256: hex.EncodeToString(sum[:]), Inputs: in.strings(), Drill: o.Drill}
	if len(c.targets) > 0 {
		start.TargetInput = c.targetInput
		for _, t := range c.targets {
			start.Targets = append(start.Targets, t.strings())
		}
	}
	if err := o.connect(ctx, c); err != nil {
		return nil, err
	}
	if _, err := o.Journal.Record(RecRunStart, start, nil); err != nil {
		return nil, fmt.Errorf("journal run start: %w", err)
	}
	st.start, st.startAt = &start, o.Now()
	return execute(ctx, c, in, st, o)
}

// Resume continues the run journaled in the case: steps with a final
// result are kept, steps with only an intent are run again through the
// action's idempotent Run, and the rest run as in Run.
func Resume(ctx context.Context, reg *action.Registry, o Options) (*Summary, error) {
	o.defaults()
	st, c, in, err := fromJournal(ctx, reg, &o, "resume")
	if err != nil {
		return nil, err
	}
	return execute(ctx, c, in, st, o)
}

// fromJournal reads the run journaled in the case, re-validates its
// playbook and connects to the clouds that playbook needs: what resume and
// release start from.
func fromJournal(ctx context.Context, reg *action.Registry, o *Options, what string) (*journalState, *Checked, Inputs, error) {
	st, err := readJournal(o.Journal)
	if err != nil {
		return nil, nil, nil, err
	}
	if st.start == nil {
		return nil, nil, nil, fmt.Errorf("%w: the case holds no playbook run to %s", ErrInvalid, what)
	}
	c, in, err := journaled(st, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := o.connect(ctx, c); err != nil {
		return nil, nil, nil, err
	}
	return st, c, in, nil
}

// journaled re-validates the playbook text recorded at the start of a run.
func journaled(st *journalState, reg *action.Registry) (*Checked, Inputs, error) {
	p, err := Parse(st.start.File, []byte(st.start.Source))
	if err != nil {
		return nil, nil, err
	}
	c, err := Validate(p, reg)
	if err != nil {
		return nil, nil, err
	}
	return st.checked(c)
}

// checked is the run the journal describes, from its validated playbook c:
// the targets of its start then those later runs added, always built the
// same way so that run, resume, release and status see the same step IDs.
// A run over many targets takes the added ones as more targets (ID@POD);
// a single-target run keeps its plain step IDs and the added targets get
// ID@POD ones (withAdded).
func (st *journalState) checked(c *Checked) (*Checked, Inputs, error) {
	in, err := parseInputs(c, st.start.Inputs)
	if err != nil {
		return nil, nil, err
	}
	pod := st.start.TargetInput
	first, err := parseTargets(c, st.start.Targets)
	if err != nil {
		return nil, nil, err
	}
	var added []Inputs
	for _, a := range st.added {
		pod = a.TargetInput // the same in every record: addTargets sees to it
		t, err := parseTargets(c, a.Targets)
		if err != nil {
			return nil, nil, err
		}
		added = append(added, t...)
	}
	switch {
	case len(first) > 0:
		return c.ForTargets(pod, append(first, added...)), in, nil
	case len(added) > 0:
		return c.withAdded(pod, in, added), in, nil
	}
	return c, in, nil
}

func parseTargets(c *Checked, text []map[string]string) ([]Inputs, error) {
	var out []Inputs
	for _, t := range text {
		ti, err := parseInputs(c, t)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// addTargets is a run into a case whose journal already holds a run: with
// the same playbook text and the same inputs but for the target input, it
// journals the new targets (RecTargetsAdded) and runs over the union. The
// steps of the targets already there keep their final results, as in
// resume; a target already in the run is refused.
func addTargets(ctx context.Context, c *Checked, in Inputs, st *journalState, o Options) (*Summary, error) {
	sum := sha256.Sum256(c.source)
	sha := hex.EncodeToString(sum[:])
	if sha != st.start.SHA256 {
		return nil, fmt.Errorf("%w: the case holds a run of playbook %s (sha256 %.12s); playbook %s (sha256 %.12s) is another playbook or changed text, and only the same playbook adds targets to a run; use resume, or another incident ID",
			ErrInvalid, st.start.Playbook, st.start.SHA256, c.Metadata.Name, sha)
	}
	if o.Drill || st.start.Drill {
		return nil, fmt.Errorf("%w: the case holds a run of playbook %s; a drill neither takes added targets nor adds them: use another incident ID", ErrInvalid, st.start.Playbook)
	}
	a, err := newTargets(c, in, st)
	if err != nil {
		return nil, err
	}
	a.SHA256 = sha
	if err := o.connect(ctx, c); err != nil {
		return nil, err
	}
	// The union is built before the record is written: a journal never
	// holds added targets that resume and release could not rebuild.
	added := append(slices.Clone(st.added), a)
	trial := *st
	trial.added = added
	u, uin, err := trial.checked(c.root())
	if err != nil {
		return nil, err
	}
	if _, err := o.Journal.Record(RecTargetsAdded, a, nil); err != nil {
		return nil, fmt.Errorf("journal added targets: %w", err)
	}
	st.added = added
	return execute(ctx, u, uin, st, o)
}

// newTargets are the targets of run c (inputs in) that the case's run does
// not hold yet. The target input is the journaled one, or else the pod
// input of c that names many pods, or else its one pod input (or the one
// pod input whose value changed); every other input that does not derive
// from it must equal the journaled one.
func newTargets(c *Checked, in Inputs, st *journalState) (TargetsAdded, error) {
	pod := st.start.TargetInput
	if pod == "" && len(st.added) > 0 {
		pod = st.added[0].TargetInput
	}
	if pod == "" {
		pod = c.targetInput
	}
	given, was := in.strings(), st.start.Inputs
	if pod == "" {
		var pods, changed []string
		for _, d := range c.Inputs {
			if d.Type == action.Pod && d.From == "" {
				pods = append(pods, d.Name)
				if given[d.Name] != was[d.Name] {
					changed = append(changed, d.Name)
				}
			}
		}
		switch {
		case len(pods) == 1:
			pod = pods[0]
		case len(changed) == 1:
			pod = changed[0]
		default:
			return TargetsAdded{}, fmt.Errorf("%w: playbook %s: cannot tell which pod input names the added targets (pod inputs %s, changed %s)", ErrInvalid, c.Metadata.Name, strings.Join(pods, ", "), strings.Join(changed, ", "))
		}
	}
	if c.targetInput != "" && c.targetInput != pod {
		return TargetsAdded{}, fmt.Errorf("%w: the run's targets are input %s, not %s", ErrInvalid, pod, c.targetInput)
	}
	var diff []string
	for _, d := range c.Inputs {
		if d.Name == pod || derivesFrom(c.Playbook, d.Name, pod) {
			continue
		}
		if given[d.Name] != was[d.Name] {
			diff = append(diff, fmt.Sprintf("%s is %q, the run's is %q", d.Name, given[d.Name], was[d.Name]))
		}
	}
	if len(diff) > 0 {
		return TargetsAdded{}, fmt.Errorf("%w: adding targets to the run of %s changes only input %s: %s", ErrInvalid, st.start.Playbook, pod, strings.Join(diff, "; "))
	}
	have := map[string]bool{}
	if len(st.start.Targets) == 0 {
		have[was[pod]] = true
	}
	for _, t := range st.start.Targets {
		have[t[pod]] = true
	}
	for _, a := range st.added {
		for _, t := range a.Targets {
			have[t[pod]] = true
		}
	}
	news := c.targets
	if len(news) == 0 {
		news = []Inputs{in}
	}
	a := TargetsAdded{TargetInput: pod}
	var dup []string
	for _, t := range news {
		ts := t.strings()
		if have[ts[pod]] {
			dup = append(dup, ts[pod])
			continue
		}
		a.Targets = append(a.Targets, ts)
	}
	if len(dup) > 0 {
		return TargetsAdded{}, fmt.Errorf("%w: the run of %s already holds %s %s: give only new targets (resume retries the steps of those already there)", ErrInvalid, st.start.Playbook, pod, strings.Join(dup, ", "))
	}
	return a, nil
}

// parseInputs parses journaled inputs by their declared types.
func parseInputs(c *Checked, text map[string]string) (Inputs, error) {
	in := Inputs{}
	for _, decl := range c.Inputs {
		if s, ok := text[decl.Name]; ok {
			if s == "" && decl.From != "" {
				in[decl.Name] = "" // derived, and the target could not say
				continue
			}
			v, err := decl.Type.ParseText(s)
			if err != nil {
				return nil, fmt.Errorf("journaled input %s: %w", decl.Name, err)
			}
			in[decl.Name] = v
		}
	}
	return in, nil
}

type runner struct {
	c  *Checked
	in Inputs
	o  Options
	st *journalState
	// stop ends at the first interrupt; work is what steps run under.
	stop, work context.Context
	mu         sync.Mutex
	res        map[string]StepResult // this run's and earlier final results
	dur        map[string]time.Duration
	// warn holds warnings the engine adds to a step's result.
	warn map[string][]string
	// contain serialises, in a run over many targets, one containment
	// step across its targets: they share the incident's objects (its
	// quarantine policy, a node), which concurrent writers would race on.
	contain sync.Map // playbook step ID -> *sync.Mutex
}

func (r *runner) serialise(cs *cstep) func() {
	if cs.local == "" || cs.spec.Kind != action.Contain {
		return func() {}
	}
	m, _ := r.contain.LoadOrStore(cs.local, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func execute(ctx context.Context, c *Checked, in Inputs, st *journalState, o Options) (*Summary, error) {
	r := &runner{c: c, in: in, o: o, st: st, res: map[string]StepResult{}, dur: map[string]time.Duration{}, warn: map[string][]string{}}
	var release func()
	r.stop, r.work, release = o.contexts(ctx)
	defer release()
	for id, res := range st.results {
		// A step that ended without capturing everything runs again: its
		// store collects only the missing items.
		if (res.Status == StatusSucceeded && !incomplete(res)) || res.Status == StatusConditionFalse {
			r.res[id] = res
		}
	}
	var g errgroup.Group
	g.SetLimit(o.Parallel)
	done := make(chan string, len(c.Order))
	started := map[string]bool{}
	for id := range r.res {
		started[id] = true
	}
	running, stopping, interrupted := 0, false, false
	aborted := map[string]bool{}
	ctxDone := r.stop.Done()
	var journalErr error
	for {
		if !stopping {
			for _, id := range c.Order {
				if started[id] || running >= o.Parallel || aborted[c.steps[id].target] {
					continue
				}
				ready, blocked, gaps := r.depsState(id)
				if !ready {
					continue
				}
				started[id] = true
				if blocked == "" && len(gaps) > 0 {
					if o.ContainWithoutCapture {
						if err := r.override(id, gaps); err != nil {
							journalErr = err
							blocked = err.Error()
						}
					} else {
						blocked = gapMessage(gaps)
					}
				}
				if blocked != "" {
					if err := r.finish(id, StepResult{Status: StatusSkipped, Error: blocked}); err != nil {
						journalErr = err
					}
					continue
				}
				running++
				g.Go(func() error {
					defer func() { done <- id }()
					return r.step(id)
				})
			}
		}
		if running == 0 {
			break
		}
		select {
		case id := <-done:
			running--
			r.mu.Lock()
			res := r.res[id]
			r.mu.Unlock()
			if cs := r.c.steps[id]; res.Status == StatusFailed && cs.OnError != OnErrorContinue {
				if cs.local == "" {
					stopping = true
				} else {
					// The other targets go on; a run that took added
					// targets keeps its first target's steps under "".
					aborted[cs.target] = true
				}
			}
		case <-ctxDone:
			// Stop starting steps; running steps end by themselves, by
			// their timeout, or when their work context is cancelled
			// (Options.Stop).
			stopping, interrupted, ctxDone = true, true, nil
		}
	}
	if err := g.Wait(); err != nil {
		journalErr = errors.Join(journalErr, err)
	}
	// Steps never started are journaled as not run, so status shows them
	// and resume starts them.
	for _, id := range c.Order {
		if !started[id] {
			why := "an earlier step failed with on_error: abort"
			if interrupted {
				why = "interrupted"
			}
			if err := r.finish(id, StepResult{Status: StatusNotRun, Error: why}); err != nil {
				journalErr = errors.Join(journalErr, err)
			}
		}
	}
	sum := r.summary()
	sum.Interrupted = interrupted
	if !interrupted && journalErr == nil {
		if _, err := o.Journal.Record(RecRunEnd, map[string]any{"outputs": sum.Outputs, "partial": sum.Partial()}, nil); err != nil {
			journalErr = err
		}
	}
	if journalErr != nil {
		return sum, journalErr
	}
	if interrupted {
		return sum, context.Canceled
	}
	return sum, nil
}

// incomplete reports whether a step's outputs say that it did not capture
// everything (collection steps output "complete").
func incomplete(res StepResult) bool {
	c, ok := res.Outputs["complete"].(bool)
	return ok && !c
}

// missingItems is a step's "missing" output, or why nothing was captured.
func missingItems(res StepResult) []string {
	var out []string
	switch m := res.Outputs["missing"].(type) {
	case []string:
		out = append(out, m...)
	case []any:
		for _, x := range m {
			out = append(out, fmt.Sprint(x))
		}
	}
	if len(out) == 0 && res.Status != StatusSucceeded {
		why := res.Status
		if res.Error != "" {
			why += ": " + res.Error
		}
		out = append(out, "the whole capture ("+why+")")
	}
	return out
}

// depsState says whether a step's dependencies have all ended and, if one
// did not end well, why the step is skipped. The capture-first rule tests
// outcomes: a required capture that failed or is incomplete is a gap, which
// stops the step unless the responder overrides it.
func (r *runner) depsState(id string) (ready bool, blocked string, gaps []ContainWithoutCaptureGap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.c.steps[id]
	for _, d := range cs.deps {
		res, ok := r.res[d]
		if !ok {
			return false, "", nil
		}
		if slices.Contains(cs.RequiresCapture, d) {
			if res.Status != StatusSucceeded || incomplete(res) {
				gaps = append(gaps, ContainWithoutCaptureGap{Step: d, Status: res.Status, Missing: missingItems(res)})
			}
		} else if res.Status != StatusSucceeded && res.Status != StatusConditionFalse && blocked == "" {
			blocked = fmt.Sprintf("step %s %s", d, res.Status)
		}
	}
	return true, blocked, gaps
}

// gapMessage says why a step waits for its captures, naming the missing
// items and the override.
func gapMessage(gaps []ContainWithoutCaptureGap) string {
	var parts []string
	for _, g := range gaps {
		what := "is incomplete"
		if g.Status != StatusSucceeded {
			what = "did not succeed (" + g.Status + ")"
		}
		parts = append(parts, fmt.Sprintf("capture step %s %s: missing %s", g.Step, what, listSome(g.Missing, 5)))
	}
	return strings.Join(parts, "; ") + ". Containment would destroy evidence: fix the capture and resume (only the missing items are collected again), " +
		"or pass --contain-without-capture to contain anyway (journaled as your decision)"
}

// listSome joins up to n items and counts the rest.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}

// ContainWithoutCapture is the details of a RecContainWithoutCapture
// record: the responder let a step run although captures it requires are
// missing items.
type ContainWithoutCapture struct {
	Step     string                     `json:"step"`
	Captures []ContainWithoutCaptureGap `json:"captures"`
	// DecidedBy is the responder who passed --contain-without-capture.
	DecidedBy string `json:"decided_by"`
	Decision  string `json:"decision"`
}

// ContainWithoutCaptureGap is a required capture step that did not capture
// everything (it failed, or succeeded with items not collected) and what it
// lacks.
type ContainWithoutCaptureGap struct {
	Step    string   `json:"step"`
	Status  string   `json:"status"`
	Missing []string `json:"missing"`
}

// override journals the responder's decision to run id despite gaps, and
// notes the warning its result will carry.
func (r *runner) override(id string, gaps []ContainWithoutCaptureGap) error {
	rec := ContainWithoutCapture{Step: id, Decision: "contain without complete capture (--contain-without-capture)"}
	if r.o.Env != nil {
		rec.DecidedBy = r.o.Env.Responder
	}
	var names []string
	for _, g := range gaps {
		rec.Captures = append(rec.Captures, g)
		names = append(names, fmt.Sprintf("%s (missing %s)", g.Step, listSome(g.Missing, 5)))
	}
	if _, err := r.o.Journal.Record(RecContainWithoutCapture, rec, nil); err != nil {
		return fmt.Errorf("journal the decision to contain step %s without capture: %w", id, err)
	}
	who := rec.DecidedBy
	if who == "" {
		who = "the responder"
	}
	r.mu.Lock()
	r.warn[id] = append(r.warn[id], fmt.Sprintf("contained without complete capture, decided by %s (--contain-without-capture): %s", who, strings.Join(names, "; ")))
	r.mu.Unlock()
	return nil
}

// finish journals a step's result and makes it visible to dependents.
func (r *runner) finish(id string, res StepResult) error {
	cs := r.c.steps[id]
	res.Step, res.Action = id, cs.Action
	r.mu.Lock()
	if w := r.warn[id]; len(w) > 0 {
		res.Warnings = append(slices.Clone(w), res.Warnings...)
	}
	r.mu.Unlock()
	if res.Finished == "" {
		res.Finished = r.o.Now().UTC().Format(time.RFC3339Nano)
	}
	_, err := r.o.Journal.Record(RecResult, res, itemMap(res.Items))
	r.mu.Lock()
	r.res[id] = res
	r.mu.Unlock()
	var d time.Duration
	if s, e := time.Parse(time.RFC3339Nano, res.Started); e == nil {
		f, _ := time.Parse(time.RFC3339Nano, res.Finished)
		d = f.Sub(s)
		r.mu.Lock()
		r.dur[id] = d
		r.mu.Unlock()
	}
	r.o.Observer.Event(Event{Time: r.o.Now(), Step: id, Action: cs.Action, State: res.Status, Err: res.Error, Duration: d, Done: r.done(), Total: len(r.c.Order), Warnings: res.Warnings})
	if err != nil {
		return fmt.Errorf("journal result of step %s: %w", id, err)
	}
	return nil
}

func itemMap(items []string) map[string]string {
	if len(items) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, it := range items {
		m[it] = "written by the step"
	}
	return m
}

// step runs one step: condition, approval, intent, action, result. The
// returned error is a journal failure only; step failures are results.
func (r *runner) step(id string) error {
	cs := r.c.steps[id]
	// A running step ignores the first interrupt, so that it ends with a
	// result; its timeout, and with Options.Stop the second interrupt,
	// still bound it.
	sctx, cancel := context.WithTimeout(r.work, cs.timeout)
	defer cancel()
	r.mu.Lock()
	vars := r.c.vars(cs, r.in, r.res)
	r.mu.Unlock()
	if cs.when != nil {
		ok, err := evalBool(sctx, cs.when, vars)
		if err != nil {
			return r.finish(id, StepResult{Status: StatusFailed, Error: err.Error()})
		}
		if !ok {
			// The reason is the condition itself, which the playbook
			// writes to read as one (inputs.aws_credentials.contains("irsa")).
			return r.finish(id, StepResult{Status: StatusConditionFalse, Error: "skipped: when " + cs.When + " is false"})
		}
	}
	call, _, err := r.c.call(sctx, cs, vars, true)
	if err != nil {
		return r.finish(id, StepResult{Status: StatusFailed, Error: err.Error()})
	}
	var approval *StepApproval
	if cs.Approve {
		approval = &StepApproval{How: r.o.approvedHow(), By: r.o.ApprovedBy}
	}
	if cs.Approve && !r.o.approved(id) && !r.o.approved(cs.local) {
		approval.How = ApprovedPrompt
		// The prompt listens to the first interrupt: nothing is in flight yet.
		ok, err := r.ask(r.stop, cs, call)
		if r.stop.Err() != nil {
			return r.finish(id, StepResult{Status: StatusNotRun, Error: "interrupted while asking for approval"})
		}
		if err != nil {
			return r.finish(id, StepResult{Status: StatusFailed, Error: err.Error()})
		}
		if !ok {
			return r.finish(id, StepResult{Status: StatusNeedsApproval, Error: "approval required: re-run with --approve " + id + " or --yes"})
		}
	}
	params, err := json.Marshal(call.Params)
	if err != nil {
		return fmt.Errorf("step %s: encode parameters: %w", id, err)
	}
	started := r.o.Now().UTC().Format(time.RFC3339Nano)
	if _, err := r.o.Journal.Record(RecIntent, Intent{Step: id, Action: cs.Action, Params: params, Approval: approval}, nil); err != nil {
		return fmt.Errorf("journal intent of step %s: %w", id, err)
	}
	r.o.Observer.Event(Event{Time: r.o.Now(), Step: id, Action: cs.Action, State: "running", Done: r.done(), Total: len(r.c.Order)})
	unlock := r.serialise(cs)
	crashPoint(sctx, id, "before")
	res, err := cs.act.Run(sctx, r.o.Env, call)
	crashPoint(sctx, id, "after")
	unlock()
	out := StepResult{Status: StatusSucceeded, Outputs: res.Outputs, Undo: res.Undo, Items: res.Items, Warnings: res.Warnings, Started: started}
	if err != nil {
		out.Status, out.Error = StatusFailed, err.Error()
		switch {
		case r.work.Err() != nil:
			out.Error = fmt.Sprintf("cancelled by a second interrupt: %v (resume runs the step again; release undoes what it did)", err)
		case errors.Is(err, context.DeadlineExceeded):
			out.Error = fmt.Sprintf("timed out after %s: %v", cs.timeout, err)
		}
	}
	return r.finish(id, out)
}

func (r *runner) done() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.res)
}

// ask serialises prompts: two approvals never interleave on one terminal.
var askMu sync.Mutex

func (r *runner) ask(ctx context.Context, cs *cstep, call action.Call) (bool, error) {
	if r.o.Approver == nil {
		return false, nil
	}
	p, err := cs.act.Plan(ctx, r.o.Env, call)
	if err != nil {
		return false, fmt.Errorf("plan for approval: %w", err)
	}
	// The engine's own warnings (a capture overridden) join the action's:
	// the approver shows them all before asking.
	r.mu.Lock()
	p.Warnings = append(slices.Clone(r.warn[cs.ID]), p.Warnings...)
	r.mu.Unlock()
	askMu.Lock()
	defer askMu.Unlock()
	r.o.Observer.Event(Event{Time: r.o.Now(), Step: cs.ID, Action: cs.Action, State: "approval", Done: r.done(), Total: len(r.c.Order)})
	return r.o.Approver.Approve(ctx, cs.ID, cs.Action, p)
}

func (r *runner) summary() *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Summary{Playbook: r.c.Metadata.Name, Started: r.st.startAt}
	for _, id := range r.c.Order {
		res := r.res[id]
		ss := StepSummary{ID: id, Target: r.c.steps[id].target, Action: r.c.steps[id].Action, Kind: r.c.steps[id].spec.Kind, Status: res.Status, Error: res.Error, Duration: r.dur[id], Warnings: res.Warnings}
		ss.Finished, _ = time.Parse(time.RFC3339Nano, res.Finished)
		s.Steps = append(s.Steps, ss)
	}
	for _, tg := range r.c.outputScopes(r.in) {
		vars := activation(tg.in, r.res)
		if tg.key != "" {
			vars = r.c.vars(&cstep{target: tg.key, in: tg.in}, nil, r.res)
		}
		for name, prg := range r.c.outs {
			if s.Outputs == nil {
				s.Outputs = map[string]any{}
			}
			v, _, err := prg.Eval(vars)
			if err != nil {
				s.Outputs[name+tg.suffix()] = "error: " + err.Error()
				continue
			}
			s.Outputs[name+tg.suffix()] = v.Value()
		}
	}
	if r.o.Drill {
		s.Drill = drillScore(s)
	}
	return s
}

func drillScore(s *Summary) *DrillScore {
	d := &DrillScore{}
	var last time.Time
	for _, st := range s.Steps {
		switch st.Status {
		case StatusFailed:
			d.StepsFailed++
		case StatusSkipped, StatusNotRun, StatusNeedsApproval:
			d.StepsSkipped++
		}
		if st.Kind == action.Contain && st.Status == StatusSucceeded && st.Finished.After(last) {
			last = st.Finished
		}
	}
	if !last.IsZero() && !s.Started.IsZero() {
		d.TimeToContain = last.Sub(s.Started)
	}
	return d
}
