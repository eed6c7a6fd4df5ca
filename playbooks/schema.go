package playbooks

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/eksir/eksir/action"
)

// JSONSchema returns the JSON Schema (draft 2020-12) of the playbook
// format, generated from the Go types and their json, doc, enum and
// pattern tags, the input types declared in package action, and the given
// actions' parameters (each step's with, by action name), so the published
// schema cannot drift from the parser or the registry.
// docs/playbook.schema.json is this output for every registered action.
func JSONSchema(specs ...action.Spec) ([]byte, error) {
	s := schemaOf(reflect.TypeOf(Playbook{}))
	s["properties"].(map[string]any)["inputs"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)["from"] = fromSchema()
	if len(specs) > 0 {
		step := s["properties"].(map[string]any)["steps"].(map[string]any)["items"].(map[string]any)
		var names []string
		var rules []any
		for _, sp := range specs {
			names = append(names, sp.Name)
			rules = append(rules, map[string]any{
				"if":   map[string]any{"properties": map[string]any{"action": map[string]any{"const": sp.Name}}},
				"then": map[string]any{"properties": map[string]any{"with": withSchema(sp)}},
			})
		}
		step["properties"].(map[string]any)["action"].(map[string]any)["enum"] = names
		step["allOf"] = rules
	}
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://eksir.io/schemas/playbook-v1.json"
	s["title"] = "eksir playbook (" + APIVersion + ")"
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// withSchema is an action's parameters: each of its declared type or a
// whole-value ${{ }} expression.
func withSchema(sp action.Spec) map[string]any {
	props := map[string]any{}
	var req []string
	for _, p := range sp.Params {
		v := p.Type.Schema()
		if len(p.Enum) > 0 {
			v["enum"] = p.Enum
		}
		props[p.Name] = map[string]any{"description": p.Doc, "anyOf": []any{v, map[string]any{"type": "string", "pattern": exprRE.String()}}}
		if p.Required {
			req = append(req, p.Name)
		}
	}
	w := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		w["required"] = req
	}
	return w
}

var paramTypeType = reflect.TypeOf(action.ParamType(""))

func schemaOf(t reflect.Type) map[string]any {
	if t == paramTypeType {
		var enum []string
		for _, it := range action.InputTypes() {
			enum = append(enum, string(it))
		}
		return map[string]any{"type": "string", "enum": enum}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		props := map[string]any{}
		var req []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			p := schemaOf(f.Type)
			if d := f.Tag.Get("doc"); d != "" {
				p["description"] = d
			}
			if e := f.Tag.Get("enum"); e != "" {
				p["enum"] = strings.Split(e, ",")
			}
			if pat := f.Tag.Get("pattern"); pat != "" {
				p["pattern"] = pat
			}
			props[name] = p
			if !strings.Contains(opts, "omitempty") {
				req = append(req, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(req) > 0 {
			s["required"] = req
		}
		return s
	}
	return map[string]any{}
}

// fromSchema is an input's from, read from Attributes.
func fromSchema() map[string]any {
	var names, doc []string
	for _, n := range attributeNames() {
		t, a, _ := strings.Cut(n, ".")
		names = append(names, a)
		at := Attributes[action.ParamType(t)][a]
		doc = append(doc, fmt.Sprintf("%s_INPUT.%s (type %s: %s)", strings.ToUpper(t), a, at.Type, at.Doc))
	}
	return map[string]any{"type": "string",
		"description": "when the input is not given, resolve it before any change from an attribute of another input's target: " + strings.Join(doc, "; "),
		"pattern":     `^[a-z][a-z0-9_]*\.(` + strings.Join(names, "|") + `)$`}
}
