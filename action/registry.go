package action

import (
	"fmt"
	"slices"
	"sort"
)

// Registry holds the actions a playbook may name.
type Registry struct {
	actions map[string]Action
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{actions: map[string]Action{}} }

// Register adds actions. Names are unique; a second registration of a name
// is a programming error.
func (r *Registry) Register(as ...Action) {
	for _, a := range as {
		s := a.Spec()
		if _, dup := r.actions[s.Name]; dup {
			panic(fmt.Sprintf("action %q registered twice", s.Name))
		}
		if _, ok := a.(Reverser); ok != s.Reversible {
			panic(fmt.Sprintf("action %q: Reversible=%v but Reverser implemented=%v", s.Name, s.Reversible, ok))
		}
		if err := s.check(); err != nil {
			panic(fmt.Sprintf("action %q: %v", s.Name, err))
		}
		r.actions[s.Name] = a
	}
}

// Lookup finds an action by name.
func (r *Registry) Lookup(name string) (Action, bool) {
	a, ok := r.actions[name]
	return a, ok
}

// Names lists the registered action names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.actions))
	for n := range r.actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Specs lists the specs, sorted by name.
func (r *Registry) Specs() []Spec {
	var out []Spec
	for _, n := range r.Names() {
		out = append(out, r.actions[n].Spec())
	}
	return out
}

// check keeps the declarations consistent with each other: the clouds an
// action needs cover the permissions it asks for, and its parameter types
// exist.
func (s Spec) check() error {
	if len(s.Needs) == 0 {
		return fmt.Errorf("no clouds declared: set Needs to the clouds it talks to")
	}
	if len(s.Permissions.IAM) > 0 && !slices.Contains(s.Needs, AWS) {
		return fmt.Errorf("asks for IAM permissions but does not declare Needs: aws")
	}
	if len(s.Permissions.Kube) > 0 && !slices.Contains(s.Needs, Kubernetes) {
		return fmt.Errorf("asks for Kubernetes permissions but does not declare Needs: kubernetes")
	}
	if s.RevokesCredential && s.Kind != Contain {
		return fmt.Errorf("RevokesCredential on a %s action", s.Kind)
	}
	for _, p := range s.Params {
		if !p.Type.Valid() {
			return fmt.Errorf("parameter %s: unknown type %q", p.Name, p.Type)
		}
	}
	return nil
}

// Clouds returns the clouds any of the specs needs, in a fixed order.
func Clouds(specs []Spec) []Cloud {
	var out []Cloud
	for _, c := range []Cloud{Kubernetes, AWS} {
		for _, s := range specs {
			if slices.Contains(s.Needs, c) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}
