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
