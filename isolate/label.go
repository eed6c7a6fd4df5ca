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

// Annotations isolate.label writes, one set per incident so that two
// incidents on one object never overwrite each other's reason.

// ReasonKey is the incident's reason annotation.
func ReasonKey(incident string) string {
	return naming.Domain + "/reason-" + naming.ShortHash(incident, 10)
}

// TimeKey is the incident's time annotation (RFC 3339, first run).
func TimeKey(incident string) string {
	return naming.Domain + "/time-" + naming.ShortHash(incident, 10)
}

// ResponderKey is the incident's responder annotation.
func ResponderKey(incident string) string {
	return naming.Domain + "/responder-" + naming.ShortHash(incident, 10)
}

// Shared annotations an earlier eksir wrote (one per object, whichever
// incident came last): releases of those incidents still restore them.
var sharedLabelAnnotations = []string{
	naming.Domain + "/reason", naming.Domain + "/time", naming.Domain + "/responder",
	naming.LegacyDomain + "/reason", naming.LegacyDomain + "/time", naming.LegacyDomain + "/responder",
}

// Label is isolate.label: incident labels and annotations on pods and nodes.
type Label struct{}

// labelRecord is isolate.label's original annotation: the keys the
// incident set. Labels and Annotations without V are the snapshot an
// earlier eksir kept.
type labelRecord struct {
	V              int                  `json:"v,omitempty"`
	SetLabels      map[string]keyChange `json:"setLabels,omitempty"`
	SetAnnotations map[string]keyChange `json:"setAnnotations,omitempty"`
	Labels         map[string]string    `json:"labels,omitempty"`
	Annotations    map[string]string    `json:"annotations,omitempty"`
}

// diff returns r as a diff against o, converting a snapshot.
func (r labelRecord) diff(o metav1.Object, incident string) labelRecord {
	if r.V >= recordVersion {
		if r.SetLabels == nil {
			r.SetLabels = map[string]keyChange{}
		}
		if r.SetAnnotations == nil {
			r.SetAnnotations = map[string]keyChange{}
		}
		return r
	}
	out := labelRecord{V: recordVersion,
		SetLabels:      snapshotChanges(o.GetLabels(), r.Labels, IncidentKey(incident)),
		SetAnnotations: snapshotChanges(o.GetAnnotations(), r.Annotations, append([]string{IncidentKey(incident)}, sharedLabelAnnotations...)...)}
	// The shared legacy keys belong to this incident only when they hold its ID.
	if v, ok := o.GetLabels()[LegacyIncidentKey]; ok && v == LabelValue(incident) {
		maps.Copy(out.SetLabels, snapshotChanges(o.GetLabels(), r.Labels, LegacyIncidentKey))
	}
	if v, ok := o.GetAnnotations()[LegacyIncidentKey]; ok && v == incident {
		maps.Copy(out.SetAnnotations, snapshotChanges(o.GetAnnotations(), r.Annotations, LegacyIncidentKey))
	}
	return out
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
			{Name: "reason", Type: action.String, Default: "under investigation", Doc: "why, recorded in " + naming.Domain + "/reason-<incident hash>"},
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

// apply labels one target in one update that also records what it set;
// it returns whether it changed (or would) and the other incidents that
// mark the object.
func (Label) apply(ctx context.Context, env *action.Env, t target, reason string, dry bool) (bool, []string, error) {
	changed := false
	var others []string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		o, err := t.get(ctx)
		if err != nil {
			return fmt.Errorf("get %s: %w", t, err)
		}
		others = OtherIncidents(o, nodeTaints(o), env.Incident, false)
		var rec labelRecord
		if _, err := readOriginal(o, "label", env.Incident, &rec); err != nil {
			return err
		}
		rec = rec.diff(o, env.Incident)
		lbl, ann := copyMap(o.GetLabels()), copyMap(o.GetAnnotations())
		lbl = setKeys(lbl, map[string]string{IncidentKey(env.Incident): LabelValue(env.Incident)}, rec.SetLabels, nil)
		want := map[string]string{IncidentKey(env.Incident): env.Incident, ReasonKey(env.Incident): reason}
		if env.Responder != "" {
			want[ResponderKey(env.Incident)] = env.Responder
		}
		// The first run's time stays: a second run is not a new decision.
		if _, ok := rec.SetAnnotations[TimeKey(env.Incident)]; !ok {
			now := time.Now
			if env.Now != nil {
				now = env.Now
			}
			want[TimeKey(env.Incident)] = now().UTC().Format(time.RFC3339)
		}
		ann = setKeys(ann, want, rec.SetAnnotations, nil)
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		ann[originalKey("label", env.Incident)] = string(b)
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
	return changed, others, err
}

// nodeTaints returns a node's taints (nil for other objects).
func nodeTaints(o object) []corev1.Taint {
	if n, ok := o.(*corev1.Node); ok {
		return n.Spec.Taints
	}
	return nil
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
		changed, others, err := l.apply(ctx, env, t, call.String("reason"), true)
		if err != nil {
			return p, err
		}
		if len(others) > 0 {
			p.Warnings = append(p.Warnings, otherIncidentsWarning(t.String(), others))
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
		if _, _, err := l.apply(ctx, env, t, call.String("reason"), false); err != nil {
			return action.Result{}, err
		}
	}
	raw, err := json.Marshal(u)
	return action.Result{Undo: raw}, err
}

// Undo implements action.Reverser: on each target, every key this incident
// set that still holds the value it wrote goes back to the value it had;
// the legacy eksir.dev incident keys holding this incident go too. With no
// undo record, the targets come from the call's parameters.
func (l Label) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	u := labelTargets(call)
	if raw != nil {
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("isolate.label undo record: %w", err)
		}
	}
	ts, err := l.targets(env, u)
	if err != nil {
		return nil, err
	}
	var report []action.Restored
	for _, t := range ts {
		r, err := restoreOriginal(ctx, t.String(), "label", env.Incident, t.get, t.update, func(o object, rec labelRecord) {
			rec = rec.diff(o, env.Incident)
			lbl := unsetKeys(copyMap(o.GetLabels()), rec.SetLabels, nil)
			ann := unsetKeys(copyMap(o.GetAnnotations()), rec.SetAnnotations, nil)
			if lbl[LegacyIncidentKey] == LabelValue(env.Incident) {
				delete(lbl, LegacyIncidentKey)
			}
			if ann[LegacyIncidentKey] == env.Incident {
				delete(ann, LegacyIncidentKey)
			}
			o.SetLabels(nilIfEmpty(lbl))
			o.SetAnnotations(nilIfEmpty(ann))
		})
		if err != nil {
			return report, err
		}
		report = append(report, r)
	}
	return report, nil
}
