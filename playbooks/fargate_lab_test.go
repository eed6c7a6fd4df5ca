package playbooks_test

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/playbooks"
)

// TestLabPodCompromiseFargate: on a pod of a Fargate node (as EKS
// registers one: the compute-type label and a provider ID naming the
// Fargate task), pod-compromise's plan says the volatile state will be
// recorded as not collected and creates no collector; the run starts no
// collector pod, records the items with the reason, and the capture gate
// holds every containment step back, as for any incomplete capture, until
// the responder passes --contain-without-capture, which is journaled.
func TestLabPodCompromiseFargate(t *testing.T) {
	f := setupLab(t)
	k := f.le.Kube.Typed
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.le.Prefix + "fargate-ip-192-168-7-7.ec2.internal", Labels: map[string]string{awstarget.FargateLabel: "fargate"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-7-7.ec2.internal"}}
	if _, err := k.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// It runs as the seeded suspect's service account, which revoke needs.
	suspect, err := k.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "on-fargate", Namespace: f.ns, Labels: map[string]string{"app": "on-fargate"}},
		Spec: corev1.PodSpec{NodeName: node.Name, ServiceAccountName: suspect.Spec.ServiceAccountName, Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if _, err := k.CoreV1().Pods(f.ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := f.ns + "/" + pod.Name
	reason := "pod " + ref + " runs on Fargate node " + node.Name +
		": Fargate runs no privileged collector pods; nothing on its host (process state, journals, log files, memory) is collectable; use the pod's own logs and the control-plane audit log"
	noCollector := func(when string) {
		t.Helper()
		pods, err := k.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Name != pod.Name {
				t.Errorf("%s: pod %s/%s created on the Fargate node", when, p.Namespace, p.Name)
			}
		}
		p, err := k.CoreV1().Pods(f.ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.EphemeralContainers) != 0 {
			t.Errorf("%s: ephemeral container added to the Fargate pod", when)
		}
	}

	r := f.eksir(t, nil, "plan", "pod-compromise", "--pod", ref, "--incident", "fg-1")
	if r.code != 0 || !strings.Contains(r.stdout, "+ record volatile/"+ref+"/processes.json") ||
		!strings.Contains(r.stdout, reason) || strings.Contains(r.stdout, "eksir-collector-") {
		t.Fatalf("plan: want the not-collected records with %q and no collector pod: %v", reason, r)
	}
	noCollector("after plan")

	r = f.eksir(t, nil, "run", "pod-compromise", "--pod", ref, "--incident", "fg-1", "--yes")
	if r.code != 4 {
		t.Fatalf("run on a Fargate pod: want exit 4 (partial, containment held back): %v", r)
	}
	noCollector("after run")
	if p := f.quarantinePolicies(t); len(p) != 0 {
		t.Fatalf("containment ran without the capture: policies %v", p)
	}
	st := f.status(t, "fg-1")
	if v := st["volatile"]; v.Status != playbooks.StatusSucceeded || !strings.Contains(strings.Join(v.Warnings, "\n"), reason) {
		t.Errorf("volatile: %+v, want succeeded with the warning %q", v, reason)
	}
	for _, s := range []string{"isolate", "label", "cordon"} {
		if st[s].Status != playbooks.StatusSkipped || !strings.Contains(st[s].Error, "capture step volatile is incomplete") ||
			!strings.Contains(st[s].Error, reason) || !strings.Contains(st[s].Error, "--contain-without-capture") {
			t.Errorf("%s: %+v, want skipped by the capture gate naming the reason and the override", s, st[s])
		}
	}
	items := f.caseItems(t, "fg-1")
	var recorded int
	for p, it := range items {
		if !strings.HasPrefix(p, "data/volatile/") {
			continue
		}
		recorded++
		if it.Status != evidence.StatusNotCollected || !strings.HasPrefix(it.Reason, "pod "+ref+" runs on Fargate node ") && !strings.HasPrefix(it.Reason, "node "+node.Name+" runs on Fargate: ") {
			t.Errorf("%s: %+v", p, it)
		}
	}
	// Six documents of the pod, four of its node.
	if recorded != 10 {
		t.Errorf("%d volatile items recorded, want 10", recorded)
	}

	// The override: containment runs, and the decision names the items.
	r = f.eksir(t, nil, "run", "pod-compromise", "--pod", ref, "--incident", "fg-2", "--yes", "--contain-without-capture", "--set", "allow_unenforced=true")
	noCollector("after the override")
	st = f.status(t, "fg-2")
	if st["label"].Status != playbooks.StatusSucceeded || st["isolate"].Status != playbooks.StatusSucceeded {
		t.Fatalf("override: label %+v, isolate %+v\n%v", st["label"], st["isolate"], r)
	}
	recs, _ := f.custody(t, "fg-2")
	var decided bool
	for _, rec := range recs {
		if rec.Action != playbooks.RecContainWithoutCapture {
			continue
		}
		var d playbooks.ContainWithoutCapture
		if err := json.Unmarshal(rec.Details, &d); err != nil {
			t.Fatal(err)
		}
		if d.Step == "isolate" {
			decided = len(d.Captures) == 1 && d.Captures[0].Step == "volatile" && len(d.Captures[0].Missing) == 10 &&
				strings.Contains(strings.Join(d.Captures[0].Missing, "\n"), reason)
		}
	}
	if !decided {
		t.Errorf("no contain-without-capture record for isolate naming volatile's 10 missing items")
	}
	if r = f.eksir(t, nil, "release", "--incident", "fg-2", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
}
