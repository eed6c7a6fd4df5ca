package playbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/eksir/eksir/action"
)

// MaxSize bounds a playbook file; playbooks are small, and the bound keeps
// a hostile file from exhausting memory.
const MaxSize = 1 << 20

var (
	idRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// yaml.v3 reports syntax errors as "yaml: line N: ...".
	yamlLineRE      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlParserErrRE = regexp.MustCompile(`^did not find expected (key|node content|',' or '\]'|',' or '\}'|'-' indicator|<document start>)$`)
)

// Parse reads a playbook, checking its shape (fields, types, names) but not
// its actions or expressions: Validate does that against a registry. Every
// problem names file:line:col.
func Parse(file string, data []byte) (*Playbook, error) {
	e := &errs{file: file}
	if len(data) > MaxSize {
		e.at(Pos{}, "split the playbook", "playbook is %d bytes, more than the %d allowed", len(data), MaxSize)
		return nil, e.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			e.at(Pos{1, 1}, "start from 'eksir playbooks show triage'", "playbook is empty")
			return nil, e.err()
		}
		e.yamlError(data, err)
		return nil, e.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		e.at(nodePos(&extra), "put each playbook in its own file", "more than one YAML document")
		return nil, e.err()
	} else if !errors.Is(err, io.EOF) {
		e.yamlError(data, err)
		return nil, e.err()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if hasAlias(root, 0) {
		e.at(nodePos(root), "write values out in full", "YAML anchors, aliases and merge keys are not allowed in playbooks")
		return nil, e.err()
	}
	p := &Playbook{file: file, source: data, pos: map[string]Pos{}}
	if !e.isMap(root, "the playbook") {
		return nil, e.err()
	}
	seen := map[string]bool{}
	e.fields(root, "playbook", []string{"apiVersion", "kind", "metadata", "drill", "inputs", "steps", "outputs"}, func(k string, v *yaml.Node) {
		seen[k] = true
		p.pos[k] = nodePos(v)
		switch k {
		case "apiVersion":
			p.APIVersion = e.str(v, k)
			if p.APIVersion != APIVersion && e.isStr(v) {
				e.at(nodePos(v), "use apiVersion: "+APIVersion, "unsupported apiVersion %q", p.APIVersion)
			}
		case "kind":
			p.Kind = e.str(v, k)
			if p.Kind != KindName && e.isStr(v) {
				e.at(nodePos(v), "use kind: "+KindName, "unsupported kind %q", p.Kind)
			}
		case "metadata":
			p.Metadata = e.metadata(v)
		case "drill":
			p.Drill = e.boolean(v, k)
		case "inputs":
			if e.isSeq(v, "inputs") {
				for _, n := range v.Content {
					p.Inputs = append(p.Inputs, e.input(n))
				}
			}
		case "steps":
			if e.isSeq(v, "steps") {
				for _, n := range v.Content {
					p.Steps = append(p.Steps, e.step(n))
				}
			}
		case "outputs":
			if e.isSeq(v, "outputs") {
				for _, n := range v.Content {
					p.Outputs = append(p.Outputs, e.output(n))
				}
			}
		}
	})
	for _, k := range []string{"apiVersion", "kind", "metadata", "steps"} {
		if !seen[k] {
			e.at(nodePos(root), "every playbook has apiVersion, kind, metadata and steps", "missing %s", k)
		}
	}
	if seen["steps"] && len(p.Steps) == 0 && len(e.list) == 0 {
		e.at(p.pos["steps"], "add at least one step", "steps is empty")
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func (e *errs) yamlError(data []byte, err error) {
	problem := strings.TrimPrefix(err.Error(), "yaml: ")
	pos, hint, format := Pos{1, 1}, "fix the YAML syntax", "YAML: %s"
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 reports parser (not scanner) errors at the 0-based line
		// of the construct they were inside; make it 1-based.
		if yamlParserErrRE.MatchString(m[2]) {
			line++
		}
		problem, pos = m[2], Pos{line, 1}
		hint, format = "fix the YAML syntax (indentation, quotes, ':' inside values)", "YAML syntax: %s"
	}
	if strings.Contains(problem, "tab character") {
		pos = tabPos(data, problem, pos)
	}
	e.at(pos, hint, format, problem)
}

// tabPos finds the tab that yaml.v3 rejected with problem. The library
// names the line where the scalar being scanned began (often the line
// before the tab), not the tab's own, so tabPos asks it again: the tab is
// on the first line L such that the text up to the end of L already fails
// with the same problem, found by binary search. The tab that fails is the
// first on that line: the scanner stops at the first tab inside the
// indentation. When no line fails alike, tabPos returns at.
func tabPos(data []byte, problem string, at Pos) Pos {
	var ends []int // ends[i] is the offset just past line i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(i int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[i]]))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				return !errors.Is(err, io.EOF) && strings.HasSuffix(err.Error(), ": "+problem)
			}
		}
	}
	i := sort.Search(len(ends), fails)
	if i == len(ends) {
		return at
	}
	start := 0
	if i > 0 {
		start = ends[i-1]
	}
	col := bytes.IndexByte(data[start:ends[i]], '\t')
	if col < 0 {
		return at
	}
	return Pos{i + 1, col + 1}
}

func hasAlias(n *yaml.Node, depth int) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 64 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

func nodePos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return "a scalar (" + strings.TrimPrefix(n.Tag, "!!") + ")"
	}
	return "something else"
}

func (e *errs) isMap(n *yaml.Node, what string) bool {
	if n.Kind != yaml.MappingNode {
		e.at(nodePos(n), "write "+what+" as 'key: value' lines", "%s must be a mapping, found %s", what, kindName(n))
		return false
	}
	return true
}

func (e *errs) isSeq(n *yaml.Node, what string) bool {
	if n.Kind != yaml.SequenceNode {
		e.at(nodePos(n), "write "+what+" as a list of '- ' items", "%s must be a list, found %s", what, kindName(n))
		return false
	}
	return true
}

func (e *errs) isStr(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!str" }

// str reads a string scalar. Numbers and booleans are refused rather than
// coerced, so "on_error: yes" does not silently become "true".
func (e *errs) str(n *yaml.Node, field string) string {
	if !e.isStr(n) {
		e.at(nodePos(n), "quote the value", "%s must be a string, found %s", field, kindName(n))
		return ""
	}
	return n.Value
}

func (e *errs) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		e.at(nodePos(n), "use true or false", "%s must be true or false, found %s", field, kindName(n))
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (e *errs) strList(n *yaml.Node, field string) []string {
	if !e.isSeq(n, field) {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, e.str(c, field+" item"))
	}
	return out
}

// fields walks a mapping, refusing unknown and duplicate keys with the list
// of known ones as the hint.
func (e *errs) fields(n *yaml.Node, what string, known []string, f func(k string, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !e.isStr(k) {
			e.at(nodePos(k), "keys are names", "%s key must be a string, found %s", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			e.at(nodePos(k), "remove one of them", "%s has %q twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		ok := false
		for _, kn := range known {
			ok = ok || kn == k.Value
		}
		if !ok {
			e.at(nodePos(k), "known fields: "+strings.Join(known, ", "), "unknown field %q in %s", k.Value, what)
			continue
		}
		f(k.Value, v)
	}
}

func (e *errs) metadata(n *yaml.Node) Metadata {
	var m Metadata
	if !e.isMap(n, "metadata") {
		return m
	}
	e.fields(n, "metadata", []string{"name", "description", "severity", "references"}, func(k string, v *yaml.Node) {
		switch k {
		case "name":
			m.Name = e.str(v, k)
			if e.isStr(v) && !nameRE.MatchString(m.Name) {
				e.at(nodePos(v), "use lower case letters, digits and dashes", "metadata.name %q is not allowed", m.Name)
			}
		case "description":
			m.Description = e.str(v, k)
		case "severity":
			m.Severity = e.str(v, k)
			switch m.Severity {
			case "low", "medium", "high", "critical", "":
			default:
				e.at(nodePos(v), "use low, medium, high or critical", "unknown severity %q", m.Severity)
			}
		case "references":
			m.References = e.strList(v, k)
		}
	})
	if m.Name == "" {
		e.at(nodePos(n), "name the playbook: metadata.name", "metadata.name is missing")
	}
	return m
}

func (e *errs) input(n *yaml.Node) Input {
	in := Input{pos: map[string]Pos{"": nodePos(n)}}
	if !e.isMap(n, "an input") {
		return in
	}
	e.fields(n, "input", []string{"name", "type", "required", "default", "doc", "from"}, func(k string, v *yaml.Node) {
		in.pos[k] = nodePos(v)
		switch k {
		case "name":
			in.Name = e.str(v, k)
			if e.isStr(v) && !idRE.MatchString(in.Name) {
				e.at(nodePos(v), "use lower case letters, digits and underscores, starting with a letter", "input name %q is not allowed", in.Name)
			}
		case "type":
			in.Type = action.ParamType(e.str(v, k))
			if e.isStr(v) && !validInputType(in.Type) {
				e.at(nodePos(v), "use one of: "+inputTypeList(), "unknown input type %q", in.Type)
			}
		case "required":
			in.Required = e.boolean(v, k)
		case "default":
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				e.at(nodePos(v), "write the default as a single value", "default must be a scalar, found %s", kindName(v))
				return
			}
			in.Default, in.hasDefault = v.Value, true
		case "doc":
			in.Doc = e.str(v, k)
		case "from":
			in.From = e.str(v, k)
		}
	})
	if in.Name == "" {
		e.at(nodePos(n), "every input has a name", "input without a name")
	}
	if in.Type == "" {
		e.at(nodePos(n), "use one of: "+inputTypeList(), "input %q has no type", in.Name)
	}
	if in.Required && in.hasDefault {
		e.at(in.pos["default"], "drop required or the default", "input %q is required and has a default", in.Name)
	}
	if in.From != "" && (in.Required || in.hasDefault) {
		e.at(in.pos["from"], "drop required and default: the input comes from its target when not given", "input %q has from and also required or a default", in.Name)
	}
	return in
}

func validInputType(t action.ParamType) bool { return slices.Contains(action.InputTypes(), t) }

func inputTypeList() string {
	var s []string
	for _, t := range action.InputTypes() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

func (e *errs) step(n *yaml.Node) Step {
	s := Step{pos: map[string]Pos{"": nodePos(n)}}
	if !e.isMap(n, "a step") {
		return s
	}
	e.fields(n, "step", []string{"id", "action", "with", "when", "needs", "requires_capture", "timeout", "on_error", "approve"}, func(k string, v *yaml.Node) {
		s.pos[k] = nodePos(v)
		switch k {
		case "id":
			s.ID = e.str(v, k)
			if e.isStr(v) && !idRE.MatchString(s.ID) {
				e.at(nodePos(v), "use lower case letters, digits and underscores, starting with a letter (CEL names steps as steps.ID)", "step id %q is not allowed", s.ID)
			}
		case "action":
			s.Action = e.str(v, k)
		case "with":
			if !e.isMap(v, "with") {
				return
			}
			s.With = map[string]any{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				kn, vn := v.Content[i], v.Content[i+1]
				if !e.isStr(kn) {
					e.at(nodePos(kn), "parameter names are strings", "with key must be a string, found %s", kindName(kn))
					continue
				}
				if _, dup := s.With[kn.Value]; dup {
					e.at(nodePos(kn), "remove one of them", "with has %q twice", kn.Value)
					continue
				}
				s.pos["with."+kn.Value] = nodePos(vn)
				s.With[kn.Value] = nodeValue(vn)
			}
		case "when":
			s.When = e.str(v, k)
			s.pos["when.style"] = exprOffset(v)
		case "needs":
			s.Needs = e.strList(v, k)
		case "requires_capture":
			s.RequiresCapture = e.strList(v, k)
		case "timeout":
			s.Timeout = e.str(v, k)
		case "on_error":
			s.OnError = e.str(v, k)
			if e.isStr(v) && s.OnError != OnErrorAbort && s.OnError != OnErrorContinue {
				e.at(nodePos(v), "use abort or continue", "unknown on_error %q", s.OnError)
			}
		case "approve":
			s.Approve = e.boolean(v, k)
		}
	})
	if s.ID == "" {
		e.at(nodePos(n), "give every step an id", "step without an id")
	}
	if s.Action == "" {
		e.at(nodePos(n), "name the action, for example action: collect.k8s-objects", "step %q has no action", s.ID)
	}
	return s
}

func (e *errs) output(n *yaml.Node) Output {
	o := Output{pos: map[string]Pos{"": nodePos(n)}}
	if !e.isMap(n, "an output") {
		return o
	}
	e.fields(n, "output", []string{"name", "value"}, func(k string, v *yaml.Node) {
		o.pos[k] = nodePos(v)
		switch k {
		case "name":
			o.Name = e.str(v, k)
			if e.isStr(v) && !idRE.MatchString(o.Name) {
				e.at(nodePos(v), "use lower case letters, digits and underscores", "output name %q is not allowed", o.Name)
			}
		case "value":
			o.Value = e.str(v, k)
			o.pos["value.style"] = exprOffset(v)
		}
	})
	if o.Name == "" || o.Value == "" {
		e.at(nodePos(n), "an output has a name and a value (a CEL expression)", "output needs name and value")
	}
	return o
}

// exprOffset records how to map a column inside an expression to the file:
// Line is 1 for a single-line plain or quoted scalar whose text starts
// Col-1 characters after the node's column; 0 when the mapping is unknown
// (block scalars), in which case errors point at the node.
func exprOffset(n *yaml.Node) Pos {
	switch n.Style {
	case 0:
		return Pos{1, 0}
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		return Pos{1, 1}
	}
	return Pos{}
}

// nodeValue turns a YAML value into plain Go values (string, int64, bool,
// float64, nil, []any, map[string]any).
func nodeValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return i
			}
		case "!!bool":
			b, _ := strconv.ParseBool(n.Value)
			return b
		case "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f
			}
		case "!!null":
			return nil
		}
		return n.Value
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			out = append(out, nodeValue(c))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = nodeValue(n.Content[i+1])
		}
		return out
	}
	return fmt.Sprint(n.Value)
}
