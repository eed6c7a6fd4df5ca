package playbooks_test

import (
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// caseItems indexes the case's items by path.
func (f *labFixture) caseItems(t *testing.T, inc string) map[string]evidence.Item {
	t.Helper()
	_, items := f.custody(t, inc)
	out := map[string]evidence.Item{}
	for _, it := range items {
		out[it.Path] = it
	}
	return out
}

// TestLabTriageInstanceMetadata: triage on the seeded suspect pod plans
// and collects its node's instance metadata and changes nothing in moto;
// on a pod of a Fargate node it plans and records the metadata as not
// collected, with the reason, and the step succeeds with a warning.
func TestLabTriageInstanceMetadata(t *testing.T) {
	f := setupLab(t)
	inst := f.seed.Targets[lab.TargetInstance]
	base := "aws/instances/" + inst + "/"
	before := labtest.AWSSnapshot(t, f.le.AWS)

	r := f.eksir(t, nil, "plan", "triage", "--pod", f.ns+"/"+f.pod, "--incident", "tri-1")
	if r.code != 0 || !strings.Contains(r.stdout, "collect.instance-metadata") || !strings.Contains(r.stdout, base+"instance.json") {
		t.Fatalf("plan triage does not show the instance metadata of %s: %v", inst, r)
	}
	r = f.eksir(t, nil, "run", "triage", "--pod", f.ns+"/"+f.pod, "--incident", "tri-1", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "captured = true") {
		t.Fatalf("run triage: %v", r)
	}
	if st := f.status(t, "tri-1")["metadata"]; st.Status != "succeeded" || st.Action != "collect.instance-metadata" || len(st.Warnings) != 0 {
		t.Errorf("metadata step: %+v", st)
	}
	items := f.caseItems(t, "tri-1")
	for _, name := range []string{"instance.json", "volumes.json", "interfaces.json", "security-groups.json", "instance-profile.json", "tags.json", "console-output.json"} {
		if it, ok := items["data/"+base+name]; !ok || it.Status != evidence.StatusCollected || it.SHA256 == "" || it.Source.Instance != inst {
			t.Errorf("%s: %+v", base+name, it)
		}
	}
	// moto lacks GetConsoleScreenshot: recorded, not collected.
	if it, ok := items["data/"+base+"screenshot.jpg"]; !ok || it.Status != evidence.StatusNotCollected || it.Reason == "" {
		t.Errorf("screenshot.jpg: %+v", it)
	}
	if after := labtest.AWSSnapshot(t, f.le.AWS); !maps.Equal(before, after) {
		t.Error("triage changed moto")
	}

	// A pod on a Fargate node, as EKS registers one: the compute-type label
	// and a provider ID naming the Fargate task, not an EC2 instance.
	k := f.le.Kube.Typed
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.le.Prefix + "fargate-ip-192-168-7-7.ec2.internal", Labels: map[string]string{awstarget.FargateLabel: "fargate"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-7-7.ec2.internal"}}
	if _, err := k.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "on-fargate", Namespace: f.ns},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if _, err := k.CoreV1().Pods(f.ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := f.ns + "/" + pod.Name
	rel := "aws/nodes/" + node.Name + "/instance.json"
	reason := "pod " + ref + " runs on Fargate node " + node.Name + ": there is no EC2 instance to describe"
	r = f.eksir(t, nil, "plan", "triage", "--pod", ref, "--incident", "tri-2")
	if r.code != 0 || !strings.Contains(r.stdout, rel) || !strings.Contains(r.stdout, "not collected: "+reason) {
		t.Fatalf("plan triage on a Fargate pod: want the not-collected record %s with %q: %v", rel, reason, r)
	}
	r = f.eksir(t, nil, "run", "triage", "--pod", ref, "--incident", "tri-2", "--yes")
	if !strings.Contains(r.stdout, "WARNING (metadata): instance metadata not collected: "+reason) {
		t.Errorf("run triage on a Fargate pod does not warn: %v", r)
	}
	if st := f.status(t, "tri-2")["metadata"]; st.Status != "succeeded" {
		t.Errorf("metadata step on a Fargate pod: %+v\n%v", st, r)
	}
	// Fargate runs no collector: the volatile step succeeds with nothing
	// captured, and triage must not claim the pod's evidence captured.
	if !strings.Contains(r.stdout, "captured = false") {
		t.Errorf("triage on a Fargate pod claims its evidence captured: %v", r)
	}
	items = f.caseItems(t, "tri-2")
	if it, ok := items["data/"+rel]; !ok || it.Status != evidence.StatusNotCollected || it.Reason != reason || it.Source.Node != node.Name || it.Source.Pod != pod.Name {
		t.Errorf("%s: %+v", rel, it)
	}
	for p := range items {
		if strings.HasPrefix(p, "data/aws/instances/") {
			t.Errorf("Fargate pod: instance item %s", p)
		}
	}
	if after := labtest.AWSSnapshot(t, f.le.AWS); !maps.Equal(before, after) {
		t.Error("triage changed moto")
	}
}
