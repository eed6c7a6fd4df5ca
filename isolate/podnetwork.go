package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/naming"
)

// PodNetwork is isolate.pod-network: a per-incident quarantine label on the
// pod, a deny-all policy selecting only that label, and every other policy
// that selects the pod narrowed so it no longer does. NetworkPolicies are
// additive: a deny-all alone leaves whatever another policy allows.
type PodNetwork struct{}

// podOriginal is what the pod annotation keeps.
type podOriginal struct {
	Labels map[string]string `json:"labels"`
	// Removed are the label keys taken off for remove-from-endpoints,
	// decided once: after the ReplicaSet releases the pod its selector can
	// no longer be found from the pod, and recomputing would re-add them.
	Removed []string `json:"removed,omitempty"`
}

// policyOriginal is what a neutralised NetworkPolicy's annotation keeps.
type policyOriginal struct {
	PodSelector metav1.LabelSelector `json:"podSelector"`
}

// PodNetworkUndo is the Undo record of isolate.pod-network.
type PodNetworkUndo struct {
	Namespace   string   `json:"namespace"`
	Pod         string   `json:"pod"`
	Policy      string   `json:"policy"`
	Neutralised []string `json:"neutralised,omitempty"`
}

// Spec implements action.Action.
func (PodNetwork) Spec() action.Spec {
	return action.Spec{
		Name: "isolate.pod-network",
		Doc: "Label the pod with a per-incident quarantine label, apply a deny-all ingress and egress NetworkPolicy selecting only that label, " +
			"and narrow every existing NetworkPolicy selecting the pod with a DoesNotExist expression on the quarantine label (originals kept). " +
			"Warns when no NetworkPolicy engine (VPC CNI agent, Calico, Cilium) is found.",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.Kubernetes},
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Required: true, Doc: "the suspect pod, namespace/name"},
			{Name: "remove-from-endpoints", Type: action.Bool, Default: false, Doc: "remove the pod's labels that Services and its ReplicaSet select on, so it leaves endpoints and the controller replaces it (originals kept)"},
			{Name: "allow-namespaces", Type: action.StringList, Doc: "responder namespaces still allowed to reach the pod and be reached by it"},
			{Name: "allow-cidrs", Type: action.StringList, Doc: "CIDRs still allowed in and out (forensic workstations)"},
		},
		Outputs: []string{"policy", "neutralised", "engine"},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "daemonsets"}, Verbs: []string{"get"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			action.AccessReviewRule,
		}},
		Reversible: true,
		Notes:      podNetworkNotes,
	}
}

// Plan implements action.Action: the same steps as Run, server-side dry run.
func (a PodNetwork) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	ns, _, err := naming.SplitRef(call.String("pod"))
	if err != nil {
		return action.Plan{}, err
	}
	checks, err := action.CheckAccess(ctx, env.Kube,
		authzv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "pods"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "update", Group: "networking.k8s.io", Resource: "networkpolicies"})
	if err != nil {
		return action.Plan{}, err
	}
	st, err := a.apply(ctx, env, call, true)
	if err != nil {
		return action.Plan{Checks: checks}, err
	}
	return action.Plan{Changes: st.changes, Checks: checks, Done: len(st.changes) == 0, Warnings: st.warnings}, nil
}

// Run implements action.Action.
func (a PodNetwork) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	st, err := a.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{Warnings: st.warnings}, err
	}
	undo, err := json.Marshal(st.undo)
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{Undo: undo, Warnings: st.warnings, Outputs: map[string]any{
		"policy": st.undo.Namespace + "/" + st.undo.Policy, "neutralised": st.undo.Neutralised, "engine": st.engine}}, nil
}

type applied struct {
	changes  []action.Change
	warnings []string
	undo     PodNetworkUndo
	engine   string
}

func (PodNetwork) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (applied, error) {
	var st applied
	ns, name, err := naming.SplitRef(call.String("pod"))
	if err != nil {
		return st, err
	}
	kc, val := env.Kube, LabelValue(env.Incident)
	st.undo = PodNetworkUndo{Namespace: ns, Pod: name, Policy: ObjectName("eksir-quarantine-", env.Incident)}

	engine, err := DetectPolicyEngine(ctx, kc)
	if err != nil {
		return st, err
	}
	st.engine = engine
	if engine == "" {
		st.warnings = append(st.warnings, "NO NETWORKPOLICY ENGINE FOUND (no VPC CNI network-policy agent enabled in aws-node, no Calico, no Cilium): "+
			"the quarantine NetworkPolicy is stored but NOT ENFORCED; isolate the node instead (isolate.cordon-node and the instance's security groups)")
	}

	// 1. The pod: quarantine label first, so the deny-all selects it the
	// moment it exists; the original labels go into an annotation in the
	// same update, so a resumed run still knows them.
	var origLabels map[string]string
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", ns, name, err)
		}
		var orig podOriginal
		had, err := readOriginal(pod, "net", env.Incident, &orig)
		if err != nil {
			return err
		}
		if !had {
			orig.Labels = copyMap(pod.Labels)
		}
		origLabels = orig.Labels
		want := copyMap(orig.Labels)
		if want == nil {
			want = map[string]string{}
		}
		if !had && call.Bool("remove-from-endpoints") {
			keys, err := selectedKeys(ctx, kc, pod, orig.Labels)
			if err != nil {
				return err
			}
			orig.Removed = keys
		}
		for _, k := range orig.Removed {
			delete(want, k)
		}
		want[QuarantineKey(env.Incident)], want[IncidentKey(env.Incident)] = val, val
		if had && maps.Equal(pod.Labels, want) {
			return nil
		}
		if !had {
			if err := writeOriginal(pod, "net", env.Incident, orig); err != nil {
				return err
			}
		}
		pod.Labels = want
		if _, err := kc.CoreV1().Pods(ns).Update(ctx, pod, updateOpts(dry)); err != nil {
			return fmt.Errorf("label pod %s/%s: %w", ns, name, err)
		}
		st.changes = append(st.changes, action.Change{Verb: "patch", Object: "pod " + ns + "/" + name, Detail: fmt.Sprintf("labels %v (originals kept in %s)", want, originalKey("net", env.Incident))})
		return nil
	})
	if err != nil {
		return st, err
	}

	// 2. The deny-all policy, named from the incident so a resumed run finds it.
	desired := quarantinePolicy(ns, st.undo.Policy, env.Incident, call.Strings("allow-namespaces"), call.Strings("allow-cidrs"))
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kc.NetworkingV1().NetworkPolicies(ns).Get(ctx, desired.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := kc.NetworkingV1().NetworkPolicies(ns).Create(ctx, desired, createOpts(dry)); err != nil {
				return fmt.Errorf("create networkpolicy %s/%s: %w", ns, desired.Name, err)
			}
			st.changes = append(st.changes, action.Change{Verb: "create", Object: "networkpolicy " + ns + "/" + desired.Name, Detail: "deny all ingress and egress for " + QuarantineKey(env.Incident) + "=" + val})
			return nil
		}
		if err != nil {
			return fmt.Errorf("get networkpolicy %s/%s: %w", ns, desired.Name, err)
		}
		if equality.Semantic.DeepEqual(cur.Spec, desired.Spec) {
			return nil
		}
		cur.Spec = desired.Spec
		if _, err := kc.NetworkingV1().NetworkPolicies(ns).Update(ctx, cur, updateOpts(dry)); err != nil {
			return fmt.Errorf("update networkpolicy %s/%s: %w", ns, desired.Name, err)
		}
		st.changes = append(st.changes, action.Change{Verb: "update", Object: "networkpolicy " + ns + "/" + desired.Name, Detail: "reset to deny all"})
		return nil
	})
	if err != nil {
		return st, err
	}

	// 3. Every other policy selecting the pod (judged on its original labels)
	// stops selecting it, and only it.
	list, err := kc.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, fmt.Errorf("list networkpolicies in %s: %w", ns, err)
	}
	for _, np := range list.Items {
		if np.Labels[managedBy] == "eksir" {
			continue
		}
		var orig policyOriginal
		had, err := readOriginal(&np, "net", env.Incident, &orig)
		if err != nil {
			return st, err
		}
		sel := np.Spec.PodSelector
		if had {
			sel = orig.PodSelector
		}
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			return st, fmt.Errorf("networkpolicy %s/%s selector: %w", ns, np.Name, err)
		}
		if !s.Matches(labels.Set(origLabels)) {
			continue
		}
		st.undo.Neutralised = append(st.undo.Neutralised, np.Name)
		if had {
			continue
		}
		if err := neutralise(ctx, kc, ns, np.Name, env.Incident, dry); err != nil {
			return st, err
		}
		st.changes = append(st.changes, action.Change{Verb: "patch", Object: "networkpolicy " + ns + "/" + np.Name,
			Detail: "podSelector gains " + QuarantineKey(env.Incident) + " DoesNotExist (original kept)"})
	}
	return st, nil
}

func neutralise(ctx context.Context, kc kubernetes.Interface, ns, name, incident string, dry bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		np, err := kc.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get networkpolicy %s/%s: %w", ns, name, err)
		}
		var orig policyOriginal
		if had, err := readOriginal(np, "net", incident, &orig); had || err != nil {
			return err
		}
		if err := writeOriginal(np, "net", incident, policyOriginal{PodSelector: *np.Spec.PodSelector.DeepCopy()}); err != nil {
			return err
		}
		np.Spec.PodSelector.MatchExpressions = append(np.Spec.PodSelector.MatchExpressions,
			metav1.LabelSelectorRequirement{Key: QuarantineKey(incident), Operator: metav1.LabelSelectorOpDoesNotExist})
		if _, err := kc.NetworkingV1().NetworkPolicies(ns).Update(ctx, np, updateOpts(dry)); err != nil {
			return fmt.Errorf("neutralise networkpolicy %s/%s: %w", ns, name, err)
		}
		return nil
	})
}

// quarantinePolicy denies all ingress and egress to pods carrying the
// incident's quarantine label, except from and to the allow-list.
func quarantinePolicy(ns, name, incident string, allowNS, allowCIDR []string) *networkingv1.NetworkPolicy {
	val := LabelValue(incident)
	var peers []networkingv1.NetworkPolicyPeer
	if len(allowNS) > 0 {
		peers = append(peers, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(allowNS)}}}})
	}
	for _, c := range allowCIDR {
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{managedBy: "eksir", IncidentKey(incident): val}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{QuarantineKey(incident): val}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	if len(peers) > 0 {
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: peers}}
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: peers}}
	}
	return np
}

// selectedKeys are the pod's label keys that Services selecting it and its
// owning ReplicaSet's selector use.
func selectedKeys(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, podLabels map[string]string) ([]string, error) {
	keys := map[string]bool{}
	svcs, err := kc.CoreV1().Services(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services in %s: %w", pod.Namespace, err)
	}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podLabels)) {
			for k := range s.Spec.Selector {
				keys[k] = true
			}
		}
	}
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "ReplicaSet" {
		rs, err := kc.AppsV1().ReplicaSets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get replicaset %s/%s: %w", pod.Namespace, ref.Name, err)
		}
		if err == nil && rs.Spec.Selector != nil {
			for k := range rs.Spec.Selector.MatchLabels {
				keys[k] = true
			}
			for _, e := range rs.Spec.Selector.MatchExpressions {
				keys[e.Key] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(keys)), nil
}

// DetectPolicyEngine names the NetworkPolicy engine it finds enforcing in
// the cluster, or "" when none: the VPC CNI's network-policy agent enabled
// in aws-node, Calico or Cilium.
func DetectPolicyEngine(ctx context.Context, kc kubernetes.Interface) (string, error) {
	for _, c := range []struct{ ns, name, engine string }{
		{"kube-system", "aws-node", "aws-vpc-cni"},
		{"kube-system", "calico-node", "calico"},
		{"calico-system", "calico-node", "calico"},
		{"kube-system", "cilium", "cilium"},
	} {
		ds, err := kc.AppsV1().DaemonSets(c.ns).Get(ctx, c.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("detect network policy engine: get daemonset %s/%s: %w", c.ns, c.name, err)
		}
		if c.engine != "aws-vpc-cni" || vpcCNIEnforces(ds) {
			return c.engine, nil
		}
	}
	return "", nil
}

// vpcCNIEnforces: aws-node enforces policies only when its node agent
// runs with --enable-network-policy=true.
func vpcCNIEnforces(ds *appsv1.DaemonSet) bool {
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name != "aws-eks-nodeagent" {
			continue
		}
		for _, a := range append(slices.Clone(c.Command), c.Args...) {
			if a == "--enable-network-policy=true" {
				return true
			}
		}
	}
	return false
}

// Undo implements action.Reverser: the pod's labels and every neutralised
// policy's selector come back from their annotations; the quarantine
// policy goes.
func (PodNetwork) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	var u PodNetworkUndo
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("isolate.pod-network undo record: %w", err)
	}
	var report []action.Restored
	kc := env.Kube
	policies := kc.NetworkingV1().NetworkPolicies(u.Namespace)
	list, err := policies.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networkpolicies in %s: %w", u.Namespace, err)
	}
	for _, item := range list.Items {
		if _, ok := item.Annotations[originalKey("net", env.Incident)]; !ok {
			if _, ok := item.Annotations[legacyOriginalKey("net", env.Incident)]; !ok {
				continue
			}
		}
		r, err := restoreOriginal(ctx, "networkpolicy "+u.Namespace+"/"+item.Name, "net", env.Incident, getter(policies, item.Name), updater(policies),
			func(np *networkingv1.NetworkPolicy, orig policyOriginal) { np.Spec.PodSelector = orig.PodSelector })
		if err != nil {
			return report, err
		}
		report = append(report, r)
	}
	deleted := action.Restored{Object: "networkpolicy " + u.Namespace + "/" + u.Policy, Outcome: action.OutcomeRestored, Detail: "deleted"}
	err = policies.Delete(ctx, u.Policy, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		deleted.Outcome, deleted.Detail, err = action.OutcomeClean, "gone", nil
	}
	if err != nil {
		return report, fmt.Errorf("delete networkpolicy %s/%s: %w", u.Namespace, u.Policy, err)
	}
	report = append(report, deleted)
	pods := kc.CoreV1().Pods(u.Namespace)
	r, err := restoreOriginal(ctx, "pod "+u.Namespace+"/"+u.Pod, "net", env.Incident, getter(pods, u.Pod), updater(pods), func(pod *corev1.Pod, orig podOriginal) {
		keys := []string{QuarantineKey(env.Incident), IncidentKey(env.Incident), LegacyQuarantineKey, LegacyIncidentKey}
		for k := range orig.Labels {
			keys = append(keys, k)
		}
		pod.Labels = restoreKeys(pod.Labels, orig.Labels, keys...)
	})
	return append(report, r), err
}
