package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubectl/pkg/drain"

	"github.com/eksir/eksir/action"
)

// DoNotDisrupt is Karpenter's annotation. On a node it blocks voluntary
// disruption — consolidation and drift — so Karpenter does not replace the
// node (and with it, the evidence) to save cost or apply a new template. It
// does not stop expiration once the NodePool's terminationGracePeriod has
// passed, nor forced or involuntary termination: spot interruption,
// instance health events, a person or another tool deleting the node.
const DoNotDisrupt = "karpenter.sh/do-not-disrupt"

// ScaleDownDisabled is Cluster Autoscaler's annotation: CA will not remove
// the node when it scales down. Other actors (Karpenter, a managed node
// group update, spot interruption, a person) are not bound by it.
const ScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"

// CordonNode is isolate.cordon-node.
type CordonNode struct{}

// cordonRecord is isolate.cordon-node's original annotation: what the
// incident changed on the node. Unschedulable, Taints, Labels and
// Annotations without V are the snapshot an earlier eksir kept.
type cordonRecord struct {
	V int `json:"v,omitempty"`
	// Cordoned: the node was schedulable when the incident cordoned it (or
	// another incident had cordoned it and this one took over its claim).
	Cordoned       bool                 `json:"cordoned,omitempty"`
	AddedTaints    []corev1.Taint       `json:"addedTaints,omitempty"`
	SetLabels      map[string]keyChange `json:"setLabels,omitempty"`
	SetAnnotations map[string]keyChange `json:"setAnnotations,omitempty"`

	Unschedulable bool              `json:"unschedulable,omitempty"`
	Taints        []corev1.Taint    `json:"taints,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ours reports whether a taint belongs to incident.
func ourTaint(t corev1.Taint, incident string) bool {
	return t.Key == QuarantineKey(incident) || t.Key == LegacyQuarantineKey && t.Value == LabelValue(incident)
}

// diff returns r as a diff against n, converting a snapshot.
func (r cordonRecord) diff(n *corev1.Node, incident string) cordonRecord {
	if r.V >= recordVersion {
		if r.SetLabels == nil {
			r.SetLabels = map[string]keyChange{}
		}
		if r.SetAnnotations == nil {
			r.SetAnnotations = map[string]keyChange{}
		}
		return r
	}
	out := cordonRecord{V: recordVersion, Cordoned: !r.Unschedulable,
		SetLabels:      snapshotChanges(n.Labels, r.Labels, QuarantineKey(incident), IncidentKey(incident)),
		SetAnnotations: snapshotChanges(n.Annotations, r.Annotations, DoNotDisrupt, ScaleDownDisabled)}
	for _, k := range []string{LegacyQuarantineKey, LegacyIncidentKey} {
		if n.Labels[k] == LabelValue(incident) {
			maps.Copy(out.SetLabels, snapshotChanges(n.Labels, r.Labels, k))
		}
	}
	for _, t := range n.Spec.Taints {
		if ourTaint(t, incident) && !slices.ContainsFunc(r.Taints, func(o corev1.Taint) bool { return o.MatchTaint(&t) }) {
			out.AddedTaints = append(out.AddedTaints, t)
		}
	}
	return out
}

// inherited returns what the other incidents' cordon records on n say
// about the node's state before eksir: whether one of them cordoned it, and
// an inherit function for setKeys giving the original value of a shared
// annotation one of them set.
func inheritedCordon(n *corev1.Node, incident string) (bool, func(k, cur string) (*string, bool)) {
	var recs []cordonRecord
	for _, raw := range otherRecords(n, "cordon", incident) {
		var r cordonRecord
		if json.Unmarshal([]byte(raw), &r) != nil {
			continue
		}
		if r.V < recordVersion {
			// A snapshot: the shared annotations it lacks were added by eksir.
			r = cordonRecord{V: recordVersion, Cordoned: !r.Unschedulable, SetAnnotations: snapshotChanges(n.Annotations, r.Annotations, DoNotDisrupt, ScaleDownDisabled)}
		}
		recs = append(recs, r)
	}
	cordoned := slices.ContainsFunc(recs, func(r cordonRecord) bool { return r.Cordoned })
	return cordoned, func(k, cur string) (*string, bool) {
		for _, r := range recs {
			if c, ok := r.SetAnnotations[k]; ok && c.Wrote == cur {
				return c.Had, true
			}
		}
		return nil, false
	}
}

// CordonUndo is the Undo record of isolate.cordon-node.
type CordonUndo struct {
	Node    string   `json:"node"`
	Evicted []string `json:"evicted,omitempty"`
}

// Spec implements action.Action.
func (CordonNode) Spec() action.Spec {
	return action.Spec{
		Name: "isolate.cordon-node",
		Doc: "Cordon the node (kubectl drain library), add a NoSchedule quarantine taint (never NoExecute, which would evict the suspect), " +
			"annotate karpenter.sh/do-not-disrupt and cluster-autoscaler.kubernetes.io/scale-down-disabled and label it; optionally evict every other pod except the suspect and DaemonSet pods, honouring PodDisruptionBudgets.",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.Kubernetes},
		Params: []action.Param{
			{Name: "node", Type: action.Node, Required: true, Doc: "the node to cordon"},
			{Name: "evict-others", Type: action.Bool, Default: false, Doc: "evict every other pod on the node (the suspect pod and DaemonSet pods stay; needs pod); evictions are not undone"},
			{Name: "pod", Type: action.Pod, Doc: "the suspect pod, namespace/name, never evicted; required with evict-others"},
			{Name: "force", Type: action.Bool, Default: false, Doc: "with evict-others, also evict pods without a controller (nothing recreates them; shown as a plan warning)"},
			{Name: "delete-emptydir-data", Type: action.Bool, Default: false, Doc: "with evict-others, also evict pods with emptyDir volumes, whose data is lost (shown as a plan warning)"},
			{Name: "timeout", Type: action.Duration, Default: 5 * time.Minute, Doc: "how long evictions may wait for PodDisruptionBudgets"},
		},
		Outputs: []string{"evicted"},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
			{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"get"}},
			action.AccessReviewRule,
		}},
		Reversible: true,
		Notes:      cordonNodeNotes,
	}
}

// desired returns the node with this incident's taint, labels and
// annotations, and the record of what it changes (including the cordon that
// follows) in the same update, so a step stopped between the two leaves a
// trace a release can work from.
func (a CordonNode) desired(env *action.Env, n *corev1.Node) (*corev1.Node, bool, error) {
	val := LabelValue(env.Incident)
	var rec cordonRecord
	had, err := readOriginal(n, "cordon", env.Incident, &rec)
	if err != nil {
		return nil, false, err
	}
	rec = rec.diff(n, env.Incident)
	cordonedByEksir, inherit := inheritedCordon(n, env.Incident)
	if !had {
		rec.Cordoned = !n.Spec.Unschedulable || cordonedByEksir
	}
	out := n.DeepCopy()
	taint := corev1.Taint{Key: QuarantineKey(env.Incident), Value: val, Effect: corev1.TaintEffectNoSchedule}
	if !slices.ContainsFunc(out.Spec.Taints, func(t corev1.Taint) bool { return t.MatchTaint(&taint) && t.Value == val }) {
		out.Spec.Taints = append(out.Spec.Taints, taint)
	}
	if !slices.ContainsFunc(rec.AddedTaints, func(t corev1.Taint) bool { return t.MatchTaint(&taint) }) {
		rec.AddedTaints = append(rec.AddedTaints, taint)
	}
	out.Labels = setKeys(out.Labels, map[string]string{QuarantineKey(env.Incident): val, IncidentKey(env.Incident): val}, rec.SetLabels, nil)
	out.Annotations = setKeys(out.Annotations, map[string]string{DoNotDisrupt: "true", ScaleDownDisabled: "true"}, rec.SetAnnotations, inherit)
	if err := writeOriginal(out, "cordon", env.Incident, rec); err != nil {
		return nil, false, err
	}
	changed := !slices.Equal(out.Spec.Taints, n.Spec.Taints) || !maps.Equal(out.Labels, n.Labels) || !maps.Equal(out.Annotations, n.Annotations)
	return out, changed, nil
}

// evictable checks the eviction parameters: evicting others needs the
// suspect named, so that it is never evicted.
func evictable(call action.Call) error {
	if call.Bool("evict-others") && call.String("pod") == "" {
		return fmt.Errorf("%w: evict-others needs the suspect pod (parameter pod): without it the suspect would be evicted with the others", action.ErrBadInput)
	}
	return nil
}

// evictionWarnings are the Plan and Result warnings of the opt-in eviction
// parameters.
func evictionWarnings(call action.Call) []string {
	if !call.Bool("evict-others") {
		return nil
	}
	var w []string
	if call.Bool("force") {
		w = append(w, "force: pods without a controller are evicted too and nothing recreates them")
	}
	if call.Bool("delete-emptydir-data") {
		w = append(w, "delete-emptydir-data: evicted pods lose their emptyDir volumes (possible evidence on the node)")
	}
	return w
}

// getNode gets the node to cordon; a node that does not exist is bad input.
func getNode(ctx context.Context, env *action.Env, node string) (*corev1.Node, error) {
	n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: node %s does not exist", action.ErrBadInput, node)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", node, err)
	}
	return n, nil
}

// Plan implements action.Action.
func (a CordonNode) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	if err := evictable(call); err != nil {
		return action.Plan{}, err
	}
	node := call.String("node")
	checks, err := action.CheckAccess(ctx, env.Kube,
		authzv1.ResourceAttributes{Verb: "update", Resource: "nodes", Name: node},
		authzv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: node})
	if err != nil {
		return action.Plan{}, err
	}
	p := action.Plan{Checks: checks, Warnings: evictionWarnings(call)}
	n, err := getNode(ctx, env, node)
	if err != nil {
		return p, err
	}
	if others := OtherIncidents(n, n.Spec.Taints, env.Incident, false); len(others) > 0 {
		p.Warnings = append(p.Warnings, otherIncidentsWarning("node "+node, others))
	}
	want, changed, err := a.desired(env, n)
	if err != nil {
		return p, err
	}
	if changed {
		if _, err := env.Kube.CoreV1().Nodes().Update(ctx, want, updateOpts(true)); err != nil {
			return p, fmt.Errorf("dry-run taint node %s: %w", node, err)
		}
		p.Changes = append(p.Changes, action.Change{Verb: "taint", Object: "node " + node,
			Detail: QuarantineKey(env.Incident) + ":NoSchedule, labels, " + DoNotDisrupt + ", " + ScaleDownDisabled})
	}
	if !n.Spec.Unschedulable {
		p.Changes = append(p.Changes, action.Change{Verb: "cordon", Object: "node " + node})
	}
	if call.Bool("evict-others") {
		pods, errs := a.helper(ctx, env, call).GetPodsForDeletion(node)
		if pods == nil {
			return p, fmt.Errorf("list pods to evict on %s: %w", node, errors.Join(errs...))
		}
		p.Warnings = append(p.Warnings, notEvicted(errs)...)
		for _, pod := range pods.Pods() {
			p.Changes = append(p.Changes, action.Change{Verb: "evict", Object: "pod " + pod.Namespace + "/" + pod.Name})
		}
	}
	p.Done = len(p.Changes) == 0
	return p, nil
}

// notEvicted turns drain's refusals (pods with emptyDir data, pods without
// a controller) into warnings: those pods stay on the cordoned node.
func notEvicted(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, "not evicted, stays on the node: "+e.Error())
	}
	return out
}

// helper is the drain library's Helper for this call: eviction (never
// deletion), DaemonSet pods left alone, and by default neither pods
// without a controller (Force) nor pods with emptyDir data evicted.
func (a CordonNode) helper(ctx context.Context, env *action.Env, call action.Call) *drain.Helper {
	keep := call.String("pod")
	var out, errOut bytes.Buffer
	return &drain.Helper{
		Ctx: ctx, Client: env.Kube, Force: call.Bool("force"), GracePeriodSeconds: -1,
		IgnoreAllDaemonSets: true, DeleteEmptyDirData: call.Bool("delete-emptydir-data"), Timeout: call.Duration("timeout"),
		Out: &out, ErrOut: &errOut,
		// The suspect stays: it is the evidence.
		AdditionalFilters: []drain.PodFilter{func(p corev1.Pod) drain.PodDeleteStatus {
			if p.Namespace+"/"+p.Name == keep {
				return drain.MakePodDeleteStatusSkip()
			}
			return drain.MakePodDeleteStatusOkay()
		}},
	}
}

// Run implements action.Action.
func (a CordonNode) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	if err := evictable(call); err != nil {
		return action.Result{}, err
	}
	node := call.String("node")
	u := CordonUndo{Node: node}
	// The record goes with the taint, before the cordon, so a step stopped
	// between the two still knows whether the node was schedulable.
	var n *corev1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := getNode(ctx, env, node)
		if err != nil {
			return err
		}
		want, changed, err := a.desired(env, cur)
		if err != nil {
			return err
		}
		n = cur
		if !changed {
			return nil
		}
		n, err = env.Kube.CoreV1().Nodes().Update(ctx, want, updateOpts(false))
		if err != nil {
			return fmt.Errorf("taint node %s: %w", node, err)
		}
		return nil
	})
	if err != nil {
		return action.Result{}, err
	}
	h := a.helper(ctx, env, call)
	if !n.Spec.Unschedulable {
		if err := drain.RunCordonOrUncordon(h, n, true); err != nil {
			return action.Result{}, fmt.Errorf("cordon node %s: %w", node, err)
		}
	}
	warnings := evictionWarnings(call)
	if call.Bool("evict-others") {
		pods, errs := h.GetPodsForDeletion(node)
		if pods == nil {
			return action.Result{}, fmt.Errorf("list pods to evict on %s: %w", node, errors.Join(errs...))
		}
		warnings = append(warnings, notEvicted(errs)...)
		for _, p := range pods.Pods() {
			u.Evicted = append(u.Evicted, p.Namespace+"/"+p.Name)
		}
		if err := h.DeleteOrEvictPods(pods.Pods()); err != nil {
			return action.Result{}, fmt.Errorf("evict pods from %s: %w", node, err)
		}
	}
	raw, err := json.Marshal(u)
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{Undo: raw, Outputs: map[string]any{"evicted": u.Evicted}, Warnings: warnings}, nil
}

// Undo implements action.Reverser: this incident's taint, labels and
// annotations go; the shared annotations (Karpenter, Cluster Autoscaler) and
// the cordon stay while another incident's quarantine remains on the node,
// and the cordon is lifted only if this incident (or one it took over from)
// set it. Evicted pods do not come back. With no undo record the node comes
// from the call's parameters.
func (CordonNode) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	u := CordonUndo{Node: call.String("node")}
	if raw != nil {
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("isolate.cordon-node undo record: %w", err)
		}
	}
	nodes := env.Kube.CoreV1().Nodes()
	r, err := restoreOriginal(ctx, "node "+u.Node, "cordon", env.Incident, getter(nodes, u.Node), updater(nodes), func(n *corev1.Node, rec cordonRecord) {
		rec = rec.diff(n, env.Incident)
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return ourTaint(t, env.Incident) || slices.ContainsFunc(rec.AddedTaints, func(a corev1.Taint) bool { return a.MatchTaint(&t) && a.Value == t.Value })
		})
		if len(n.Spec.Taints) == 0 {
			n.Spec.Taints = nil
		}
		// Computed after our taint went, before our record goes: otherRecords
		// never counts this incident's own record.
		others := len(OtherIncidents(n, n.Spec.Taints, env.Incident, true)) > 0
		n.Labels = unsetKeys(n.Labels, rec.SetLabels, nil)
		for _, k := range []string{LegacyQuarantineKey, LegacyIncidentKey} {
			if n.Labels[k] == LabelValue(env.Incident) {
				delete(n.Labels, k)
			}
		}
		n.Labels = nilIfEmpty(n.Labels)
		n.Annotations = unsetKeys(n.Annotations, rec.SetAnnotations, func(k string) bool { return others && (k == DoNotDisrupt || k == ScaleDownDisabled) })
		if rec.Cordoned && !others {
			n.Spec.Unschedulable = false
		}
	})
	return []action.Restored{r}, err
}
