package playbooks

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/eksir/eksir/action"
)

// DefaultTimeout bounds a step that declares no timeout.
const DefaultTimeout = 5 * time.Minute

// exprRE recognises a parameter value that is a CEL expression.
var exprRE = regexp.MustCompile(`^\$\{\{(.*)\}\}$`)

// Checked is a playbook validated against a registry: every action exists,
// every parameter has the right type, every expression compiles and
// type-checks, and the steps form a DAG. Only a Checked playbook can be
// planned or run.
type Checked struct {
	*Playbook
	// Order is a topological order of the step IDs, stable for a given file.
	Order []string
	steps map[string]*cstep
	env   *cel.Env
	outs  map[string]cel.Program
	// targets are the per-pod inputs of a run over many targets
	// (ForTargets), keyed by the value of input targetInput.
	targets     []Inputs
	targetInput string
	// first is, in a single-target run that took added targets, the
	// first target's inputs: its steps keep their plain IDs.
	first Inputs
	// base is the playbook as validated, before ForTargets.
	base *Checked
}

type cstep struct {
	*Step
	act  action.Action
	spec action.Spec
	when cel.Program
	// whenRefs are the steps when reads; plan cannot evaluate it before
	// they ran.
	whenRefs []string
	params   map[string]pvalue
	timeout  time.Duration
	deps     []string        // needs ∪ requires_capture
	anc      map[string]bool // transitive dependencies
	// target, local and in are set in a run over many targets: the pod,
	// the step's ID in the playbook, and the target's inputs.
	target, local string
	in            Inputs
}

// pvalue is a parameter: a literal already converted to the declared Go
// type, or a CEL program evaluated when the step runs.
type pvalue struct {
	lit  any
	prog cel.Program
	// refs are the steps the expression reads; plan cannot evaluate it
	// before they ran.
	refs []string
}

// Spec returns the action spec of a step.
func (c *Checked) Spec(id string) action.Spec { return c.steps[id].spec }

// Deps returns a step's direct dependencies (needs and requires_capture).
func (c *Checked) Deps(id string) []string { return c.steps[id].deps }

// Specs returns the specs of the actions the playbook uses, one per action.
func (c *Checked) Specs() []action.Spec {
	seen := map[string]bool{}
	var out []action.Spec
	for _, id := range c.Order {
		s := c.steps[id].spec
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	return out
}

// Clouds are the clouds the playbook needs: those its actions declare and
// those its target inputs live in.
func (c *Checked) Clouds() []action.Cloud {
	specs := c.Specs()
	for _, in := range c.Inputs {
		if tg, ok := in.Type.Target(); ok {
			specs = append(specs, action.Spec{Needs: []action.Cloud{tg.Cloud}})
		}
	}
	return action.Clouds(specs)
}

// Validate checks a parsed playbook against the registry. All problems are
// reported together, each with file:line:col and a hint.
func Validate(p *Playbook, reg *action.Registry) (*Checked, error) {
	e := &errs{file: p.file}
	c := &Checked{Playbook: p, steps: map[string]*cstep{}, outs: map[string]cel.Program{}}

	// Inputs.
	opts := []cel.EnvOption{}
	inputs := map[string]Input{}
	for _, in := range p.Inputs {
		if _, dup := inputs[in.Name]; dup {
			e.at(in.pos["name"], "rename one of them", "input %q declared twice", in.Name)
			continue
		}
		inputs[in.Name] = in
		if in.hasDefault {
			if _, err := in.Type.ParseText(in.Default); err != nil {
				e.at(in.pos["default"], "give a default of type "+string(in.Type), "input %q: default: %v", in.Name, err)
			}
		}
		opts = append(opts, cel.Variable("inputs."+in.Name, in.Type.CELType()))
	}
	for _, in := range p.Inputs {
		if in.From == "" {
			continue
		}
		src, attr, _ := strings.Cut(in.From, ".")
		srcType := inputs[src].Type
		attrs, hasAttrs := Attributes[srcType]
		want, known := attrs[attr]
		switch {
		case !hasAttrs:
			e.at(in.pos["from"], "name an input of type "+joinTypes(attributeSources(), " or ")+": "+strings.Join(attributeNames(), ", "),
				"input %q: from %q: %q is not a %s input", in.Name, in.From, src, joinTypes(attributeSources(), " or "))
		case !known:
			e.at(in.pos["from"], "attributes: "+strings.Join(attributeNames(), ", "), "input %q: unknown attribute %q of %s input %q in from", in.Name, attr, srcType, src)
		case in.Type != want.Type:
			e.at(in.pos["type"], "declare it as type "+string(want.Type), "input %q: from %s gives a %s, not a %s", in.Name, in.From, want.Type, in.Type)
		}
	}

	// Steps: identity and actions.
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.ID == "" {
			continue
		}
		if _, dup := c.steps[s.ID]; dup {
			e.at(s.pos["id"], "step IDs are unique", "step id %q used twice", s.ID)
			continue
		}
		cs := &cstep{Step: s, params: map[string]pvalue{}, timeout: DefaultTimeout}
		c.steps[s.ID] = cs
		opts = append(opts,
			cel.Variable("steps."+s.ID+".status", cel.StringType),
			cel.Variable("steps."+s.ID+".outputs", cel.MapType(cel.StringType, cel.DynType)))
		a, ok := reg.Lookup(s.Action)
		if !ok {
			e.at(s.pos["action"], "known actions: "+orNone(reg.Names()), "unknown action %q", s.Action)
		} else {
			cs.act, cs.spec = a, a.Spec()
		}
		if s.Timeout != "" {
			d, err := time.ParseDuration(s.Timeout)
			if err != nil || d <= 0 {
				e.at(s.pos["timeout"], "use a Go duration such as 90s or 5m", "timeout %q is not a positive duration", s.Timeout)
			} else {
				cs.timeout = d
			}
		}
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		e.at(Pos{1, 1}, "", "build expression environment: %v", err)
		return nil, e.err()
	}
	c.env = env

	// Dependencies, then the DAG.
	for _, id := range stepIDs(p) {
		cs := c.steps[id]
		for _, field := range []string{"needs", "requires_capture"} {
			list := cs.Needs
			if field == "requires_capture" {
				list = cs.RequiresCapture
			}
			for _, d := range list {
				dep, ok := c.steps[d]
				switch {
				case !ok:
					e.at(cs.pos[field], "steps: "+strings.Join(stepIDs(p), ", "), "%s: step %q names unknown step %q", field, id, d)
					continue
				case field == "requires_capture" && dep.act != nil && dep.spec.Kind != action.Collect:
					e.at(cs.pos[field], "requires_capture names collection steps only; use needs for ordering", "requires_capture: step %q is %s, not a capture", d, dep.spec.Kind)
				}
				if !slices.Contains(cs.deps, d) {
					cs.deps = append(cs.deps, d)
				}
			}
		}
	}
	if cyc := c.findCycle(p); cyc != nil {
		cs := c.steps[cyc[0]]
		e.at(cs.pos["needs"], "remove one of the needs along the cycle", "cycle in needs: %s", strings.Join(cyc, " -> "))
		return nil, e.err()
	}
	c.Order = c.topo(p)
	for _, id := range c.Order {
		cs := c.steps[id]
		cs.anc = map[string]bool{}
		for _, d := range cs.deps {
			cs.anc[d] = true
			for a := range c.steps[d].anc {
				cs.anc[a] = true
			}
		}
	}

	// Expressions and parameters.
	for _, id := range c.Order {
		cs := c.steps[id]
		if cs.When != "" {
			prg, refs := c.compile(e, cs.When, cs.pos["when"], cs.pos["when.style"], cel.BoolType, "when")
			cs.when, cs.whenRefs = prg, refs
			c.checkRefs(e, cs, refs, cs.pos["when"], "when")
		}
		if cs.act != nil {
			c.params(e, cs)
		}
	}
	c.volatileFirst(e)
	for _, o := range p.Outputs {
		prg, _ := c.compile(e, o.Value, o.pos["value"], o.pos["value.style"], nil, "output "+o.Name)
		if prg != nil {
			c.outs[o.Name] = prg
		}
	}
	if err := e.err(); err != nil {
		sort.SliceStable(e.list, func(i, j int) bool {
			a, b := e.list[i], e.list[j]
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, e.list
	}
	return c, nil
}

func stepIDs(p *Playbook) []string {
	var ids []string
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.ID != "" && !seen[s.ID] {
			seen[s.ID] = true
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// findCycle returns a cycle in file order of discovery, or nil.
func (c *Checked) findCycle(p *Playbook) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range c.steps[id].deps {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				found = append(append([]string{}, stack[i:]...), d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, id := range stepIDs(p) {
		if color[id] == white && visit(id) {
			return found
		}
	}
	return nil
}

// topo orders steps so each follows its dependencies, otherwise keeping
// file order.
func (c *Checked) topo(p *Playbook) []string {
	done := map[string]bool{}
	var out []string
	var add func(id string)
	add = func(id string) {
		if done[id] {
			return
		}
		done[id] = true
		for _, d := range c.steps[id].deps {
			add(d)
		}
		out = append(out, id)
	}
	for _, id := range stepIDs(p) {
		add(id)
	}
	return out
}

// compile parses and type-checks one expression, reporting errors at their
// column inside the YAML value when the value sits on one line.
func (c *Checked) compile(e *errs, src string, at, style Pos, want *cel.Type, what string) (cel.Program, []string) {
	ast, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			p := at
			if style.Line == 1 && ce.Location.Line() == 1 && !strings.Contains(src, "\n") {
				p.Col += style.Col + ce.Location.Column()
			}
			e.at(p, "expressions see inputs.NAME, steps.ID.status and steps.ID.outputs.NAME; see docs/playbooks.md", "%s: %s", what, ce.Message)
		}
		return nil, nil
	}
	if want != nil && !want.IsAssignableType(ast.OutputType()) && ast.OutputType().Kind() != types.DynKind {
		e.at(at, "the expression must yield "+want.String(), "%s: expression yields %s, want %s", what, ast.OutputType(), want)
		return nil, nil
	}
	prg, err := c.env.Program(ast)
	if err != nil {
		e.at(at, "", "%s: %v", what, err)
		return nil, nil
	}
	var refs []string
	for _, r := range ast.NativeRep().ReferenceMap() {
		if rest, ok := strings.CutPrefix(r.Name, "steps."); ok {
			id, _, _ := strings.Cut(rest, ".")
			if !slices.Contains(refs, id) {
				refs = append(refs, id)
			}
		}
	}
	sort.Strings(refs)
	return prg, refs
}

// checkRefs insists that a step reads only steps it depends on: anything
// else might not have run yet.
func (c *Checked) checkRefs(e *errs, cs *cstep, refs []string, at Pos, what string) {
	for _, r := range refs {
		if !cs.anc[r] {
			e.at(at, fmt.Sprintf("add needs: [%s]", r), "%s reads step %q, which step %q does not need", what, r, cs.ID)
		}
	}
}

func (c *Checked) params(e *errs, cs *cstep) {
	known := map[string]action.Param{}
	var names []string
	for _, pr := range cs.spec.Params {
		known[pr.Name] = pr
		names = append(names, pr.Name)
	}
	keys := make([]string, 0, len(cs.With))
	for k := range cs.With {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pr, ok := known[k]
		at := cs.pos["with."+k]
		if !ok {
			e.at(at, "parameters of "+cs.Action+": "+strings.Join(names, ", "), "unknown parameter %q for action %s", k, cs.Action)
			continue
		}
		v := cs.With[k]
		if s, isStr := v.(string); isStr {
			if m := exprRE.FindStringSubmatch(s); m != nil {
				// The column mapping of ${{ }} values is approximate, so
				// errors point at the value.
				prg, refs := c.compile(e, m[1], at, Pos{}, pr.Type.CELType(), "with."+k)
				c.checkRefs(e, cs, refs, at, "with."+k)
				if prg != nil {
					cs.params[k] = pvalue{prog: prg, refs: refs}
				}
				continue
			}
		}
		if s, isStr := v.(string); isStr && strings.Contains(s, "${{") {
			e.at(at, `concatenate inside the expression: ${{ "prefix-" + inputs.NAME }}`, "parameter %s: an expression must be the whole value", k)
			continue
		}
		lit, err := pr.Convert(v)
		if err != nil {
			e.at(at, fmt.Sprintf("%s is %s: %s", k, pr.Type, pr.Doc), "parameter %s: %v", k, err)
			continue
		}
		cs.params[k] = pvalue{lit: lit}
	}
	for _, pr := range cs.spec.Params {
		if _, ok := cs.With[pr.Name]; ok {
			continue
		}
		switch {
		case pr.Required:
			e.at(cs.pos[""], fmt.Sprintf("add with: {%s: ...} (%s: %s)", pr.Name, pr.Type, pr.Doc), "step %q: action %s needs parameter %q", cs.ID, cs.Action, pr.Name)
		case pr.Default != nil:
			cs.params[pr.Name] = pvalue{lit: pr.Default}
		}
	}
}

// volatileFirst enforces the capture-first rule: in a playbook that both
// captures volatile state and contains, every containment step must come
// after every volatile capture, because containment (isolating, cordoning,
// killing) can destroy that state. Containment that preserves (Spec.Preserves:
// protection from termination) is exempt: it belongs before the capture.
func (c *Checked) volatileFirst(e *errs) {
	var vol, con []*cstep
	for _, id := range c.Order {
		cs := c.steps[id]
		if cs.act == nil {
			continue
		}
		if cs.spec.Volatile {
			vol = append(vol, cs)
		}
		if cs.spec.Kind == action.Contain && !cs.spec.Preserves {
			con = append(con, cs)
		}
	}
	for _, k := range con {
		for _, v := range vol {
			if !k.anc[v.ID] {
				e.at(k.pos[""], fmt.Sprintf("add requires_capture: [%s] to step %q (or needs) so the capture runs first and a failed capture stops containment", v.ID, k.ID),
					"containment step %q may run before volatile capture %q", k.ID, v.ID)
			}
		}
	}
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none registered"
	}
	return strings.Join(l, ", ")
}

func joinTypes(ts []action.ParamType, sep string) string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return strings.Join(s, sep)
}
