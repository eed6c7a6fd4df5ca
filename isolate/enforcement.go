package isolate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/naming"
)

// Enforcement levels of a NetworkPolicy quarantine for one pod, judged
// from the pod and the node it runs on, never from the cluster at large.
const (
	// Enforced: a policy engine runs on the pod's node and nothing known
	// limits it.
	Enforced = "enforced"
	// Unverified: an engine runs on the node, but something may let
	// traffic through (see the reasons).
	Unverified = "unverified"
	// NotEnforceable: no NetworkPolicy can reach the pod's traffic there.
	NotEnforceable = "not-enforceable"
)

// Policy engines, as the engine output names them.
const (
	engineVPCCNI = "aws-vpc-cni"
	engineCalico = "calico"
	engineCilium = "cilium"
)

// Node labels that decide whether NetworkPolicy applies at all.
const (
	computeTypeLabel = "eks.amazonaws.com/compute-type"
	osLabel          = corev1.LabelOSStable
)

// enforcement is the verdict for one pod: the level, the short reasons
// behind it and the warnings (reason plus remedy) for the responder.
type enforcement struct {
	Level    string
	Reasons  []string
	Warnings []string
	// Engines are the policy engines running on the node, sorted.
	Engines []string
	// Instance is the node's EC2 instance ID, "" when it is not one.
	Instance string
	Node     string
	// api reads and writes the CRD policies; nil when not assessed.
	api *crdAPI
}

func (e *enforcement) downgrade(level, reason, warning string) {
	if e.Level == Enforced || level == NotEnforceable {
		e.Level = level
	}
	e.Reasons = append(e.Reasons, reason)
	if warning != "" {
		e.Warnings = append(e.Warnings, warning)
	}
}

// nodeRemedy names what contains the node when the pod cannot be
// contained by policy: the AWS containment with security groups when the
// node is an EC2 instance, and cordoning.
func (e *enforcement) nodeRemedy() string {
	if e.Instance != "" {
		return fmt.Sprintf("isolate the instance %s with its quarantine security group (isolate.instance-network; the node-compromise playbook) and cordon node %s (isolate.cordon-node)", e.Instance, e.Node)
	}
	return fmt.Sprintf("cordon node %s (isolate.cordon-node) and contain it outside Kubernetes", e.Node)
}

// assessNode judges the pod and its node: host networking, Fargate,
// Windows, the engines whose DaemonSet pods run on the node, the VPC CNI
// sibling limitation and established connections. CRD policies are judged
// separately (crdPolicies).
func assessNode(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, removeFromEndpoints bool) (*enforcement, error) {
	e := &enforcement{Level: Enforced, Node: pod.Spec.NodeName}
	if pod.Spec.NodeName == "" {
		e.downgrade(NotEnforceable, "the pod is not bound to a node yet", "NOT ENFORCEABLE: the pod is not scheduled; run the step again once it is.")
		return e, nil
	}
	node, err := kc.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s of pod %s/%s: %w", pod.Spec.NodeName, pod.Namespace, pod.Name, err)
	}
	e.Instance = instanceID(node.Spec.ProviderID)
	if pod.Spec.HostNetwork {
		e.downgrade(NotEnforceable, "the pod uses hostNetwork: NetworkPolicy does not apply to host-network pods",
			"NOT ENFORCEABLE: pod "+pod.Namespace+"/"+pod.Name+" uses hostNetwork, so no NetworkPolicy applies to its traffic; "+e.nodeRemedy()+".")
	}
	if node.Labels[computeTypeLabel] == "fargate" {
		e.downgrade(NotEnforceable, "the pod runs on Fargate node "+node.Name+": no NetworkPolicy engine runs on Fargate",
			"NOT ENFORCEABLE: pod "+pod.Namespace+"/"+pod.Name+" runs on Fargate, where NetworkPolicy is not enforced; use security groups for pods, or "+e.nodeRemedy()+".")
	}
	if node.Labels[osLabel] == "windows" {
		e.downgrade(NotEnforceable, "the pod runs on Windows node "+node.Name+": the VPC CNI network policy agent does not support Windows",
			"NOT ENFORCEABLE: node "+node.Name+" runs Windows, where the Amazon VPC CNI does not enforce NetworkPolicy; "+e.nodeRemedy()+".")
	}
	onNode, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node.Name).String()})
	if err != nil {
		return nil, fmt.Errorf("list pods on node %s: %w", node.Name, err)
	}
	var disabled []string
	for i := range onNode.Items {
		p := &onNode.Items[i]
		engine, off := engineOf(p)
		if engine == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if off {
			disabled = append(disabled, p.Namespace+"/"+p.Name)
			continue
		}
		if !slices.Contains(e.Engines, engine) {
			e.Engines = append(e.Engines, engine)
		}
	}
	slices.Sort(e.Engines)
	if e.Level == NotEnforceable {
		return e, nil
	}
	if len(e.Engines) == 0 {
		detail := "no aws-node with its network policy agent enabled, no calico-node, no cilium pod running on node " + node.Name
		if len(disabled) > 0 {
			detail += " (aws-node " + strings.Join(disabled, ", ") + " runs without --enable-network-policy=true)"
		}
		e.downgrade(NotEnforceable, "no NetworkPolicy engine runs on the pod's node: "+detail,
			"NOT ENFORCEABLE: "+detail+"; the quarantine NetworkPolicy would be stored but not enforced. "+e.nodeRemedy()+".")
		return e, nil
	}
	if slices.Contains(e.Engines, engineVPCCNI) {
		sibs, err := siblingsOnNode(pod, onNode.Items)
		if err != nil {
			return nil, err
		}
		if len(sibs) > 0 {
			ref := metav1.GetControllerOf(pod)
			w := fmt.Sprintf("UNVERIFIED: the Amazon VPC CNI network policy agent identifies pods by owner, and %s %s has other pods on node %s (%s): "+
				"a policy selecting only the suspect is not reliably enforced while they share the node. Remedies: remove-from-endpoints: true moves the suspect out of its %s "+
				"(the controller starts a replacement; the suspect keeps running for inspection), or isolate the whole workload (every replica loses its traffic).",
				ref.Kind, ref.Name, node.Name, strings.Join(sibs, ", "), ref.Kind)
			if removeFromEndpoints {
				w += " remove-from-endpoints is set: the limitation ends once the controller has released the pod (its ownerReference gone); plan again to verify."
			}
			e.downgrade(Unverified, fmt.Sprintf("VPC CNI agent: sibling pods of %s %s on the same node: %s", ref.Kind, ref.Name, strings.Join(sibs, ", ")), w)
		}
	}
	var ct []string
	for _, eng := range e.Engines {
		if eng == engineVPCCNI || eng == engineCalico {
			ct = append(ct, eng)
		}
	}
	w := "Established connections may survive the new policy in conntrack"
	if len(ct) > 0 {
		w += " (" + strings.Join(ct, " and ") + " do not cut established flows in every configuration)"
	}
	e.Warnings = append(e.Warnings, w+"; to cut them for certain, "+e.nodeRemedy()+".")
	return e, nil
}

// engineOf names the policy engine a DaemonSet pod is, if any; off is set
// for aws-node without its network policy agent enabled.
func engineOf(p *corev1.Pod) (engine string, off bool) {
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "DaemonSet" {
		return "", false
	}
	switch {
	case ref.Name == "aws-node":
		return engineVPCCNI, !agentEnabled(p.Spec.Containers)
	case ref.Name == "calico-node":
		return engineCalico, false
	case ref.Name == "cilium" || slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == "cilium-agent" }):
		return engineCilium, false
	}
	return "", false
}

// agentEnabled: aws-node enforces policies only when its aws-eks-nodeagent
// container runs with --enable-network-policy=true.
func agentEnabled(cs []corev1.Container) bool {
	for _, c := range cs {
		if c.Name != "aws-eks-nodeagent" {
			continue
		}
		args := append(slices.Clone(c.Command), c.Args...)
		for i, a := range args {
			if a == "--enable-network-policy=true" || a == "--enable-network-policy" && i+1 < len(args) && args[i+1] == "true" {
				return true
			}
		}
	}
	return false
}

// vpcCNIEnforces is agentEnabled for the aws-node DaemonSet's template.
func vpcCNIEnforces(ds *appsv1.DaemonSet) bool {
	return agentEnabled(ds.Spec.Template.Spec.Containers)
}

// siblingsOnNode lists the other pods on the node with the suspect's
// controller (same owner UID).
func siblingsOnNode(pod *corev1.Pod, onNode []corev1.Pod) ([]string, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, nil
	}
	var out []string
	for i := range onNode {
		p := &onNode[i]
		if p.UID == pod.UID || p.Namespace != pod.Namespace {
			continue
		}
		if r := metav1.GetControllerOf(p); r != nil && r.UID == ref.UID {
			out = append(out, p.Namespace+"/"+p.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// instanceID extracts i-... from an EKS node's providerID
// (aws:///us-east-1a/i-0123...).
func instanceID(providerID string) string {
	if !strings.HasPrefix(providerID, "aws://") {
		return ""
	}
	id := providerID[strings.LastIndexByte(providerID, '/')+1:]
	if !strings.HasPrefix(id, "i-") {
		return ""
	}
	return id
}

// assess is the whole verdict for the pod: its node, then the CRD allow
// policies selecting it (judged on workload, its labels without any
// incident's keys), with the counter objects to put in place.
func assess(ctx context.Context, env *action.Env, call action.Call, pod *corev1.Pod, workload map[string]string) (*enforcement, []counterObj, error) {
	e, err := assessNode(ctx, env.Kube, pod, call.Bool("remove-from-endpoints"))
	if err != nil || e.Level == NotEnforceable {
		return e, nil, err
	}
	if env.RESTConfig == nil {
		e.downgrade(Unverified, "Calico, Cilium and AdminNetworkPolicy policies were not checked (no REST configuration)",
			"UNVERIFIED: CRD policies (Calico, Cilium, AdminNetworkPolicy) were not checked; an allow among them would stay in force.")
		return e, nil, nil
	}
	api, err := crdClient(env)
	if err != nil {
		return nil, nil, err
	}
	e.api = api
	nsObj, err := env.Kube.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("get namespace %s: %w", pod.Namespace, err)
	}
	findings, counters, err := api.crdPolicies(ctx, podView{ns: pod.Namespace, labels: workload, nsLabels: nsObj.Labels, sa: pod.Spec.ServiceAccountName}, env.Incident, e.Engines)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range findings {
		if f.Countered {
			e.Warnings = append(e.Warnings, f.Object+" allows traffic of the pod: countered by eksir's per-incident deny of higher precedence.")
			continue
		}
		e.downgrade(Unverified, f.Object+" allows traffic of the pod and is not countered: "+f.Why,
			"UNVERIFIED: "+f.Object+" allows traffic of the pod and eksir could not counter it ("+f.Why+"); narrow or remove it, or "+e.nodeRemedy()+".")
	}
	if len(counters) > 0 && (len(call.Strings("allow-namespaces")) > 0 || len(call.Strings("allow-cidrs")) > 0) {
		e.Warnings = append(e.Warnings, "eksir's CRD deny objects take precedence over allow-namespaces and allow-cidrs: those peers are cut off too.")
	}
	return e, counters, nil
}

func crdClient(env *action.Env) (*crdAPI, error) {
	dyn, err := dynamic.NewForConfig(env.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return newCRDAPI(env.Kube, dyn)
}

// Every incident's keys, whatever its hash.
var (
	quarantinePrefix = naming.Domain + "/quarantine-"
	incidentPrefix   = naming.Domain + "/incident-"
)

// workloadLabels are the labels without any incident's keys.
func workloadLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if strings.HasPrefix(k, quarantinePrefix) || strings.HasPrefix(k, incidentPrefix) || k == LegacyQuarantineKey || k == LegacyIncidentKey {
			continue
		}
		out[k] = v
	}
	return out
}

// otherIncidentsOnPod warns about quarantine labels of other incidents.
func otherIncidentsOnPod(pod *corev1.Pod, incident string) []string {
	var keys []string
	for k := range pod.Labels {
		if k == LegacyQuarantineKey || strings.HasPrefix(k, quarantinePrefix) && k != QuarantineKey(incident) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return []string{fmt.Sprintf("ANOTHER OPEN INCIDENT: pod %s/%s is already quarantined by another incident (%s); each release removes only its own changes.",
		pod.Namespace, pod.Name, strings.Join(keys, ", "))}
}

// otherIncidentsOnPolicy warns about selector expressions and original
// annotations of other incidents on a policy.
func otherIncidentsOnPolicy(np metav1.Object, exprs []metav1.LabelSelectorRequirement, incident string) []string {
	seen := map[string]bool{}
	for _, e := range exprs {
		if e.Key == LegacyQuarantineKey || strings.HasPrefix(e.Key, quarantinePrefix) && e.Key != QuarantineKey(incident) {
			seen[e.Key] = true
		}
	}
	for k := range np.GetAnnotations() {
		if (strings.HasPrefix(k, originalPrefix+"net-") || strings.HasPrefix(k, legacyOriginalPrefix+"net-")) && k != originalKey("net", incident) && k != legacyOriginalKey("net", incident) {
			seen[k] = true
		}
	}
	if len(seen) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(seen))
	return []string{fmt.Sprintf("ANOTHER OPEN INCIDENT: networkpolicy %s/%s is also narrowed by another incident (%s); each release removes only its own expression.",
		np.GetNamespace(), np.GetName(), strings.Join(keys, ", "))}
}
