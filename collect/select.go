package collect

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// Target selects pods the way a responder names them: one pod, a workload,
// a service account, an image, or a node. Fields combine with AND; Namespace
// narrows the others.
type Target struct {
	Pods []string // namespace/name
	// Workload is namespace/kind/name (Deployment, ReplicaSet, StatefulSet,
	// DaemonSet, Job, CronJob): pods whose owner chain reaches it.
	Workload       string
	ServiceAccount string // namespace/name
	Image          string // substring of a container image
	Node           string
	// Selector is a label selector ("app=checkout-api").
	Selector  string
	Namespace string
}

func targetParams() []action.Param {
	return []action.Param{
		{Name: "pod", Type: action.Pod, Doc: "one pod, namespace/name"},
		{Name: "pods", Type: action.StringList, Doc: "pods, namespace/name"},
		{Name: "workload", Type: action.String, Doc: "namespace/kind/name of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob"},
		{Name: "service-account", Type: action.String, Doc: "namespace/name: every pod running as it"},
		{Name: "image", Type: action.String, Doc: "every pod with a container image containing this string"},
		{Name: "node", Type: action.Node, Doc: "every pod on this node"},
		{Name: "selector", Type: action.String, Doc: "every pod matching this label selector"},
		{Name: "namespace", Type: action.Namespace, Doc: "narrow the selection to a namespace"},
	}
}

// TargetFrom reads the target parameters of a call.
func TargetFrom(call action.Call) Target {
	t := Target{Pods: call.Strings("pods"), Workload: call.String("workload"), ServiceAccount: call.String("service-account"),
		Image: call.String("image"), Node: call.String("node"), Selector: call.String("selector"), Namespace: call.String("namespace")}
	if p := call.String("pod"); p != "" {
		t.Pods = append(t.Pods, p)
	}
	return t
}

func (t Target) empty() bool {
	return len(t.Pods) == 0 && t.Workload == "" && t.ServiceAccount == "" && t.Image == "" && t.Node == "" && t.Selector == ""
}

// Select resolves a target to pods, sorted by namespace and name.
func Select(ctx context.Context, kc kubernetes.Interface, t Target) ([]corev1.Pod, error) {
	if t.empty() {
		return nil, fmt.Errorf("no target: name a pod, workload, service account, image, node or label selector")
	}
	var pods []corev1.Pod
	if len(t.Pods) > 0 {
		for _, ref := range t.Pods {
			ns, name, err := naming.SplitRef(ref)
			if err != nil {
				return nil, err
			}
			p, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("get pod %s: %w", ref, err)
			}
			pods = append(pods, *p)
		}
	} else {
		ns := t.Namespace
		var wkind, wname string
		if t.Workload != "" {
			parts := strings.Split(t.Workload, "/")
			if len(parts) != 3 {
				return nil, fmt.Errorf("workload %q: want namespace/kind/name", t.Workload)
			}
			ns, wkind, wname = parts[0], strings.ToLower(parts[1]), parts[2]
		}
		if t.ServiceAccount != "" {
			sns, _, err := naming.SplitRef(t.ServiceAccount)
			if err != nil {
				return nil, err
			}
			ns = sns
		}
		opts := metav1.ListOptions{LabelSelector: t.Selector}
		if t.Node != "" {
			opts.FieldSelector = "spec.nodeName=" + t.Node
		}
		list, err := kc.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		pods = list.Items
		if wkind != "" {
			pods, err = filterOwned(ctx, kc, pods, wkind, wname)
			if err != nil {
				return nil, err
			}
		}
	}
	out := pods[:0]
	for _, p := range pods {
		if t.Namespace != "" && p.Namespace != t.Namespace {
			continue
		}
		if t.Node != "" && p.Spec.NodeName != t.Node {
			continue
		}
		if t.ServiceAccount != "" && p.Namespace+"/"+serviceAccount(p) != t.ServiceAccount {
			continue
		}
		if t.Image != "" && !hasImage(p, t.Image) {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}

func serviceAccount(p corev1.Pod) string {
	if p.Spec.ServiceAccountName == "" {
		return "default"
	}
	return p.Spec.ServiceAccountName
}

func hasImage(p corev1.Pod, img string) bool {
	for _, c := range allContainers(p) {
		if strings.Contains(c.Image, img) {
			return true
		}
	}
	for _, s := range append(append(p.Status.ContainerStatuses, p.Status.InitContainerStatuses...), p.Status.EphemeralContainerStatuses...) {
		if strings.Contains(s.Image, img) || strings.Contains(s.ImageID, img) {
			return true
		}
	}
	return false
}

// filterOwned keeps pods whose owner chain reaches kind/name.
func filterOwned(ctx context.Context, kc kubernetes.Interface, pods []corev1.Pod, kind, name string) ([]corev1.Pod, error) {
	var out []corev1.Pod
	for _, p := range pods {
		chain, err := ownerChain(ctx, kc, p.Namespace, p.OwnerReferences)
		if err != nil {
			return nil, err
		}
		for _, o := range chain {
			if strings.ToLower(o.kind) == kind && o.name == name {
				out = append(out, p)
				break
			}
		}
	}
	return out, nil
}

// container is a container of any type, for iteration.
type container struct {
	Name, Image, Type string
}

func allContainers(p corev1.Pod) []container {
	var out []container
	for _, c := range p.Spec.InitContainers {
		out = append(out, container{c.Name, c.Image, "init"})
	}
	for _, c := range p.Spec.Containers {
		out = append(out, container{c.Name, c.Image, "regular"})
	}
	for _, c := range p.Spec.EphemeralContainers {
		out = append(out, container{c.Name, c.Image, "ephemeral"})
	}
	return out
}

// noCollectorOnFargate is why nothing runs beside a pod on a Fargate node:
// Fargate admits no privileged, hostPID or hostNetwork pod and no DaemonSet,
// so a node collector pod would wait, unscheduled, until the step's timeout.
const noCollectorOnFargate = "Fargate runs no privileged collector pods; nothing on its host (process state, journals, log files, memory) is collectable; use the pod's own logs and the control-plane audit log"

// unreachable is a pod, or a node named without a pod, that no collector
// can reach, and why.
type unreachable struct {
	pod    *corev1.Pod // nil for a node named without a pod
	node   string      // "" for a pod not scheduled
	reason string
}

// fargateReason says why no collector runs on Fargate node node; pod is
// the pod reached through it (namespace/name), "" for the node's own items.
func fargateReason(node, pod string) string {
	if pod == "" {
		return "node " + node + " runs on Fargate: " + noCollectorOnFargate
	}
	return "pod " + pod + " runs on Fargate node " + node + ": " + noCollectorOnFargate
}

// fargateNode is the unreachable entry of a Fargate node's own items.
func fargateNode(node string) unreachable {
	return unreachable{node: node, reason: fargateReason(node, "")}
}

// pendingReason says why no collector reaches a pod not scheduled.
func pendingReason(p corev1.Pod) string {
	return "pod " + p.Namespace + "/" + p.Name + " is not scheduled on a node (phase " + string(p.Status.Phase) +
		"): no container of it runs, so there is no volatile state to collect; collect again once it is scheduled"
}

// splitReachable keeps the pods a node collector (or an ephemeral
// container) can reach and returns the others with the reason: a pod on a
// Fargate node (by awstarget.IsFargate's rule) and, with pending, a pod not
// scheduled on any node. Nodes are read once each.
func splitReachable(ctx context.Context, kc kubernetes.Interface, pods []corev1.Pod, pending bool) ([]corev1.Pod, []unreachable, error) {
	var ok []corev1.Pod
	var out []unreachable
	nodes := map[string]*corev1.Node{}
	for i, p := range pods {
		if p.Spec.NodeName == "" {
			if pending {
				out = append(out, unreachable{pod: &pods[i], reason: pendingReason(p)})
			}
			continue
		}
		n, seen := nodes[p.Spec.NodeName]
		if !seen {
			var err error
			if n, err = kc.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err != nil {
				return nil, nil, fmt.Errorf("get node %s: %w", p.Spec.NodeName, err)
			}
			nodes[p.Spec.NodeName] = n
		}
		if awstarget.IsFargate(n) {
			out = append(out, unreachable{pod: &pods[i], node: n.Name, reason: fargateReason(n.Name, p.Namespace+"/"+p.Name)})
			continue
		}
		ok = append(ok, p)
	}
	return ok, out, nil
}

// unreachableMethod is the custody method of a not-collected record for an
// unreachable target: what eksir read to decide.
const unreachableMethod = "kubernetes: get pod and node (spec.nodeName, spec.providerID, " + awstarget.FargateLabel + "); no collector started"

func (u unreachable) source(env *action.Env) evidence.Source {
	src := evidence.Source{Cluster: env.Cluster, Node: u.node}
	if u.pod != nil {
		src.Namespace, src.Pod = u.pod.Namespace, u.pod.Name
	}
	return src
}

// recorded reports whether an earlier run already recorded rel as not
// collected for the same reason: a resumed run says so again without a
// second custody record, as nothing has changed that a retry could fix.
func recorded(env *action.Env, rel, reason string) bool {
	if env.Evidence == nil {
		return false
	}
	it, ok := env.Evidence.Lookup(rel)
	return ok && it.Status == evidence.StatusNotCollected && it.Reason == reason
}

// uncollectable is an unreachable target and the items a collector would
// have written for it.
type uncollectable struct {
	unreachable
	rels []string
}

// recordUncollectable records the items of each of gs as not collected
// with its reason and returns the step's warnings, one per target. An item
// recorded earlier with the same reason is only reported missing again: the
// capture stays incomplete, and the custody log gets no second record of a
// fact no retry can change.
func (s *store) recordUncollectable(gs []uncollectable) ([]string, error) {
	var warnings []string
	for _, g := range gs {
		info := evidence.ItemInfo{Source: g.source(s.env), Method: unreachableMethod}
		for _, rel := range g.rels {
			if recorded(s.env, rel, g.reason) {
				s.mu <- struct{}{}
				s.missing = append(s.missing, "data/"+rel+": "+g.reason)
				<-s.mu
				continue
			}
			if err := s.notCollected(rel, info, g.reason); err != nil {
				return warnings, err
			}
		}
		warnings = append(warnings, "not collected: "+g.reason)
	}
	return warnings, nil
}

// planUncollectable adds to p what Run does for gs: a warning per target
// and a record change for its items not recorded yet; nothing is created
// for them. It reports whether every item is recorded already.
func planUncollectable(env *action.Env, gs []uncollectable, p *action.Plan) (allRecorded bool) {
	allRecorded = true
	for _, g := range gs {
		var todo []string
		for _, rel := range g.rels {
			if !recorded(env, rel, g.reason) {
				todo = append(todo, rel)
			}
		}
		p.Warnings = append(p.Warnings, "not collected: "+g.reason)
		if len(todo) > 0 {
			allRecorded = false
			p.Changes = append(p.Changes, action.Change{Verb: "record", Object: strings.Join(todo, ", "),
				Detail: "not collected, no collector started: " + g.reason})
		}
	}
	return allRecorded
}
