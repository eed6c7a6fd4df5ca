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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubectl/pkg/drain"

	"github.com/eksir/eksir/action"
)

// DoNotDisrupt is the annotation Karpenter honours: it will not consolidate
// or expire the node (and with it, the evidence).
const DoNotDisrupt = "karpenter.sh/do-not-disrupt"

// CordonNode is isolate.cordon-node.
type CordonNode struct{}

// nodeOriginal is what the node annotation keeps.
type nodeOriginal struct {
	Unschedulable bool              `json:"unschedulable"`
	Taints        []corev1.Taint    `json:"taints"`
	Labels        map[string]string `json:"labels"`
	Annotations   map[string]string `json:"annotations"`
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
			"annotate karpenter.sh/do-not-disrupt and label it; optionally evict every other pod except the suspect and DaemonSet pods, honouring PodDisruptionBudgets.",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.Kubernetes},
		Params: []action.Param{
			{Name: "node", Type: action.Node, Required: true, Doc: "the node to cordon"},
			{Name: "evict-others", Type: action.Bool, Default: false, Doc: "evict every other pod on the node (the suspect pod and DaemonSet pods stay); evictions are not undone"},
			{Name: "pod", Type: action.Pod, Doc: "the suspect pod, namespace/name, kept on the node when evicting"},
			{Name: "force", Type: action.Bool, Default: false, Doc: "with evict-others, also evict pods without a controller"},
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

func (a CordonNode) desired(env *action.Env, n *corev1.Node) (*corev1.Node, bool, error) {
	val := LabelValue(env.Incident)
	var orig nodeOriginal
	had, err := readOriginal(n, "cordon", env.Incident, &orig)
	if err != nil {
		return nil, false, err
	}
	out := n.DeepCopy()
	if !had {
		orig = nodeOriginal{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints, Labels: copyMap(n.Labels), Annotations: copyMap(n.Annotations)}
		if err := writeOriginal(out, "cordon", env.Incident, orig); err != nil {
			return nil, false, err
		}
	}
	taint := corev1.Taint{Key: QuarantineKey(env.Incident), Value: val, Effect: corev1.TaintEffectNoSchedule}
	hasTaint := false
	for _, t := range out.Spec.Taints {
		if t.Key == taint.Key && t.Effect == taint.Effect && t.Value == taint.Value {
			hasTaint = true
		}
	}
	if !hasTaint {
		out.Spec.Taints = append(out.Spec.Taints, taint)
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[QuarantineKey(env.Incident)], out.Labels[IncidentKey(env.Incident)] = val, val
	out.Annotations[DoNotDisrupt] = "true"
	changed := !had || !hasTaint || !maps.Equal(out.Labels, n.Labels) || !maps.Equal(out.Annotations, n.Annotations)
	return out, changed, nil
}

// Plan implements action.Action.
func (a CordonNode) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	node := call.String("node")
	checks, err := action.CheckAccess(ctx, env.Kube,
		authzv1.ResourceAttributes{Verb: "update", Resource: "nodes", Name: node},
		authzv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: node})
	if err != nil {
		return action.Plan{}, err
	}
	p := action.Plan{Checks: checks}
	n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return p, fmt.Errorf("get node %s: %w", node, err)
	}
	want, changed, err := a.desired(env, n)
	if err != nil {
		return p, err
	}
	if changed {
		if _, err := env.Kube.CoreV1().Nodes().Update(ctx, want, updateOpts(true)); err != nil {
			return p, fmt.Errorf("dry-run taint node %s: %w", node, err)
		}
		p.Changes = append(p.Changes, action.Change{Verb: "taint", Object: "node " + node, Detail: QuarantineKey(env.Incident) + ":NoSchedule, label, " + DoNotDisrupt})
	}
	if !n.Spec.Unschedulable {
		p.Changes = append(p.Changes, action.Change{Verb: "cordon", Object: "node " + node})
	}
	if call.Bool("evict-others") {
		pods, errs := a.helper(ctx, env, call).GetPodsForDeletion(node)
		if len(errs) > 0 {
			return p, fmt.Errorf("list pods to evict on %s: %w", node, errors.Join(errs...))
		}
		for _, pod := range pods.Pods() {
			p.Changes = append(p.Changes, action.Change{Verb: "evict", Object: "pod " + pod.Namespace + "/" + pod.Name})
		}
	}
	p.Done = len(p.Changes) == 0
	return p, nil
}

func (a CordonNode) helper(ctx context.Context, env *action.Env, call action.Call) *drain.Helper {
	keep := call.String("pod")
	var out, errOut bytes.Buffer
	return &drain.Helper{
		Ctx: ctx, Client: env.Kube, Force: call.Bool("force"), GracePeriodSeconds: -1,
		IgnoreAllDaemonSets: true, DeleteEmptyDirData: true, Timeout: call.Duration("timeout"),
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
	node := call.String("node")
	u := CordonUndo{Node: node}
	// The original state is recorded with the taint, before the cordon, so a
	// crash between the two still knows whether the node was schedulable.
	var n *corev1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", node, err)
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
	if call.Bool("evict-others") {
		pods, errs := h.GetPodsForDeletion(node)
		if len(errs) > 0 {
			return action.Result{}, fmt.Errorf("list pods to evict on %s: %w", node, errors.Join(errs...))
		}
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
	return action.Result{Undo: raw, Outputs: map[string]any{"evicted": u.Evicted}}, nil
}

// Undo implements action.Reverser: schedulability, taints, labels and
// annotations come back from the node's annotation. Evicted pods do not.
func (CordonNode) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	var u CordonUndo
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("isolate.cordon-node undo record: %w", err)
	}
	nodes := env.Kube.CoreV1().Nodes()
	r, err := restoreOriginal(ctx, "node "+u.Node, "cordon", env.Incident, getter(nodes, u.Node), updater(nodes), func(n *corev1.Node, orig nodeOriginal) {
		n.Spec.Unschedulable = orig.Unschedulable
		var taints []corev1.Taint
		for _, t := range n.Spec.Taints {
			ours := t.Key == QuarantineKey(env.Incident) || t.Key == LegacyQuarantineKey
			if !ours || slices.ContainsFunc(orig.Taints, func(o corev1.Taint) bool { return o.MatchTaint(&t) }) {
				taints = append(taints, t)
			}
		}
		n.Spec.Taints = taints
		n.Labels = restoreKeys(n.Labels, orig.Labels, QuarantineKey(env.Incident), IncidentKey(env.Incident), LegacyQuarantineKey, LegacyIncidentKey)
		n.Annotations = restoreKeys(n.Annotations, orig.Annotations, DoNotDisrupt)
	})
	return []action.Restored{r}, err
}
