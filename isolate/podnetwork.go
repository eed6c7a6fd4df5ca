package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

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
// Whether any of it is enforced is judged for the pod on its own node
// (enforcement.go), and CRD allows are countered in their engine's API
// (crdpolicy.go).
type PodNetwork struct{}

// podOriginal is what the pod annotation keeps.
type podOriginal struct {
	Labels map[string]string `json:"labels"`
	// Removed are the label keys taken off for remove-from-endpoints,
	// decided once: after the ReplicaSet releases the pod its selector can
	// no longer be found from the pod, and recomputing would re-add them.
	Removed []string `json:"removed,omitempty"`
}

// policyOriginal is what a neutralised NetworkPolicy's annotation keeps:
// the selector as this incident found it, for the record and to mark the
// policy as this incident's. Undo does not write it back (another incident
// or a person may have changed the selector since); it removes only this
// incident's expression.
type policyOriginal struct {
	PodSelector metav1.LabelSelector `json:"podSelector"`
}

// PodNetworkUndo is the Undo record of isolate.pod-network.
type PodNetworkUndo struct {
	Namespace   string   `json:"namespace"`
	Pod         string   `json:"pod"`
	Policy      string   `json:"policy"`
	Neutralised []string `json:"neutralised,omitempty"`
	// Counters are the per-incident deny objects in CRD policy APIs.
	Counters []string `json:"counters,omitempty"`
}

// Spec implements action.Action.
func (PodNetwork) Spec() action.Spec {
	return action.Spec{
		Name: "isolate.pod-network",
		Doc: "Label the pod with a per-incident quarantine label, apply a deny-all ingress and egress NetworkPolicy selecting only that label, " +
			"and narrow every existing NetworkPolicy selecting the pod with a DoesNotExist expression on the quarantine label (originals kept). " +
			"Judges enforcement on the pod's own node (host network, Fargate, Windows, the policy engine pods running there, VPC CNI sibling replicas) " +
			"and counters Calico, Cilium and AdminNetworkPolicy allows with a per-incident deny; a not-enforceable target fails the step unless allow-unenforced is set.",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.Kubernetes},
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Required: true, Doc: "the suspect pod, namespace/name"},
			{Name: "remove-from-endpoints", Type: action.Bool, Default: false, Doc: "remove the pod's labels that Services and its ReplicaSet select on, so it leaves endpoints and the controller replaces it (originals kept)"},
			{Name: "allow-namespaces", Type: action.StringList, Doc: "responder namespaces still allowed to reach the pod and be reached by it"},
			{Name: "allow-cidrs", Type: action.StringList, Doc: "CIDRs still allowed in and out (forensic workstations)"},
			{Name: "allow-unenforced", Type: action.Bool, Default: false, Doc: "apply the policies even when the pod's traffic cannot be contained by them (enforcement not-enforceable); the step then succeeds with warnings instead of failing"},
		},
		Outputs: []string{"policy", "neutralised", "engine", "enforcement", "enforcement_reasons", "countered"},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "update"}},
			{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "daemonsets"}, Verbs: []string{"get"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			{APIGroups: []string{"projectcalico.org", "crd.projectcalico.org"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list"}},
			{APIGroups: []string{"projectcalico.org", "crd.projectcalico.org"}, Resources: []string{"globalnetworkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			// Calico's API server authorizes tiered policies through these.
			{APIGroups: []string{"projectcalico.org"}, Resources: []string{"tiers"}, Verbs: []string{"get"}},
			{APIGroups: []string{"projectcalico.org"}, Resources: []string{"tier.globalnetworkpolicies", "tier.networkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			{APIGroups: []string{"cilium.io"}, Resources: []string{"ciliumnetworkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			{APIGroups: []string{"cilium.io"}, Resources: []string{"ciliumclusterwidenetworkpolicies"}, Verbs: []string{"list"}},
			{APIGroups: []string{"policy.networking.k8s.io"}, Resources: []string{"adminnetworkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
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
		return action.Plan{Checks: checks, Warnings: st.warnings}, err
	}
	return action.Plan{Changes: st.changes, Checks: checks, Done: len(st.changes) == 0 && !st.fails, Warnings: st.warnings}, nil
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
	reasons := st.enf.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return action.Result{Undo: undo, Warnings: st.warnings, Outputs: map[string]any{
		"policy": st.undo.Namespace + "/" + st.undo.Policy, "neutralised": st.undo.Neutralised, "engine": strings.Join(st.enf.Engines, ","),
		"enforcement": st.enf.Level, "enforcement_reasons": reasons, "countered": st.undo.Counters}}, nil
}

type applied struct {
	changes  []action.Change
	warnings []string
	undo     PodNetworkUndo
	enf      *enforcement
	// fails: the target is not enforceable and the step will fail (Plan).
	fails bool
}

func (PodNetwork) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (applied, error) {
	st := applied{enf: &enforcement{}}
	ns, name, err := naming.SplitRef(call.String("pod"))
	if err != nil {
		return st, err
	}
	kc, val := env.Kube, LabelValue(env.Incident)
	st.undo = PodNetworkUndo{Namespace: ns, Pod: name, Policy: ObjectName("eksir-quarantine-", env.Incident)}

	// 0. Enforcement, judged before any change: a target no policy can
	// contain changes nothing unless the playbook accepts that.
	pod, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return st, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	var before podOriginal
	if _, err := readOriginal(pod, "net", env.Incident, &before); err != nil {
		return st, err
	}
	workload := workloadLabels(pod.Labels)
	if before.Labels != nil {
		workload = workloadLabels(before.Labels)
	}
	enf, counters, err := assess(ctx, env, call, pod, workload)
	if err != nil {
		return st, err
	}
	st.enf = enf
	st.warnings = append(st.warnings, enf.Warnings...)
	st.warnings = append(st.warnings, otherIncidentsOnPod(pod, env.Incident)...)
	if enf.Level == NotEnforceable && !call.Bool("allow-unenforced") {
		err := fmt.Errorf("pod %s/%s: network isolation is not enforceable (%s); nothing was changed. %s Set allow-unenforced: true to apply the policies anyway",
			ns, name, strings.Join(enf.Reasons, "; "), strings.Join(enf.Warnings, " "))
		if dry {
			st.fails = true
			st.warnings = append([]string{"THE STEP WILL FAIL: " + err.Error()}, st.warnings...)
			return st, nil
		}
		return st, err
	}

	// 1. The pod: quarantine label first, so the deny-all selects it the
	// moment it exists; the original labels go into an annotation in the
	// same update, so a resumed run still knows them. Only this incident's
	// keys are added and only the remove-from-endpoints keys removed: other
	// incidents' labels stay.
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
		want := copyMap(pod.Labels)
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

	// 3. Every other policy selecting the pod (judged on its labels as the
	// workload has them, without any incident's quarantine keys, so other
	// incidents' DoesNotExist expressions do not hide it) stops selecting
	// it, and only it.
	list, err := kc.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, fmt.Errorf("list networkpolicies in %s: %w", ns, err)
	}
	judged := labels.Set(workloadLabels(origLabels))
	for _, np := range list.Items {
		if np.Labels[managedBy] == "eksir" {
			continue
		}
		var orig policyOriginal
		had, err := readOriginal(&np, "net", env.Incident, &orig)
		if err != nil {
			return st, err
		}
		s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			return st, fmt.Errorf("networkpolicy %s/%s selector: %w", ns, np.Name, err)
		}
		if !had && !s.Matches(judged) {
			continue
		}
		st.undo.Neutralised = append(st.undo.Neutralised, np.Name)
		st.warnings = append(st.warnings, otherIncidentsOnPolicy(&np, np.Spec.PodSelector.MatchExpressions, env.Incident)...)
		if had {
			continue
		}
		if err := neutralise(ctx, kc, ns, np.Name, env.Incident, dry); err != nil {
			return st, err
		}
		st.changes = append(st.changes, action.Change{Verb: "patch", Object: "networkpolicy " + ns + "/" + np.Name,
			Detail: "podSelector gains " + QuarantineKey(env.Incident) + " DoesNotExist (original kept)"})
	}

	// 4. CRD allows countered in their engine's own API.
	for _, c := range counters {
		verb, err := st.enf.api.ensureCounter(ctx, c, dry)
		if err != nil {
			return st, err
		}
		st.undo.Counters = append(st.undo.Counters, c.name())
		if verb != "" {
			st.changes = append(st.changes, action.Change{Verb: verb, Object: c.name(), Detail: "per-incident deny of higher precedence for " + QuarantineKey(env.Incident) + "=" + val})
		}
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

// Undo implements action.Reverser. Only what this incident added goes:
// its DoesNotExist expression on each neutralised policy's current
// selector, its deny objects, and its keys on the pod; the labels it
// removed come back only where absent. With no record (the step failed or
// is in doubt) the pod comes from the call and everything else from the
// incident's annotations, names and labels on the cluster.
func (PodNetwork) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	var u PodNetworkUndo
	if raw != nil {
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("isolate.pod-network undo record: %w", err)
		}
	} else {
		ns, name, err := naming.SplitRef(call.String("pod"))
		if err != nil {
			return nil, fmt.Errorf("isolate.pod-network undo without a record: %w", err)
		}
		u = PodNetworkUndo{Namespace: ns, Pod: name, Policy: ObjectName("eksir-quarantine-", env.Incident)}
	}
	var report []action.Restored
	kc := env.Kube
	policies := kc.NetworkingV1().NetworkPolicies(u.Namespace)
	list, err := policies.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networkpolicies in %s: %w", u.Namespace, err)
	}
	for _, item := range list.Items {
		_, cur := item.Annotations[originalKey("net", env.Incident)]
		_, legacy := item.Annotations[legacyOriginalKey("net", env.Incident)]
		if !cur && !legacy {
			continue
		}
		r, err := restoreOriginal(ctx, "networkpolicy "+u.Namespace+"/"+item.Name, "net", env.Incident, getter(policies, item.Name), updater(policies),
			func(np *networkingv1.NetworkPolicy, _ policyOriginal) {
				_, legacy := np.Annotations[legacyOriginalKey("net", env.Incident)]
				np.Spec.PodSelector.MatchExpressions = withoutDoesNotExist(np.Spec.PodSelector.MatchExpressions, QuarantineKey(env.Incident), legacy)
			})
		if err != nil {
			return report, err
		}
		if r.Outcome == action.OutcomeRestored {
			r.Detail = "removed " + QuarantineKey(env.Incident) + " DoesNotExist from podSelector"
		}
		report = append(report, r)
	}
	if env.RESTConfig != nil {
		api, err := crdClient(env)
		if err != nil {
			return report, err
		}
		r, err := api.removeCounters(ctx, u.Namespace, env.Incident, u.Counters)
		report = append(report, r...)
		if err != nil {
			return report, err
		}
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
		l := restoreKeys(pod.Labels, nil, QuarantineKey(env.Incident), IncidentKey(env.Incident), LegacyQuarantineKey, LegacyIncidentKey)
		for _, k := range orig.Removed {
			v, ok := orig.Labels[k]
			if _, now := l[k]; ok && !now {
				if l == nil {
					l = map[string]string{}
				}
				l[k] = v
			}
		}
		pod.Labels = l
	})
	return append(report, r), err
}

// withoutDoesNotExist drops the DoesNotExist expressions on key (and on
// the legacy shared key when legacy) and nothing else.
func withoutDoesNotExist(exprs []metav1.LabelSelectorRequirement, key string, legacy bool) []metav1.LabelSelectorRequirement {
	var out []metav1.LabelSelectorRequirement
	for _, e := range exprs {
		if e.Operator == metav1.LabelSelectorOpDoesNotExist && (e.Key == key || legacy && e.Key == LegacyQuarantineKey) {
			continue
		}
		out = append(out, e)
	}
	return out
}
