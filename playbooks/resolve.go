package playbooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awstarget"
)

// Inputs are resolved input values: strings ("namespace/name" for pods)
// and time.Duration for duration inputs.
type Inputs map[string]any

// A TargetResolver looks targets of one cloud up. Resolve returns the
// canonical reference of a target (a pod given by name alone comes back as
// namespace/name), or a *TargetError when it does not exist or is
// ambiguous; other errors mean the lookup itself failed.
type TargetResolver interface {
	Resolve(ctx context.Context, t action.ParamType, ref string) (string, error)
}

// TargetError is a target that does not resolve: bad input.
type TargetError struct{ Msg, Hint string }

func (e *TargetError) Error() string { return e.Msg }

// Attribute is what an input's from may read of another input's target.
type Attribute struct {
	// Type is the type of the value, which the derived input must declare.
	Type action.ParamType
	// Doc says what the value is, for docs and the schema.
	Doc string
}

// Attributes are what an input's from may read, by the type of the input
// it reads (pod, node) and the attribute's name: the one table validation,
// resolution, the schema and docs/playbooks.md read.
var Attributes = map[action.ParamType]map[string]Attribute{
	action.Pod: {
		"node":            {action.Node, "the node the pod runs on; \"\" for a pod not scheduled"},
		"service_account": {action.String, "NAMESPACE/NAME of the pod's service account (default when the pod names none)"},
		"aws_credentials": {action.String, "the AWS credentials the pod can obtain: irsa, pod-identity, irsa+pod-identity, or \"\" for none of its own"},
		"iam_role":        {action.IAMRole, "the IRSA role ARN the pod's token can assume (its AWS_ROLE_ARN, else its service account's eks.amazonaws.com/role-arn); \"\" for none"},
	},
	action.Node: {
		"instance": {action.Instance, "the node's EC2 instance ID, from its spec.providerID; a node without one, or on Fargate, is refused at plan time"},
	},
}

// attributeSources are the types with attributes, in documentation order.
func attributeSources() []action.ParamType {
	var out []action.ParamType
	for _, t := range action.Types() {
		if Attributes[t] != nil {
			out = append(out, t)
		}
	}
	return out
}

// attributeNames lists every INPUT_TYPE.ATTRIBUTE, sorted within a type.
func attributeNames() []string {
	var out []string
	for _, t := range attributeSources() {
		var names []string
		for a := range Attributes[t] {
			names = append(names, string(t)+"."+a)
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out
}

// AttributesMarkdown is the table of Attributes that docs/playbooks.md
// carries (a test keeps it equal).
func AttributesMarkdown() string {
	var b strings.Builder
	b.WriteString("| from | type | value |\n| --- | --- | --- |\n")
	for _, n := range attributeNames() {
		t, a, _ := strings.Cut(n, ".")
		at := Attributes[action.ParamType(t)][a]
		fmt.Fprintf(&b, "| `%s_INPUT.%s` | `%s` | %s |\n", strings.ToUpper(t), a, at.Type, strings.ReplaceAll(at.Doc, "|", "\\|"))
	}
	return b.String()
}

// An AttributeResolver reads an attribute (Attributes) of a resolved
// target; "" when the target has none (a pod not scheduled yet). A target
// whose attribute cannot exist (a Fargate node's instance) is an error
// wrapping action.ErrBadInput.
type AttributeResolver interface {
	Attribute(ctx context.Context, t action.ParamType, ref, attr string) (string, error)
}

type kubeTargets struct{ k kubernetes.Interface }

func (t kubeTargets) Attribute(ctx context.Context, typ action.ParamType, ref, attr string) (string, error) {
	if _, ok := Attributes[typ][attr]; !ok {
		return "", fmt.Errorf("no attribute %s of %s %s", attr, typ, ref)
	}
	if typ == action.Node {
		n, err := t.k.CoreV1().Nodes().Get(ctx, ref, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("read node %s for its %s: %w", ref, attr, err)
		}
		return awstarget.NodeInstance(n) // attr is instance, the node's only one
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		return "", fmt.Errorf("no attribute %s of %s %s", attr, typ, ref)
	}
	p, err := t.k.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read pod %s for its %s: %w", ref, attr, err)
	}
	switch attr {
	case "node":
		return p.Spec.NodeName, nil
	case "service_account":
		sa := p.Spec.ServiceAccountName
		if sa == "" {
			sa = "default" // what the API server's admission fills in
		}
		return ns + "/" + sa, nil
	}
	// aws_credentials and iam_role: the service account may be gone
	// while the pod runs on with the credentials injected at creation.
	saName := cmp.Or(p.Spec.ServiceAccountName, "default")
	sa, err := t.k.CoreV1().ServiceAccounts(ns).Get(ctx, saName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sa = nil
	case err != nil:
		return "", fmt.Errorf("read service account %s/%s of pod %s: %w", ns, saName, ref, err)
	}
	creds := awstarget.ReadPodCredentials(p, sa)
	if attr == "iam_role" {
		if !creds.Has(awstarget.IRSA) {
			return "", nil
		}
		return creds.RoleARN, nil
	}
	return creds.Kind(), nil
}

// KubeTargets resolves the Kubernetes target types through a client.
func KubeTargets(k kubernetes.Interface) TargetResolver { return kubeTargets{k} }

func (t kubeTargets) Resolve(ctx context.Context, typ action.ParamType, ref string) (string, error) {
	switch typ {
	case action.Pod:
		return t.pod(ctx, ref)
	case action.Node:
		_, err := t.k.CoreV1().Nodes().Get(ctx, ref, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", &TargetError{Msg: "node " + ref + " not found", Hint: "check the name with 'kubectl get nodes'"}
		}
		if err != nil {
			return "", fmt.Errorf("look up node %s: %w", ref, err)
		}
		return ref, nil
	}
	return ref, nil
}

func (t kubeTargets) pod(ctx context.Context, ref string) (string, error) {
	notFound := &TargetError{Msg: "pod " + ref + " not found", Hint: "check the name with 'kubectl get pods -A'; give the pod as NAMESPACE/NAME"}
	if ns, name, ok := strings.Cut(ref, "/"); ok {
		_, err := t.k.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", notFound
		}
		if err != nil {
			return "", fmt.Errorf("look up pod %s: %w", ref, err)
		}
		return ref, nil
	}
	l, err := t.k.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ref})
	if err != nil {
		return "", fmt.Errorf("look up pod %s: %w", ref, err)
	}
	var found []string
	for _, p := range l.Items {
		found = append(found, p.Namespace+"/"+p.Name)
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", notFound
	case 1:
		return found[0], nil
	}
	return "", &TargetError{Msg: fmt.Sprintf("pod name %q is ambiguous: %s", ref, strings.Join(found, ", ")), Hint: "give the pod as NAMESPACE/NAME"}
}

// Resolve turns given input values into Inputs: defaults applied, required
// inputs present, values parsed by their type, and every target input
// looked up by the resolver of its type's cloud (a cloud without a
// resolver leaves its targets to the actions' plans). Problems are
// ErrInvalid errors naming the input's declaration.
func Resolve(ctx context.Context, c *Checked, given map[string]string, resolvers map[action.Cloud]TargetResolver) (Inputs, error) {
	e := &errs{file: c.file}
	out := Inputs{}
	for k := range given {
		if !hasInput(c.Playbook, k) {
			e.at(Pos{}, "inputs of "+c.Metadata.Name+": "+inputNames(c.Playbook), "playbook %s has no input %q", c.Metadata.Name, k)
		}
	}
	var derived []Input
	for _, in := range c.Inputs {
		s, ok := given[in.Name]
		if in.From != "" && (!ok || s == "") {
			derived = append(derived, in)
			continue
		}
		if !ok || (s == "" && in.Type != action.String) {
			if in.hasDefault {
				s = in.Default
			} else if in.Required {
				hint := fmt.Sprintf("give the %s input %q with --set %s=VALUE", in.Type, in.Name, in.Name)
				if tg, ok := in.Type.Target(); ok {
					hint = fmt.Sprintf("give the %s input %q (for example --%s)", in.Type, in.Name, tg.Flag)
				}
				e.at(in.pos[""], hint, "missing required input %q", in.Name)
				continue
			} else {
				continue
			}
		}
		v, err := in.Type.ParseText(s)
		if err != nil {
			e.at(in.pos[""], "give a value of type "+string(in.Type)+": "+in.Type.Doc(), "input %q: %v", in.Name, err)
			continue
		}
		if tg, ok := in.Type.Target(); ok && resolvers[tg.Cloud] != nil {
			ref, err := resolvers[tg.Cloud].Resolve(ctx, in.Type, s)
			var te *TargetError
			switch {
			case errors.As(err, &te):
				e.at(in.pos[""], te.Hint, "input %q: %s", in.Name, te.Msg)
				continue
			case err != nil:
				return nil, err
			}
			v = ref
		}
		out[in.Name] = v
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	// Derived inputs: "" when the target cannot say (no resolver for its
	// cloud, or a pod without a node), so expressions can test for it. An
	// input may derive from a derived one (node.instance of pod.node), so
	// each waits for its source.
	types := map[string]action.ParamType{}
	for _, in := range c.Inputs {
		types[in.Name] = in.Type
	}
	ar, _ := resolvers[action.Kubernetes].(AttributeResolver)
	for len(derived) > 0 {
		var next []Input
		for _, in := range derived {
			src, attr, _ := strings.Cut(in.From, ".")
			if _, ok := out[src]; !ok && slices.ContainsFunc(derived, func(d Input) bool { return d.Name == src }) {
				next = append(next, in)
				continue
			}
			out[in.Name] = ""
			ref, _ := out[src].(string)
			if ref == "" || ar == nil {
				continue
			}
			v, err := ar.Attribute(ctx, types[src], ref, attr)
			if errors.Is(err, action.ErrBadInput) {
				e.at(in.pos[""], fmt.Sprintf("give the %s input %q yourself, or run a playbook that does not need it", in.Type, in.Name),
					"input %q from %s: %v", in.Name, in.From, err)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("input %s from %s: %w", in.Name, in.From, err)
			}
			out[in.Name] = v
		}
		if len(next) == len(derived) {
			break // a cycle, which Validate refuses; never loop
		}
		derived = next
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// derivesFrom reports whether input name derives, directly or through
// other derived inputs, from input src.
func derivesFrom(p *Playbook, name, src string) bool {
	from := map[string]string{}
	for _, in := range p.Inputs {
		if s, _, ok := strings.Cut(in.From, "."); ok {
			from[in.Name] = s
		}
	}
	for i := 0; i <= len(p.Inputs); i++ {
		s, ok := from[name]
		if !ok {
			return false
		}
		if s == src {
			return true
		}
		name = s
	}
	return false
}

func hasInput(p *Playbook, name string) bool {
	for _, in := range p.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

func inputNames(p *Playbook) string {
	var s []string
	for _, in := range p.Inputs {
		s = append(s, in.Name)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// strings returns inputs as text, for the journal.
func (in Inputs) strings() map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[k] = action.FormatText(v)
	}
	return out
}
