package playbooks

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
)

// TargetSep joins a step ID and its target in a run over many targets:
// isolate@payments/web-1.
const TargetSep = "@"

// ForTargets returns the playbook that runs c's steps once per target,
// each target being the inputs of one pod (its pod input and what derives
// from it). Step IDs become ID@POD, needs and expressions stay within one
// target, and --approve ID approves the step for every target.
func (c *Checked) ForTargets(pod string, targets []Inputs) *Checked {
	out := &Checked{Playbook: c.Playbook, steps: map[string]*cstep{}, env: c.env, outs: c.outs, targets: targets, targetInput: pod, base: c.root()}
	c = out.base
	for _, in := range targets {
		t, _ := in[pod].(string)
		key := func(id string) string { return id + TargetSep + t }
		for _, id := range c.Order {
			cs := *c.steps[id]
			st := *cs.Step
			st.ID = key(id)
			st.Needs = mapIDs(st.Needs, key)
			st.RequiresCapture = mapIDs(st.RequiresCapture, key)
			cs.Step = &st
			cs.deps = mapIDs(cs.deps, key)
			cs.target, cs.local, cs.in = t, id, in
			out.steps[st.ID] = &cs
			out.Order = append(out.Order, st.ID)
		}
	}
	return out
}

// root is the playbook as validated, before any ForTargets.
func (c *Checked) root() *Checked {
	if c.base != nil {
		return c.base
	}
	return c
}

// withAdded is the single-target run in (plain step IDs) joined by the
// added targets (steps ID@POD): what a run becomes when a second run adds
// targets to it.
func (c *Checked) withAdded(pod string, in Inputs, added []Inputs) *Checked {
	c = c.root()
	out := c.ForTargets(pod, added)
	out.first = in
	for _, id := range c.Order {
		cs := *c.steps[id]
		cs.local = id // its own playbook ID: approvals and serialising as for the others
		out.steps[id] = &cs
	}
	out.Order = append(slices.Clone(c.Order), out.Order...)
	return out
}

func mapIDs(ids []string, f func(string) string) []string {
	if ids == nil {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = f(id)
	}
	return out
}

// vars are the CEL variables a step sees: its target's inputs and its
// target's steps under their playbook IDs.
func (c *Checked) vars(cs *cstep, in Inputs, res map[string]StepResult) map[string]any {
	if cs.target == "" {
		return activation(in, res)
	}
	local := map[string]StepResult{}
	for id, r := range res {
		if base, t, ok := strings.Cut(id, TargetSep); ok && t == cs.target {
			local[base] = r
		}
	}
	return activation(cs.in, local)
}

// Expander is a TargetResolver that also turns a reference to many pods
// into the pods, for runs over many targets.
type Expander interface {
	Expand(ctx context.Context, ref string) ([]string, error)
}

// ManyPods reports whether a pod reference names several pods: a list
// (NS/A,NS/B), a label selector (selector:NS/SELECTOR) or a workload
// (deployment:, statefulset:, daemonset:, job: NS/NAME).
func ManyPods(ref string) bool {
	kind, _, ok := strings.Cut(ref, ":")
	return strings.Contains(ref, ",") && !ok || ok && slices.Contains(workloadKinds, kind)
}

var workloadKinds = []string{"selector", "deployment", "statefulset", "daemonset", "job"}

// Expand resolves a reference to many pods, sorted, at plan time.
func (t kubeTargets) Expand(ctx context.Context, ref string) ([]string, error) {
	kind, rest, ok := strings.Cut(ref, ":")
	if !ok || !slices.Contains(workloadKinds, kind) {
		var out []string
		for _, p := range strings.Split(ref, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			r, err := t.pod(ctx, p)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || ns == "" || name == "" {
		return nil, &TargetError{Msg: fmt.Sprintf("%q: want %s:NAMESPACE/%s", ref, kind, map[bool]string{true: "SELECTOR", false: "NAME"}[kind == "selector"]),
			Hint: "for example deployment:payments/web or selector:payments/app=web"}
	}
	selector := name
	if kind != "selector" {
		var sel *metav1.LabelSelector
		var err error
		apps := t.k.AppsV1()
		switch kind {
		case "deployment":
			d, e := apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			err = e
			if e == nil {
				sel = d.Spec.Selector
			}
		case "statefulset":
			s, e := apps.StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			err = e
			if e == nil {
				sel = s.Spec.Selector
			}
		case "daemonset":
			s, e := apps.DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			err = e
			if e == nil {
				sel = s.Spec.Selector
			}
		case "job":
			j, e := t.k.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			err = e
			if e == nil {
				sel = j.Spec.Selector
			}
		}
		if err != nil {
			return nil, &TargetError{Msg: fmt.Sprintf("%s %s/%s: %v", kind, ns, name, err), Hint: "check the name with 'kubectl get " + kind + " -n " + ns + "'"}
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || sel == nil {
			return nil, &TargetError{Msg: fmt.Sprintf("%s %s/%s has no usable selector", kind, ns, name), Hint: "give the pods as a list or a selector"}
		}
		selector = s.String()
	}
	l, err := t.k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", ref, err)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, ns+"/"+p.Name)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, &TargetError{Msg: "no pod matches " + ref, Hint: "check the selector with 'kubectl get pods -n " + ns + " -l SELECTOR'"}
	}
	return out, nil
}

// ResolveTargets resolves the inputs as Resolve does, except that a pod
// input naming many pods (ManyPods) gives one Inputs per pod, each with
// the inputs derived from that pod; pod is then that input's name. A
// single pod gives one Inputs and pod "".
func ResolveTargets(ctx context.Context, c *Checked, given map[string]string, resolvers map[action.Cloud]TargetResolver) (pod string, targets []Inputs, err error) {
	for _, in := range c.Inputs {
		if in.Type == action.Pod && ManyPods(given[in.Name]) {
			pod = in.Name
			break
		}
	}
	if pod == "" {
		in, err := Resolve(ctx, c, given, resolvers)
		return "", []Inputs{in}, err
	}
	ex, ok := resolvers[action.Kubernetes].(Expander)
	if !ok {
		return "", nil, fmt.Errorf("%w: input %s: %s names many pods, which needs a Kubernetes connection", ErrInvalid, pod, given[pod])
	}
	pods, err := ex.Expand(ctx, given[pod])
	if te, isTE := err.(*TargetError); isTE {
		return "", nil, &Error{File: c.file, Msg: fmt.Sprintf("input %q: %s", pod, te.Msg), HintText: te.Hint}
	}
	if err != nil {
		return "", nil, err
	}
	for _, p := range pods {
		g := map[string]string{}
		for k, v := range given {
			g[k] = v
		}
		g[pod] = p
		in, err := Resolve(ctx, c, g, resolvers)
		if err != nil {
			return "", nil, err
		}
		targets = append(targets, in)
	}
	return pod, targets, nil
}

// outputScope is the inputs the playbook's outputs are computed from: the
// run's, or one target's (its outputs named NAME@POD).
type outputScope struct {
	key string
	in  Inputs
}

func (o outputScope) suffix() string {
	if o.key == "" {
		return ""
	}
	return TargetSep + o.key
}

func (c *Checked) outputScopes(in Inputs) []outputScope {
	if len(c.targets) == 0 {
		return []outputScope{{in: in}}
	}
	var out []outputScope
	if c.first != nil {
		out = append(out, outputScope{in: c.first})
	}
	for _, t := range c.targets {
		k, _ := t[c.targetInput].(string)
		out = append(out, outputScope{key: k, in: t})
	}
	return out
}
