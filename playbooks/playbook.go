// Package playbooks parses, validates, plans, runs, resumes and releases
// declarative incident-response playbooks. It knows actions only through
// package action's registry and journals every step into the case's signed
// custody log, so a run survives a crash and can be resumed or released
// from the log alone.
//
// The package is free of CLI code: package main wires flags and output.
package playbooks

import (
	"errors"
	"fmt"
	"strings"

	"github.com/eksir/eksir/action"
)

// APIVersion and Kind head every playbook.
const (
	APIVersion = "eksir.io/v1"
	KindName   = "Playbook"
)

// OnError values.
const (
	OnErrorAbort    = "abort"
	OnErrorContinue = "continue"
)

// Playbook is a parsed playbook. The parser (parse.go) reads the YAML
// fields by name; the json, doc, enum and pattern tags here generate the
// JSON Schema published in docs/playbook.schema.json, and a test keeps the
// two field lists equal.
type Playbook struct {
	APIVersion string   `json:"apiVersion" doc:"always eksir.io/v1" enum:"eksir.io/v1"`
	Kind       string   `json:"kind" doc:"always Playbook" enum:"Playbook"`
	Metadata   Metadata `json:"metadata" doc:"name and description"`
	Inputs     []Input  `json:"inputs,omitempty" doc:"typed inputs; targets are resolved before any change"`
	Steps      []Step   `json:"steps" doc:"the steps; independent steps may run in parallel"`
	Outputs    []Output `json:"outputs,omitempty" doc:"values computed after the run from inputs and step outputs (CEL)"`
	// Drill marks a playbook written for game days: only such a playbook
	// runs with --drill, and only on drill targets (CheckDrill).
	Drill bool `json:"drill,omitempty" doc:"the playbook may run as a game-day drill (run --drill), on targets labelled eksir.io/drill=true (the pod or its namespace)"`

	file   string
	source []byte
	pos    map[string]Pos // "metadata", "inputs", "steps", ... -> position of the value
}

// Metadata describes a playbook.
type Metadata struct {
	Name        string   `json:"name" doc:"short name, lower case with dashes" pattern:"^[a-z0-9][a-z0-9-]*$"`
	Description string   `json:"description,omitempty" doc:"what the playbook is for"`
	Severity    string   `json:"severity,omitempty" doc:"low, medium, high or critical" enum:"low,medium,high,critical"`
	References  []string `json:"references,omitempty" doc:"references such as MITRE ATT&CK technique IDs (T1611)"`
}

// Input declares one input.
type Input struct {
	Name     string           `json:"name" doc:"name, referenced as inputs.NAME in CEL and ${{ inputs.NAME }} in with" pattern:"^[a-z][a-z0-9_]*$"`
	Type     action.ParamType `json:"type" doc:"the input's type; target types (pod, node, instance, iam-role, access-key) are resolved before any change"`
	Required bool             `json:"required,omitempty" doc:"the run refuses to start without it"`
	Default  string           `json:"default,omitempty" doc:"value used when the input is not given"`
	Doc      string           `json:"doc,omitempty" doc:"what the input is"`
	// From derives the input, when not given, from another input's
	// target before any change (see Attributes).
	From string `json:"from,omitempty"` // schema: fromSchema, from Attributes

	hasDefault bool
	pos        map[string]Pos
}

// Step is one step of a playbook.
type Step struct {
	ID     string         `json:"id" doc:"unique step ID; lower case, digits and underscores so CEL can name it (steps.ID)" pattern:"^[a-z][a-z0-9_]*$"`
	Action string         `json:"action" doc:"registered action name, see 'eksir permissions'"`
	With   map[string]any `json:"with,omitempty" doc:"action parameters; a string value '${{ EXPR }}' is a CEL expression over inputs and needed steps"`
	When   string         `json:"when,omitempty" doc:"CEL boolean over inputs and needed steps; the step is skipped when false"`
	Needs  []string       `json:"needs,omitempty" doc:"steps that must finish first"`
	// RequiresCapture names capture steps that must have succeeded: if one
	// failed or was skipped this step does not run, so that containment never
	// destroys evidence whose capture failed.
	RequiresCapture []string `json:"requires_capture,omitempty" doc:"collect steps that must have succeeded, else this step does not run (implies needs)"`
	Timeout         string   `json:"timeout,omitempty" doc:"Go duration bounding the step, e.g. 2m (default 5m)"`
	OnError         string   `json:"on_error,omitempty" doc:"abort (default) stops starting steps; continue goes on" enum:"abort,continue"`
	Approve         bool     `json:"approve,omitempty" doc:"ask before running; answered in advance by --yes or --approve ID"`

	pos map[string]Pos // field -> position of the value; "with.NAME" for parameters; "" for the step itself
}

// Output is one named value computed after the run.
type Output struct {
	Name  string `json:"name" doc:"output name" pattern:"^[a-z][a-z0-9_]*$"`
	Value string `json:"value" doc:"CEL expression over inputs and steps"`
	pos   map[string]Pos
}

// Pos is a 1-based position in a playbook file.
type Pos struct{ Line, Col int }

// File is the path or name the playbook was read from.
func (p *Playbook) File() string { return p.file }

// Source is the playbook text exactly as read.
func (p *Playbook) Source() []byte { return p.source }

// Step returns the step with the given ID.
func (p *Playbook) Step(id string) (*Step, bool) {
	for i := range p.Steps {
		if p.Steps[i].ID == id {
			return &p.Steps[i], true
		}
	}
	return nil, false
}

// ErrInvalid is wrapped by every error about a playbook or its inputs: bad
// input, nothing changed.
var ErrInvalid = errors.New("invalid playbook")

// Error is one problem in a playbook, at a position, with a hint a
// responder can act on.
type Error struct {
	File      string
	Line, Col int
	Msg       string
	HintText  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Hint says how to fix the problem.
func (e *Error) Hint() string { return e.HintText }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// ErrorList is every problem found in one pass, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	if len(l) == 1 {
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(l))
	for _, e := range l {
		b.WriteString("\n  " + e.Error())
		if e.HintText != "" {
			b.WriteString("\n    hint: " + e.HintText)
		}
	}
	return b.String()
}

// Hint is the hint of a single problem; with several, each is printed
// beside its problem.
func (l ErrorList) Hint() string {
	if len(l) == 1 {
		return l[0].HintText
	}
	return ""
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (l ErrorList) Unwrap() error { return ErrInvalid }

// errs collects problems while parsing or validating.
type errs struct {
	file string
	list ErrorList
}

func (e *errs) at(p Pos, hint, format string, args ...any) {
	e.list = append(e.list, &Error{File: e.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...), HintText: hint})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}
