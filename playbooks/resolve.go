package playbooks

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Inputs are resolved input values: strings ("namespace/name" for pods)
// and time.Duration for duration inputs.
type Inputs map[string]any

// Targets answers whether Kubernetes targets exist. AWS targets (instance,
// role, access key) are checked by the actions' plans.
type Targets interface {
	// Pods returns "namespace/name" of the pods matching; with an empty
	// namespace it searches every namespace.
	Pods(ctx context.Context, namespace, name string) ([]string, error)
	NodeExists(ctx context.Context, name string) (bool, error)
}

type kubeTargets struct{ k kubernetes.Interface }

// KubeTargets looks targets up through a Kubernetes client.
func KubeTargets(k kubernetes.Interface) Targets { return kubeTargets{k} }

func (t kubeTargets) Pods(ctx context.Context, ns, name string) ([]string, error) {
	if ns != "" {
		_, err := t.k.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up pod %s/%s: %w", ns, name, err)
		}
		return []string{ns + "/" + name}, nil
	}
	l, err := t.k.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return nil, fmt.Errorf("look up pod %s: %w", name, err)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out, nil
}

func (t kubeTargets) NodeExists(ctx context.Context, name string) (bool, error) {
	_, err := t.k.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up node %s: %w", name, err)
	}
	return true, nil
}

// Resolve turns given input values into Inputs: defaults applied, required
// inputs present, types parsed, and pod and node targets found exactly once
// in the cluster. Problems are ErrInvalid errors naming the input's
// declaration. targets may be nil when no input is a Kubernetes target.
func Resolve(ctx context.Context, c *Checked, given map[string]string, targets Targets) (Inputs, error) {
	e := &errs{file: c.file}
	out := Inputs{}
	for k := range given {
		if !hasInput(c.Playbook, k) {
			e.at(Pos{}, "inputs of "+c.Metadata.Name+": "+inputNames(c.Playbook), "playbook %s has no input %q", c.Metadata.Name, k)
		}
	}
	for _, in := range c.Inputs {
		s, ok := given[in.Name]
		if !ok || (s == "" && in.Type != InString) {
			if in.hasDefault {
				s = in.Default
			} else if in.Required {
				e.at(in.pos[""], fmt.Sprintf("give the %s input %q (for example --%s)", in.Type, in.Name, in.Type), "missing required input %q", in.Name)
				continue
			} else {
				continue
			}
		}
		v, err := inputValue(in.Type, s)
		if err != nil {
			e.at(in.pos[""], "give a value of type "+string(in.Type), "input %q: %v", in.Name, err)
			continue
		}
		switch in.Type {
		case InPod:
			ns, name, hasNS := strings.Cut(s, "/")
			if !hasNS {
				ns, name = "", s
			}
			if targets == nil {
				break
			}
			found, err := targets.Pods(ctx, ns, name)
			if err != nil {
				return nil, err
			}
			sort.Strings(found)
			switch len(found) {
			case 0:
				e.at(in.pos[""], "check the name with 'kubectl get pods -A'; give the pod as NAMESPACE/NAME", "input %q: pod %s not found", in.Name, s)
			case 1:
				v = found[0]
			default:
				e.at(in.pos[""], "give the pod as NAMESPACE/NAME", "input %q: pod name %q is ambiguous: %s", in.Name, s, strings.Join(found, ", "))
			}
		case InNode:
			if targets == nil {
				break
			}
			ok, err := targets.NodeExists(ctx, s)
			if err != nil {
				return nil, err
			}
			if !ok {
				e.at(in.pos[""], "check the name with 'kubectl get nodes'", "input %q: node %s not found", in.Name, s)
			}
		}
		out[in.Name] = v
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return out, nil
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
		out[k] = fmt.Sprint(v)
	}
	return out
}
