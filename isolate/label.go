package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/naming"
)

// Annotations isolate.label writes.
const (
	ReasonKey    = naming.Domain + "/reason"
	TimeKey      = naming.Domain + "/time"
	ResponderKey = naming.Domain + "/responder"
)

// Label is isolate.label: incident labels and annotations on pods and nodes.
type Label struct{}

type metaOriginal struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// LabelUndo is the Undo record of isolate.label.
type LabelUndo struct {
	Pods  []string `json:"pods,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
}

// Spec implements action.Action.
func (Label) Spec() action.Spec {
	return action.Spec{
		Name:  "isolate.label",
		Doc:   "Label and annotate pods and nodes under investigation with the incident ID, reason, time and responder (originals kept).",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.Kubernetes},
		Params: []action.Param{
			{Name: "pods", Type: action.StringList, Doc: "pods, namespace/name"},
			{Name: "nodes", Type: action.StringList, Doc: "nodes"},
			{Name: "pod", Type: action.Pod, Doc: "one pod, namespace/name"},
			{Name: "node", Type: action.Node, Doc: "one node"},
			{Name: "reason", Type: action.String, Default: "under investigation", Doc: "why, recorded in " + ReasonKey},
		},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "update"}},
			action.AccessReviewRule,
		}},
		Reversible: true,
		Notes:      labelNotes,
	}
}

func labelTargets(call action.Call) LabelUndo {
	u := LabelUndo{Pods: call.Strings("pods"), Nodes: call.Strings("nodes")}
	if p := call.String("pod"); p != "" {
		u.Pods = append(u.Pods, p)
	}
	if n := call.String("node"); n != "" {
		u.Nodes = append(u.Nodes, n)
	}
	return u
}

// object is what label needs from a pod or a node.
type object interface {
	metav1.Object
	runtime.Object
}

type target struct {
	kind, ns, name string
	get            func(ctx context.Context) (object, error)
	update         func(ctx context.Context, o object, opts metav1.UpdateOptions) error
}

func (l Label) targets(env *action.Env, u LabelUndo) ([]target, error) {
	var out []target
	for _, ref := range u.Pods {
		ns, name, err := naming.SplitRef(ref)
		if err != nil {
			return nil, err
		}
		pods := env.Kube.CoreV1().Pods(ns)
		out = append(out, target{kind: "pod", ns: ns, name: name,
			get: func(ctx context.Context) (object, error) { return pods.Get(ctx, name, metav1.GetOptions{}) },
			update: func(ctx context.Context, o object, opts metav1.UpdateOptions) error {
				_, err := pods.Update(ctx, o.(*corev1.Pod), opts)
				return err
			}})
	}
	for _, name := range u.Nodes {
		nodes := env.Kube.CoreV1().Nodes()
		out = append(out, target{kind: "node", name: name,
			get: func(ctx context.Context) (object, error) { return nodes.Get(ctx, name, metav1.GetOptions{}) },
			update: func(ctx context.Context, o object, opts metav1.UpdateOptions) error {
				_, err := nodes.Update(ctx, o.(*corev1.Node), opts)
				return err
			}})
	}
	return out, nil
}

func (t target) String() string {
	if t.ns != "" {
		return t.kind + " " + t.ns + "/" + t.name
	}
	return t.kind + " " + t.name
}

// apply labels one target; it returns whether it changed (or would).
func (Label) apply(ctx context.Context, env *action.Env, t target, reason string, dry bool) (bool, error) {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		o, err := t.get(ctx)
		if err != nil {
			return fmt.Errorf("get %s: %w", t, err)
		}
		var orig metaOriginal
		had, err := readOriginal(o, "label", env.Incident, &orig)
		if err != nil {
			return err
		}
		val := LabelValue(env.Incident)
		lbl, ann := copyMap(o.GetLabels()), copyMap(o.GetAnnotations())
		if lbl == nil {
			lbl = map[string]string{}
		}
		if ann == nil {
			ann = map[string]string{}
		}
		if !had {
			orig = metaOriginal{Labels: copyMap(o.GetLabels()), Annotations: copyMap(o.GetAnnotations())}
			b, err := json.Marshal(orig)
			if err != nil {
				return err
			}
			ann[originalKey("label", env.Incident)] = string(b)
		}
		lbl[IncidentKey(env.Incident)] = val
		ann[IncidentKey(env.Incident)] = env.Incident
		ann[ReasonKey] = reason
		if env.Responder != "" {
			ann[ResponderKey] = env.Responder
		}
		// The first run's time stays: a second run is not a new decision.
		if _, ok := ann[TimeKey]; !ok {
			now := time.Now
			if env.Now != nil {
				now = env.Now
			}
			ann[TimeKey] = now().UTC().Format(time.RFC3339)
		}
		if maps.Equal(lbl, o.GetLabels()) && maps.Equal(ann, o.GetAnnotations()) {
			return nil
		}
		o.SetLabels(lbl)
		o.SetAnnotations(ann)
		if err := t.update(ctx, o, updateOpts(dry)); err != nil {
			return fmt.Errorf("label %s: %w", t, err)
		}
		changed = true
		return nil
	})
	return changed, err
}

// Plan implements action.Action.
func (l Label) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	u := labelTargets(call)
	ts, err := l.targets(env, u)
	if err != nil {
		return action.Plan{}, err
	}
	var p action.Plan
	for _, t := range ts {
		c, err := action.CheckAccess(ctx, env.Kube, authzv1.ResourceAttributes{Namespace: t.ns, Verb: "update", Resource: t.kind + "s", Name: t.name})
		if err != nil {
			return p, err
		}
		p.Checks = append(p.Checks, c...)
		changed, err := l.apply(ctx, env, t, call.String("reason"), true)
		if err != nil {
			return p, err
		}
		if changed {
			p.Changes = append(p.Changes, action.Change{Verb: "label", Object: t.String(), Detail: IncidentKey(env.Incident) + "=" + LabelValue(env.Incident)})
		}
	}
	p.Done = len(p.Changes) == 0
	return p, nil
}

// Run implements action.Action.
func (l Label) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	u := labelTargets(call)
	ts, err := l.targets(env, u)
	if err != nil {
		return action.Result{}, err
	}
	for _, t := range ts {
		if _, err := l.apply(ctx, env, t, call.String("reason"), false); err != nil {
			return action.Result{}, err
		}
	}
	raw, err := json.Marshal(u)
	return action.Result{Undo: raw}, err
}

// Undo implements action.Reverser.
func (l Label) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	var u LabelUndo
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("isolate.label undo record: %w", err)
	}
	ts, err := l.targets(env, u)
	if err != nil {
		return nil, err
	}
	var report []action.Restored
	for _, t := range ts {
		r, err := restoreOriginal(ctx, t.String(), "label", env.Incident, t.get, t.update, func(o object, orig metaOriginal) {
			o.SetLabels(restoreKeys(o.GetLabels(), orig.Labels, IncidentKey(env.Incident), LegacyIncidentKey))
			o.SetAnnotations(restoreKeys(o.GetAnnotations(), orig.Annotations, IncidentKey(env.Incident), LegacyIncidentKey, ReasonKey, TimeKey, ResponderKey))
		})
		if err != nil {
			return report, err
		}
		report = append(report, r)
	}
	return report, nil
}
