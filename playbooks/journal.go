package playbooks

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// Custody record actions written by the engine. docs/playbooks.md lists
// their details.
const (
	RecRunStart  = "playbook.run"
	RecRunEnd    = "playbook.end"
	RecIntent    = "step.intent"
	RecResult    = "step.result"
	RecUndoStart = "step.release-intent"
	RecUndone    = "step.released"
	// RecContainWithoutCapture journals the responder's decision to run a
	// step whose required captures are incomplete (ContainWithoutCapture).
	RecContainWithoutCapture = "step.contain-without-capture"
	// RecTargetsAdded journals a second run of the same playbook into the
	// case adding targets to its run (TargetsAdded).
	RecTargetsAdded = "playbook.targets-added"
)

// Step statuses. Succeeded and ConditionFalse are final: resume keeps them.
// Every other status is reconsidered by resume.
const (
	StatusSucceeded      = "succeeded"
	StatusConditionFalse = "condition-false"
	StatusFailed         = "failed"
	StatusSkipped        = "skipped"
	StatusNeedsApproval  = "needs-approval"
	StatusNotRun         = "not-run"
	StatusInDoubt        = "in-doubt" // intent without result: a crash mid-step
	StatusReleased       = "released"
	StatusKept           = "kept"
)

// Journal is the part of a case the engine journals into: the signed,
// hash-chained custody log.
type Journal interface {
	Record(action string, details any, items map[string]string) (evidence.Record, error)
	Records() []evidence.Record
}

type caseJournal struct{ c *evidence.Case }

func (j caseJournal) Record(a string, d any, items map[string]string) (evidence.Record, error) {
	return j.c.Record(a, d, items)
}
func (j caseJournal) Records() []evidence.Record { return j.c.Log().Records() }

// CaseJournal journals into a case's custody log.
func CaseJournal(c *evidence.Case) Journal { return caseJournal{c} }

// RunStart is the first record of a run: everything resume and release
// need, including the playbook text itself, so that neither depends on the
// file still being there or unchanged.
type RunStart struct {
	Playbook string            `json:"playbook"`
	File     string            `json:"file"`
	Source   string            `json:"source"`
	SHA256   string            `json:"sha256"`
	Inputs   map[string]string `json:"inputs"`
	Drill    bool              `json:"drill,omitempty"`
	// Targets are, in a run over many targets, each target's inputs
	// (TargetInput names the pod input that varies).
	TargetInput string              `json:"target_input,omitempty"`
	Targets     []map[string]string `json:"targets,omitempty"`
}

// TargetsAdded is journaled when a run of the same playbook adds targets
// to the case's run: each new target's inputs, TargetInput naming the pod
// input that varies. Resume, release and status run over the union.
type TargetsAdded struct {
	SHA256      string              `json:"sha256"`
	TargetInput string              `json:"target_input"`
	Targets     []map[string]string `json:"targets"`
}

// Intent is journaled before a step's first side effect.
type Intent struct {
	Step   string          `json:"step"`
	Action string          `json:"action"`
	Params json.RawMessage `json:"params"`
	// Approval is how a step that requires approval got it (absent for a
	// step that does not, and in journals older than this field).
	Approval *StepApproval `json:"approval,omitempty"`
}

// Approval methods.
const (
	ApprovedPrompt = "prompt" // a person answered the prompt
	ApprovedFlag   = "flag"   // --approve STEP
	ApprovedYes    = "yes"    // --yes
)

// StepApproval is who let a step that requires approval run, and how.
type StepApproval struct {
	// How is ApprovedPrompt, ApprovedFlag or ApprovedYes.
	How string `json:"how"`
	// By is Options.ApprovedBy; when empty, the record's custody actor
	// (the OS user@host who ran eksir) is the approver.
	By string `json:"by,omitempty"`
}

// StepResult is journaled after a step ends, whatever the outcome.
type StepResult struct {
	Step     string          `json:"step"`
	Action   string          `json:"action"`
	Status   string          `json:"status"`
	Error    string          `json:"error,omitempty"`
	Outputs  map[string]any  `json:"outputs,omitempty"`
	Undo     json.RawMessage `json:"undo,omitempty"`
	Items    []string        `json:"items,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	// Restored is what a release did to each object (undo results only).
	Restored []action.Restored `json:"restored,omitempty"`
	Started  string            `json:"started,omitempty"`
	Finished string            `json:"finished,omitempty"`
}

// journalState is what a journal says about a run.
type journalState struct {
	start   *RunStart
	startAt time.Time
	intents map[string]Intent
	results map[string]StepResult
	order   []string // step IDs in the order their (last) result was written
	// last is, per step, the sequence number of its latest intent or
	// result: release undoes steps in reverse order of it.
	last   map[string]int64
	undone map[string]StepResult
	// added are the targets later runs added, in journal order.
	added []TargetsAdded
}

func readJournal(j Journal) (*journalState, error) {
	st := &journalState{intents: map[string]Intent{}, results: map[string]StepResult{}, last: map[string]int64{}, undone: map[string]StepResult{}}
	for _, r := range j.Records() {
		switch r.Action {
		case RecRunStart:
			if st.start != nil {
				continue // a resume does not write a second start
			}
			var s RunStart
			if err := json.Unmarshal(r.Details, &s); err != nil {
				return nil, fmt.Errorf("custody record %d: %w", r.Seq, err)
			}
			st.start = &s
			st.startAt, _ = time.Parse(evidence.TimeFormat, r.Time)
		case RecTargetsAdded:
			var a TargetsAdded
			if err := json.Unmarshal(r.Details, &a); err != nil {
				return nil, fmt.Errorf("custody record %d: %w", r.Seq, err)
			}
			st.added = append(st.added, a)
		case RecIntent:
			var in Intent
			if err := json.Unmarshal(r.Details, &in); err != nil {
				return nil, fmt.Errorf("custody record %d: %w", r.Seq, err)
			}
			st.intents[in.Step] = in
			st.last[in.Step] = r.Seq
			delete(st.results, in.Step) // a newer attempt supersedes the old result
		case RecResult:
			var res StepResult
			if err := json.Unmarshal(r.Details, &res); err != nil {
				return nil, fmt.Errorf("custody record %d: %w", r.Seq, err)
			}
			st.results[res.Step] = res
			st.last[res.Step] = r.Seq
			st.order = append(remove(st.order, res.Step), res.Step)
		case RecUndone:
			var res StepResult
			if err := json.Unmarshal(r.Details, &res); err != nil {
				return nil, fmt.Errorf("custody record %d: %w", r.Seq, err)
			}
			st.undone[res.Step] = res
		}
	}
	return st, nil
}

func remove(l []string, s string) []string {
	out := l[:0]
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// status is a step's state as the journal tells it.
func (st *journalState) status(id string) string {
	if r, ok := st.results[id]; ok {
		return r.Status
	}
	if _, ok := st.intents[id]; ok {
		return StatusInDoubt
	}
	return ""
}

// NewIncidentID returns an incident ID made of the UTC date and a short
// random suffix, e.g. 20261125-3f9a1c: sortable, unique enough for one
// responder team, and within evidence.ValidIncidentID's characters.
func NewIncidentID(now time.Time) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return now.UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}
