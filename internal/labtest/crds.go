package labtest

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"path"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// The policy CRDs of Calico, Cilium and AdminNetworkPolicy, as minimal
// hand-written definitions: the lab's API server serves the kinds, no
// controller enforces them.
//
//go:embed testdata/crds/*.yaml
var crdFiles embed.FS

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallPolicyCRDs installs the policy CRD definitions (Calico
// networkpolicies and globalnetworkpolicies in crd.projectcalico.org/v1,
// Cilium ciliumnetworkpolicies and ciliumclusterwidenetworkpolicies in
// cilium.io/v2, adminnetworkpolicies in policy.networking.k8s.io/v1alpha1)
// and waits until each is established. It is idempotent; the CRDs stay
// for the rest of the test binary (the lab is shared), so tests create
// their objects in their own namespace or with their own prefix.
func (e *Env) InstallPolicyCRDs(t testing.TB) {
	t.Helper()
	ctx := t.Context()
	entries, err := crdFiles.ReadDir("testdata/crds")
	if err != nil {
		t.Fatal(err)
	}
	crds := e.Kube.Dynamic.Resource(crdGVR)
	for _, ent := range entries {
		b, err := crdFiles.ReadFile(path.Join("testdata/crds", ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatalf("%s: %v", ent.Name(), err)
		}
		if _, err := crds.Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", u.GetName(), err)
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cur, err := crds.Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", u.GetName(), err)
		}
		// Discovery serves the new group once the CRD is established, but
		// give its handler the same chance a client would.
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		version, _, _ := unstructured.NestedString(versions[0].(map[string]any), "name")
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := e.Kube.Typed.Discovery().ServerResourcesForGroupVersion(group + "/" + version)
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not in discovery: %v", u.GetName(), err)
		}
	}
}

// Policy engines a lab node can run, named as their DaemonSets are.
const (
	EngineAWSNode = "aws-node"
	EngineCalico  = "calico-node"
	EngineCilium  = "cilium"
)

// EngineOptions shape an engine pod.
type EngineOptions struct {
	// NetworkPolicyDisabled runs aws-node's aws-eks-nodeagent with
	// --enable-network-policy=false (the VPC CNI default).
	NetworkPolicyDisabled bool
}

// RunEngine fakes a policy engine on one node the way a cluster shows it:
// the engine's DaemonSet in kube-system (created once, shared by the
// binary's tests) and a pod of it bound to node, which kwok marks running.
// It returns once the pod is Running; the pod is deleted when the test
// ends.
func (e *Env) RunEngine(t testing.TB, engine, node string, o EngineOptions) *corev1.Pod {
	t.Helper()
	ctx, cs := t.Context(), e.Kube.Typed
	var containers []corev1.Container
	switch engine {
	case EngineAWSNode:
		flag := "--enable-network-policy=true"
		if o.NetworkPolicyDisabled {
			flag = "--enable-network-policy=false"
		}
		containers = []corev1.Container{
			{Name: "aws-node", Image: "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2"},
			{Name: "aws-eks-nodeagent", Image: "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon/aws-network-policy-agent:v1.1.6",
				Args: []string{flag, "--enable-ipv6=false", "--enable-cloudwatch-logs=false"}},
		}
	case EngineCalico:
		containers = []corev1.Container{{Name: "calico-node", Image: "quay.io/calico/node:v3.29.1"}}
	case EngineCilium:
		containers = []corev1.Container{{Name: "cilium-agent", Image: "quay.io/cilium/cilium:v1.16.5"}}
	default:
		t.Fatalf("unknown engine %q", engine)
	}
	const ns = "kube-system"
	sel := map[string]string{"k8s-app": engine}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: engine, Labels: sel},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{HostNetwork: true, Containers: containers}}}}
	cur, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, err = cs.AppsV1().DaemonSets(ns).Get(ctx, engine, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatalf("daemonset %s: %v", engine, err)
	}
	h := fnv.New32a()
	h.Write([]byte(node))
	ctrl := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%08x", engine, h.Sum32()), Namespace: ns, Labels: sel,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: engine, UID: cur.UID, Controller: &ctrl, BlockOwnerDeletion: &ctrl}}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: true, Containers: containers,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("engine pod %s on %s: %v", engine, node, err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		cs.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	var got *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("engine pod %s on %s not running: %v", engine, node, err)
	}
	return got
}

// RunEngineEverywhere runs engine (RunEngine) on every node of the test's
// seeds (the nodes named with its prefix): the cluster a test stands for
// then enforces NetworkPolicies, which the lab alone does not.
func (e *Env) RunEngineEverywhere(t testing.TB, engine string) {
	t.Helper()
	nodes, err := e.Kube.Typed.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if strings.HasPrefix(n.Name, e.Prefix) {
			e.RunEngine(t, engine, n.Name, EngineOptions{})
		}
	}
}
