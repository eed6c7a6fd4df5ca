package collect_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
)

// fargateLab is the seeded lab plus, as EKS registers them, a Fargate node
// (the compute-type label and a provider ID naming the Fargate task) with a
// pod on it, and a pod not scheduled on any node.
type fargateLab struct {
	*fixture
	node, pod, pending string
}

func setupFargate(t *testing.T) *fargateLab {
	t.Helper()
	f := setup(t, 1, 1)
	k := f.lab.Kube.Typed
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.lab.Prefix + "fargate-ip-192-168-7-7.ec2.internal", Labels: map[string]string{awstarget.FargateLabel: "fargate"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-7-7.ec2.internal"}}
	if _, err := k.CoreV1().Nodes().Create(t.Context(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	fl := &fargateLab{fixture: f, node: n.Name}
	for name, node := range map[string]string{"web-fargate": n.Name, "web-pending": ""} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
		if _, err := k.CoreV1().Pods(f.ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	fl.pod, fl.pending = f.ns+"/web-fargate", f.ns+"/web-pending"
	return fl
}

// call is a call of the named action with the engine's defaults. Any
// collector pod is kept (so a test sees one that was created) and given
// little time to start (so a regression fails fast rather than hanging).
func (f *fargateLab) call(t *testing.T, name string, params map[string]any) (action.Action, action.Call) {
	t.Helper()
	a, ok := f.registry.Lookup(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	params["keep-collector"] = true
	params["start-timeout"] = 5 * time.Second
	for _, p := range a.Spec().Params {
		if _, ok := params[p.Name]; !ok && p.Default != nil {
			params[p.Name] = p.Default
		}
	}
	return a, action.Call{Step: "fargate", Params: params}
}

// noCollector fails when anything eksir runs was placed on the Fargate
// node (a collector pod, in any namespace) or added to its pod (an
// ephemeral container).
func (f *fargateLab) noCollector(t *testing.T) {
	t.Helper()
	k := f.lab.Kube.Typed
	pods, err := k.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + f.node})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Namespace+"/"+p.Name != f.pod {
			t.Errorf("pod %s/%s created on Fargate node %s", p.Namespace, p.Name, f.node)
		}
	}
	collectors, err := k.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=eksir-collector"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range collectors.Items {
		if p.Spec.NodeName == f.node || p.Spec.NodeName == "" {
			t.Errorf("collector pod %s for node %q", p.Name, p.Spec.NodeName)
		}
	}
	for _, ref := range []string{f.pod, f.pending} {
		ns, name, _ := strings.Cut(ref, "/")
		p, err := k.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.EphemeralContainers) != 0 {
			t.Errorf("ephemeral container added to %s: %+v", ref, p.Spec.EphemeralContainers)
		}
	}
}

// checkUncollected runs a's plan and run on a fresh case and checks that
// the plan creates nothing and records exactly want (item path to the
// words its reason must hold), that the run records them as not collected
// with that reason, outputs complete=false with each in missing, warns, and
// that a second run records nothing again yet is still incomplete.
func (f *fargateLab) checkUncollected(t *testing.T, a action.Action, call action.Call, want map[string][]string) action.Result {
	t.Helper()
	env := setupCase(t, f.fixture)
	c := env.Evidence.(*evidence.Case)
	plan, err := a.Plan(t.Context(), env, call)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var planned []string
	for _, ch := range plan.Changes {
		if ch.Verb != "record" || !strings.HasPrefix(ch.Detail, "not collected, no collector started: ") {
			t.Errorf("plan change %+v: want only not-collected records", ch)
			continue
		}
		for _, rel := range strings.Split(ch.Object, ", ") {
			planned = append(planned, rel)
			for _, w := range want[rel] {
				if !strings.Contains(ch.Detail, w) {
					t.Errorf("plan record of %s does not say %q: %s", rel, w, ch.Detail)
				}
			}
		}
	}
	slices.Sort(planned)
	var wantRels []string
	for rel := range want {
		wantRels = append(wantRels, rel)
	}
	slices.Sort(wantRels)
	if !slices.Equal(planned, wantRels) || plan.Done || len(plan.Warnings) == 0 {
		t.Fatalf("plan records %v, want %v; plan %+v", planned, wantRels, plan)
	}
	if n := len(c.Items()); n != 0 {
		t.Fatalf("plan wrote %d items", n)
	}

	res, err := a.Run(t.Context(), env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Outputs["complete"] != false {
		t.Errorf("complete = %v, want false", res.Outputs["complete"])
	}
	missing, _ := res.Outputs["missing"].([]string)
	for rel, words := range want {
		it, ok := c.Lookup(rel)
		if !ok || it.Status != evidence.StatusNotCollected {
			t.Errorf("%s: %+v, want not collected", rel, it)
			continue
		}
		for _, w := range words {
			if !strings.Contains(it.Reason, w) {
				t.Errorf("%s: reason %q does not say %q", rel, it.Reason, w)
			}
		}
		if !slices.Contains(missing, "data/"+rel+": "+it.Reason) {
			t.Errorf("missing output %v lacks %s", missing, rel)
		}
		warned := false
		for _, w := range res.Warnings {
			warned = warned || strings.Contains(w, it.Reason)
		}
		if !warned {
			t.Errorf("no warning says %q: %v", it.Reason, res.Warnings)
		}
	}
	f.noCollector(t)

	// Resumed: nothing to plan or record again, and still incomplete, so
	// the capture gate keeps holding containment back.
	if plan, err := a.Plan(t.Context(), env, call); err != nil || !plan.Done || len(plan.Changes) != 0 {
		t.Errorf("plan after the run: %+v %v", plan, err)
	}
	records := len(c.Log().Records())
	again, err := a.Run(t.Context(), env, call)
	if err != nil || again.Outputs["complete"] != false || len(again.Items) != 0 || len(c.Log().Records()) != records {
		t.Errorf("second run: %+v %v (%d custody records, %d before)", again, err, len(c.Log().Records()), records)
	}
	if m, _ := again.Outputs["missing"].([]string); len(m) != len(want) {
		t.Errorf("second run missing %v, want the %d items again", m, len(want))
	}
	return res
}

func volatileWant(ref, node string, reason []string, withNode bool) map[string][]string {
	want := map[string][]string{}
	for _, a := range []string{"processes", "sockets", "files", "maps", "mounts", "environ"} {
		want["volatile/"+ref+"/"+a+".json"] = reason
	}
	if withNode {
		for _, a := range []string{"sockets", "modules", "routes", "neighbours"} {
			want["volatile/nodes/"+node+"/"+a+".json"] = []string{"node " + node + " runs on Fargate: Fargate runs no privileged collector pods"}
		}
	}
	return want
}

// TestVolatileFargate: for a pod on a Fargate node, whatever the method,
// collect.volatile plans and starts no collector (no pod on the node, no
// ephemeral container) and records what it would have collected as not
// collected, with the reason. A pod not scheduled is recorded likewise.
func TestVolatileFargate(t *testing.T) {
	f := setupFargate(t)
	fargate := []string{"pod " + f.pod + " runs on Fargate node " + f.node +
		": Fargate runs no privileged collector pods; nothing on its host (process state, journals, log files, memory) is collectable; use the pod's own logs and the control-plane audit log"}
	for _, method := range []string{collect.MethodAuto, collect.MethodNodePod, collect.MethodEphemeral} {
		t.Run(method, func(t *testing.T) {
			a, call := f.call(t, "collect.volatile", map[string]any{"pod": f.pod, "method": method})
			res := f.checkUncollected(t, a, call, volatileWant(f.pod, f.node, fargate, method != collect.MethodEphemeral))
			if res.Outputs["method"] != collect.MethodNone {
				t.Errorf("method output %v, want %s", res.Outputs["method"], collect.MethodNone)
			}
		})
	}
	t.Run("pending", func(t *testing.T) {
		a, call := f.call(t, "collect.volatile", map[string]any{"pod": f.pending})
		f.checkUncollected(t, a, call, volatileWant(f.pending, "", []string{"pod " + f.pending + " is not scheduled on a node"}, false))
	})
}

// TestVolatileFargateBesideEC2: a selection holding an EC2-backed pod and a
// Fargate pod collects the first as usual and records the second.
func TestVolatileFargateBesideEC2(t *testing.T) {
	f := setupFargate(t)
	a, call := f.call(t, "collect.volatile", map[string]any{"pods": []string{f.pod, f.ns + "/" + f.fixture.pod}})
	plan, err := a.Plan(t.Context(), f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	var records, creates int
	for _, ch := range plan.Changes {
		switch {
		case ch.Verb == "record":
			records++
		case ch.Verb == "create" && !strings.Contains(ch.Detail, "on node "+f.fixture.node):
			t.Errorf("collector planned elsewhere than %s: %+v", f.fixture.node, ch)
		case ch.Verb == "create":
			creates++
		}
	}
	if records != 2 || creates != 1 {
		t.Fatalf("plan: %d records, %d collector pods; %+v", records, creates, plan.Changes)
	}
	res, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["complete"] != false || res.Outputs["method"] != collect.MethodNodePod {
		t.Errorf("outputs %v", res.Outputs)
	}
	if it := f.item(t, "volatile/"+f.fixture.ns+"/"+f.fixture.pod+"/processes.json"); it.Status != evidence.StatusCollected {
		t.Errorf("the EC2 pod's processes: %+v", it)
	}
	if it := f.item(t, "volatile/"+f.pod+"/processes.json"); it.Status != evidence.StatusNotCollected || !strings.Contains(it.Reason, "Fargate node "+f.node) {
		t.Errorf("the Fargate pod's processes: %+v", it)
	}
	f.noCollector(t)
}

// TestNodeFilesFargate: collect.node-files starts no collector pod on a
// Fargate node and records the pod's log listing, the journals and the
// memory image as not collected, with the reason.
func TestNodeFilesFargate(t *testing.T) {
	f := setupFargate(t)
	a, call := f.call(t, "collect.node-files", map[string]any{"pod": f.pod, "memory": true})
	pod, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), "web-fargate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := "node/" + f.node + "/"
	nodeReason := []string{"node " + f.node + " runs on Fargate: Fargate runs no privileged collector pods"}
	f.checkUncollected(t, a, call, map[string][]string{
		base + "pods/" + f.ns + "_web-fargate_" + string(pod.UID) + ".logs": {"pod " + f.pod + " runs on Fargate node " + f.node},
		base + "journal/kubelet.jsonl":                                      nodeReason,
		base + "journal/containerd.jsonl":                                   nodeReason,
		base + "memory.lime":                                                nodeReason,
	})
}

// TestMemoryNodePodFargate: collect.memory's node-pod method on a Fargate
// node records the image as not collected instead of starting AVML.
func TestMemoryNodePodFargate(t *testing.T) {
	f := setupFargate(t)
	a, call := f.call(t, "collect.memory", map[string]any{"method": collect.MemoryNodePod, "node": f.node})
	f.checkUncollected(t, a, call, map[string][]string{
		"node/" + f.node + "/memory.lime": {"node " + f.node + " runs on Fargate: Fargate runs no privileged collector pods; nothing on its host (process state, journals, log files, memory) is collectable"},
	})
}
