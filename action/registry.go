package action

import (
	"fmt"
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
