package action

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// ParamType is the type of an action parameter or a playbook input. Every
// fact about a type (how text and YAML literals parse, its CEL type, its
// JSON Schema, its journal form, the CLI flag of a target) is declared once,
// in the table below; the parser, validator, resolver, engine, release and
// CLI read it from there.
type ParamType string

// Parameter types.
const (
	String     ParamType = "string"
	Int        ParamType = "int"
	Bool       ParamType = "bool"
	Duration   ParamType = "duration"
	StringList ParamType = "string-list"
	StringMap  ParamType = "string-map"
	Namespace  ParamType = "namespace"
	// Target types name what an incident is about. The engine resolves
	// them before any change and the CLI has a flag for each.
	Pod       ParamType = "pod"
	Node      ParamType = "node"
	Instance  ParamType = "instance"
	IAMRole   ParamType = "iam-role"
	AccessKey ParamType = "access-key"
)

// Target is what a target type adds: the CLI flag that fills it and the
// cloud that holds it.
type Target struct {
	// Flag is the run/plan flag that fills every input of this type.
	Flag string
	// Usage is the flag's help text.
	Usage string
	// Cloud is where the target is looked up.
	Cloud Cloud
}

type typeInfo struct {
	doc    string
	cel    *cel.Type
	schema map[string]any
	// zero is a value of the Go type, for CEL conversion and JSON decoding.
	zero any
	// text parses a value written as text (CLI flags, playbook inputs,
	// journaled inputs); nil when the type has no text form.
	text func(string) (any, error)
	// literal converts a decoded YAML value.
	literal func(any) (any, error)
	target  *Target
}

// typeOrder is the documentation order; typeTable holds the declarations.
var typeOrder = []ParamType{Pod, Node, Instance, IAMRole, AccessKey, Namespace, String, Int, Bool, Duration, StringList, StringMap}

var typeTable = map[ParamType]typeInfo{
	String:   {doc: "text", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(false), literal: literalString},
	Int:      {doc: "integer", cel: cel.IntType, schema: map[string]any{"type": "integer"}, zero: int64(0), text: textInt, literal: literalInt},
	Bool:     {doc: "true or false", cel: cel.BoolType, schema: map[string]any{"type": "boolean"}, zero: false, text: textBool, literal: literalBool},
	Duration: {doc: "Go duration such as 90s or 5m", cel: cel.DurationType, schema: map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}, zero: time.Duration(0), text: textDuration, literal: literalDuration},
	StringList: {doc: "list of strings", cel: cel.ListType(cel.StringType), schema: map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		zero: []string{}, literal: literalStringList},
	StringMap: {doc: "mapping of strings to strings", cel: cel.MapType(cel.StringType, cel.StringType), schema: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		zero: map[string]string{}, literal: literalStringMap},
	Namespace: {doc: "Kubernetes namespace", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString},
	Pod: {doc: "pod as namespace/name", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString,
		target: &Target{Flag: "pod", Usage: "suspect pod as NAMESPACE/NAME; several (the steps run once per pod): NS/A,NS/B, selector:NS/SELECTOR, or deployment:, statefulset:, daemonset:, job:NS/NAME", Cloud: Kubernetes}},
	Node: {doc: "node name", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString,
		target: &Target{Flag: "node", Usage: "node name", Cloud: Kubernetes}},
	Instance: {doc: "EC2 instance ID", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString,
		target: &Target{Flag: "instance", Usage: "EC2 instance ID", Cloud: AWS}},
	IAMRole: {doc: "IAM role ARN", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString,
		target: &Target{Flag: "iam-role", Usage: "IAM role ARN", Cloud: AWS}},
	AccessKey: {doc: "IAM access key ID", cel: cel.StringType, schema: map[string]any{"type": "string"}, zero: "", text: textString(true), literal: literalString,
		target: &Target{Flag: "access-key", Usage: "IAM access key ID", Cloud: AWS}},
}

// Types lists every parameter type in documentation order.
func Types() []ParamType { return slices.Clone(typeOrder) }

// InputTypes lists the types a playbook input may have: those with a text
// form, since inputs arrive as flags.
func InputTypes() []ParamType {
	var out []ParamType
	for _, t := range typeOrder {
		if typeTable[t].text != nil {
			out = append(out, t)
		}
	}
	return out
}

// TargetTypes lists the target types in documentation order.
func TargetTypes() []ParamType {
	var out []ParamType
	for _, t := range typeOrder {
		if typeTable[t].target != nil {
			out = append(out, t)
		}
	}
	return out
}

// Valid reports whether t is a declared type.
func (t ParamType) Valid() bool { _, ok := typeTable[t]; return ok }

// Doc describes the type in a few words.
func (t ParamType) Doc() string { return typeTable[t].doc }

// Target returns the target declaration of a target type.
func (t ParamType) Target() (Target, bool) {
	if tg := typeTable[t].target; tg != nil {
		return *tg, true
	}
	return Target{}, false
}

// CELType is the type expressions see for a value of t.
func (t ParamType) CELType() *cel.Type {
	if c := typeTable[t].cel; c != nil {
		return c
	}
	return cel.DynType
}

// Schema is the JSON Schema of a value of t as a playbook writes it.
func (t ParamType) Schema() map[string]any {
	out := map[string]any{"description": typeTable[t].doc}
	for k, v := range typeTable[t].schema {
		out[k] = v
	}
	return out
}

// ParseText converts a value written as text (a flag, an input default, a
// journaled input) to t's Go value. Only types listed by InputTypes have a
// text form.
func (t ParamType) ParseText(s string) (any, error) {
	info, ok := typeTable[t]
	if !ok || info.text == nil {
		return nil, fmt.Errorf("type %s cannot be written as text", t)
	}
	return info.text(s)
}

// FormatText is ParseText's inverse, for the journal.
func FormatText(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(v)
}

// Convert checks a decoded YAML value against the parameter's type and
// enum and returns it as the declared Go type: string, int64, bool,
// time.Duration, []string or map[string]string.
func (p Param) Convert(v any) (any, error) {
	info, ok := typeTable[p.Type]
	if !ok {
		return nil, fmt.Errorf("unknown type %s", p.Type)
	}
	out, err := info.literal(v)
	if err != nil {
		return nil, err
	}
	return out, p.checkEnum(out)
}

// FromCEL converts the value of a CEL expression to the parameter's Go
// type (a duration may also be written as a string).
func (p Param) FromCEL(v ref.Val) (any, error) {
	if types.IsError(v) {
		return nil, fmt.Errorf("%v", v)
	}
	if p.Type == Duration {
		if s, ok := v.Value().(string); ok {
			return p.Convert(s)
		}
	}
	info, ok := typeTable[p.Type]
	if !ok {
		return nil, fmt.Errorf("unknown type %s", p.Type)
	}
	x, err := v.ConvertToNative(reflect.TypeOf(info.zero))
	if err != nil {
		return nil, err
	}
	return x, p.checkEnum(x)
}

// FromJSON rebuilds a journaled parameter (JSON loses int64,
// time.Duration, lists and maps) as the declared Go type.
func (p Param) FromJSON(raw json.RawMessage) (any, error) {
	info, ok := typeTable[p.Type]
	if !ok {
		return nil, fmt.Errorf("unknown type %s", p.Type)
	}
	v := reflect.New(reflect.TypeOf(info.zero))
	err := json.Unmarshal(raw, v.Interface())
	return v.Elem().Interface(), err
}

func (p Param) checkEnum(v any) error {
	if len(p.Enum) == 0 {
		return nil
	}
	s, _ := v.(string)
	if !slices.Contains(p.Enum, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(p.Enum, ", "))
	}
	return nil
}

// ---- text and literal forms ----

func textString(nonEmpty bool) func(string) (any, error) {
	return func(s string) (any, error) {
		if nonEmpty && s == "" {
			return nil, fmt.Errorf("empty value")
		}
		return s, nil
	}
}

func textInt(s string) (any, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%q is not an integer", s)
	}
	return i, nil
}

func textBool(s string) (any, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return nil, fmt.Errorf("%q is not true or false", s)
}

func textDuration(s string) (any, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration (use 90s, 5m, 1h)", s)
	}
	return d, nil
}

func literalString(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("want a string, found %s", Describe(v))
	}
	return s, nil
}

func literalInt(v any) (any, error) {
	i, ok := v.(int64)
	if !ok {
		return nil, fmt.Errorf("want an integer, found %s", Describe(v))
	}
	return i, nil
}

func literalBool(v any) (any, error) {
	b, ok := v.(bool)
	if !ok {
		return nil, fmt.Errorf("want true or false, found %s", Describe(v))
	}
	return b, nil
}

func literalDuration(v any) (any, error) {
	switch d := v.(type) {
	case string:
		return textDuration(d)
	case time.Duration:
		return d, nil
	}
	return nil, fmt.Errorf("want a duration, found %s", Describe(v))
}

func literalStringList(v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings, found %s", Describe(v))
	}
	out := []string{}
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want a list of strings, found an item %s", Describe(x))
		}
		out = append(out, s)
	}
	return out, nil
}

func literalStringMap(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping of strings, found %s", Describe(v))
	}
	out := map[string]string{}
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want a mapping of strings, found %s for %q", Describe(x), k)
		}
		out[k] = s
	}
	return out, nil
}

// Describe names the kind of a decoded YAML value for error messages.
func Describe(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
